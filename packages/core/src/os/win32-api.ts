/**
 * The kernel32 functions and structures the Windows guard and the health sampler use, declared
 * through koffi.
 *
 * The declarations are built by `win32Types`, which needs koffi but not Windows: koffi's structs,
 * pointers and prototypes can be defined on any platform, so a Linux unit test builds them all and
 * checks their sizes against the Windows SDK (x64). A typo in a type name (koffi throws "Invalid
 * type name") fails CI everywhere instead of silently disabling the guard on Windows only.
 * `bindKernel32` then binds the same prototypes to kernel32.dll, which only Windows (or Wine) has.
 */

/** The part of koffi's API used here (koffi is an optional dependency, loaded at run time). */
export interface Koffi {
  load(path: string): KoffiLibrary;
  struct(def: Record<string, unknown>): unknown;
  pointer(ref: unknown): unknown;
  opaque(): unknown;
  out(type: unknown): unknown;
  proto(convention: string, name: null, result: unknown, args: unknown[]): unknown;
  sizeof(type: unknown): number;
  offsetof(type: unknown, member: string): number;
}

export interface KoffiLibrary {
  func(convention: string, name: string, result: unknown, args: unknown[]): (...args: unknown[]) => unknown;
}

export const JobObjectExtendedLimitInformation = 9;
export const JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE = 0x2000;
export const PROCESS_TERMINATE = 0x0001;
export const PROCESS_SET_QUOTA = 0x0100;
export const PROCESS_VM_READ = 0x0010;
export const PROCESS_QUERY_LIMITED_INFORMATION = 0x1000;

type Structs = Record<'JOBOBJECT_BASIC_LIMIT_INFORMATION' | 'IO_COUNTERS' | 'JOBOBJECT_EXTENDED_LIMIT_INFORMATION' | 'PROCESS_MEMORY_COUNTERS_EX' | 'FILETIME', unknown>;

/**
 * Every kernel32 function used, with its signature. Types are koffi objects, never registered
 * names: koffi's names are global to the process, and a host that declares its own `HANDLE` or
 * `FILETIME` through koffi must not break (or be broken by) these.
 */
function signatures(koffi: Koffi, s: Structs) {
  const HANDLE = koffi.pointer(koffi.opaque());
  const out = (type: unknown): unknown => koffi.out(koffi.pointer(type));
  return {
    CreateJobObjectW: [HANDLE, ['void *', 'void *']],
    SetInformationJobObject: ['int', [HANDLE, 'int', koffi.pointer(s.JOBOBJECT_EXTENDED_LIMIT_INFORMATION), 'uint32_t']],
    AssignProcessToJobObject: ['int', [HANDLE, HANDLE]],
    TerminateJobObject: ['int', [HANDLE, 'uint32_t']],
    OpenProcess: [HANDLE, ['uint32_t', 'int', 'uint32_t']],
    CloseHandle: ['int', [HANDLE]],
    GetLastError: ['uint32_t', []],
    // psapi's GetProcessMemoryInfo, exported by kernel32 itself since Windows 7.
    K32GetProcessMemoryInfo: ['int', [HANDLE, out(s.PROCESS_MEMORY_COUNTERS_EX), 'uint32_t']],
    GetProcessHandleCount: ['int', [HANDLE, out('uint32_t')]],
    GetProcessTimes: ['int', [HANDLE, out(s.FILETIME), out(s.FILETIME), out(s.FILETIME), out(s.FILETIME)]],
  } satisfies Record<string, [unknown, unknown[]]>;
}

export type Kernel32Function = keyof ReturnType<typeof signatures>;

export interface Win32Types {
  /** Structure types, for sizeof and for the tests. */
  readonly structs: Readonly<Structs>;
  /** Every function's signature, as koffi types. */
  readonly signatures: Readonly<Record<Kernel32Function, [unknown, unknown[]]>>;
  /** One koffi prototype per function: building them checks every argument type. */
  readonly prototypes: Readonly<Record<Kernel32Function, unknown>>;
}

let built: Win32Types | undefined;

/** Defines (once) every type and prototype; throws on a bad type on any platform. */
export function win32Types(koffi: Koffi): Win32Types {
  if (built) return built;
  const BASIC = koffi.struct({
    PerProcessUserTimeLimit: 'int64_t',
    PerJobUserTimeLimit: 'int64_t',
    LimitFlags: 'uint32_t',
    MinimumWorkingSetSize: 'size_t',
    MaximumWorkingSetSize: 'size_t',
    ActiveProcessLimit: 'uint32_t',
    Affinity: 'uintptr_t',
    PriorityClass: 'uint32_t',
    SchedulingClass: 'uint32_t',
  });
  const IO = koffi.struct({
    ReadOperationCount: 'uint64_t',
    WriteOperationCount: 'uint64_t',
    OtherOperationCount: 'uint64_t',
    ReadTransferCount: 'uint64_t',
    WriteTransferCount: 'uint64_t',
    OtherTransferCount: 'uint64_t',
  });
  const structs: Structs = {
    JOBOBJECT_BASIC_LIMIT_INFORMATION: BASIC,
    IO_COUNTERS: IO,
    JOBOBJECT_EXTENDED_LIMIT_INFORMATION: koffi.struct({
      BasicLimitInformation: BASIC,
      IoInfo: IO,
      ProcessMemoryLimit: 'size_t',
      JobMemoryLimit: 'size_t',
      PeakProcessMemoryUsed: 'size_t',
      PeakJobMemoryUsed: 'size_t',
    }),
    PROCESS_MEMORY_COUNTERS_EX: koffi.struct({
      cb: 'uint32_t',
      PageFaultCount: 'uint32_t',
      PeakWorkingSetSize: 'size_t',
      WorkingSetSize: 'size_t',
      QuotaPeakPagedPoolUsage: 'size_t',
      QuotaPagedPoolUsage: 'size_t',
      QuotaPeakNonPagedPoolUsage: 'size_t',
      QuotaNonPagedPoolUsage: 'size_t',
      PagefileUsage: 'size_t',
      PeakPagefileUsage: 'size_t',
      PrivateUsage: 'size_t',
    }),
    FILETIME: koffi.struct({ dwLowDateTime: 'uint32_t', dwHighDateTime: 'uint32_t' }),
  };
  const table = signatures(koffi, structs);
  const prototypes = Object.fromEntries(
    Object.entries(table).map(([name, [result, args]]) => [name, koffi.proto('__stdcall', null, result, args)]),
  ) as Record<Kernel32Function, unknown>;
  built = { structs, signatures: table, prototypes };
  return built;
}

export type Kernel32 = Record<Kernel32Function, (...args: unknown[]) => unknown> & { readonly types: Win32Types };

/** kernel32.dll's functions, bound to the prototypes above. Windows only: throws elsewhere. */
export function bindKernel32(koffi: Koffi): Kernel32 {
  const types = win32Types(koffi);
  const lib = koffi.load('kernel32.dll');
  const functions = Object.fromEntries(
    Object.entries(types.signatures).map(([name, [result, args]]) => [name, lib.func('__stdcall', name, result, args)]),
  ) as Record<Kernel32Function, (...args: unknown[]) => unknown>;
  return { ...functions, types };
}

/** A FILETIME span (100 ns units) in milliseconds. */
export function fileTimeMs(time: { dwLowDateTime: number; dwHighDateTime: number }): number {
  return (time.dwHighDateTime * 2 ** 32 + time.dwLowDateTime) / 10_000;
}

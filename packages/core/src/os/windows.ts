/**
 * Windows: one Job Object per host process, created on first use with
 * JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE; every worker is assigned to it right after spawn (before it
 * has loaded anything, so whatever it starts later is in the job too). The host holds the only
 * handle: when the host ends, however it ends, the kernel closes the handle and kills every process
 * in the job. Calls kernel32 through koffi (an optional dependency); without koffi, workers run
 * unguarded and a warning says so once.
 *
 * NOT EXERCISED BY CI: the project's CI runs on Linux only. This file is type-checked there, and
 * its struct layout follows the Windows SDK (winnt.h), but it has not been run on Windows.
 */
import type { ChildProcess } from 'node:child_process';
import type { Logger } from '../logger.js';
import type { PlatformGuard } from './guard.js';
import { loadKoffi } from './koffi.js';

interface Koffi {
  load(path: string): { func(convention: string, name: string, result: unknown, args: unknown[]): (...args: unknown[]) => unknown };
  struct(name: string, def: Record<string, unknown>): unknown;
  pointer(name: string, ref: unknown): unknown;
  opaque(name?: string): unknown;
  sizeof(type: unknown): number;
}

const JobObjectExtendedLimitInformation = 9;
const JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE = 0x2000;
const PROCESS_SET_QUOTA = 0x0100;
const PROCESS_TERMINATE = 0x0001;

interface Kernel32 {
  job: unknown;
  assign(pid: number): string | undefined;
}

let kernel32: Kernel32 | null | undefined;
let warned = false;

function jobObject(): Kernel32 | undefined {
  if (kernel32 !== undefined) return kernel32 ?? undefined;
  kernel32 = null;
  const koffi = loadKoffi<Koffi>();
  if (!koffi) return undefined;
  const lib = koffi.load('kernel32.dll');
  const HANDLE = koffi.pointer('HANDLE', koffi.opaque());
  const BASIC = koffi.struct('JOBOBJECT_BASIC_LIMIT_INFORMATION', {
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
  const IO = koffi.struct('IO_COUNTERS', {
    ReadOperationCount: 'uint64_t',
    WriteOperationCount: 'uint64_t',
    OtherOperationCount: 'uint64_t',
    ReadTransferCount: 'uint64_t',
    WriteTransferCount: 'uint64_t',
    OtherTransferCount: 'uint64_t',
  });
  const EXTENDED = koffi.struct('JOBOBJECT_EXTENDED_LIMIT_INFORMATION', {
    BasicLimitInformation: BASIC,
    IoInfo: IO,
    ProcessMemoryLimit: 'size_t',
    JobMemoryLimit: 'size_t',
    PeakProcessMemoryUsed: 'size_t',
    PeakJobMemoryUsed: 'size_t',
  });
  const CreateJobObjectW = lib.func('__stdcall', 'CreateJobObjectW', HANDLE, ['void *', 'void *']);
  const SetInformationJobObject = lib.func('__stdcall', 'SetInformationJobObject', 'int', [HANDLE, 'int', koffi.pointer('JOBOBJECT_EXTENDED_LIMIT_INFORMATION *', EXTENDED), 'uint32_t']);
  const OpenProcess = lib.func('__stdcall', 'OpenProcess', HANDLE, ['uint32_t', 'int', 'uint32_t']);
  const AssignProcessToJobObject = lib.func('__stdcall', 'AssignProcessToJobObject', 'int', [HANDLE, HANDLE]);
  const CloseHandle = lib.func('__stdcall', 'CloseHandle', 'int', [HANDLE]);
  const GetLastError = lib.func('__stdcall', 'GetLastError', 'uint32_t', []);

  const job = CreateJobObjectW(null, null);
  if (!job) throw new Error(`CreateJobObjectW failed (error ${GetLastError()})`);
  const info = {
    BasicLimitInformation: {
      PerProcessUserTimeLimit: 0,
      PerJobUserTimeLimit: 0,
      LimitFlags: JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE,
      MinimumWorkingSetSize: 0,
      MaximumWorkingSetSize: 0,
      ActiveProcessLimit: 0,
      Affinity: 0,
      PriorityClass: 0,
      SchedulingClass: 0,
    },
    IoInfo: { ReadOperationCount: 0, WriteOperationCount: 0, OtherOperationCount: 0, ReadTransferCount: 0, WriteTransferCount: 0, OtherTransferCount: 0 },
    ProcessMemoryLimit: 0,
    JobMemoryLimit: 0,
    PeakProcessMemoryUsed: 0,
    PeakJobMemoryUsed: 0,
  };
  if (!SetInformationJobObject(job, JobObjectExtendedLimitInformation, info, koffi.sizeof(EXTENDED))) {
    const error = GetLastError();
    CloseHandle(job);
    throw new Error(`SetInformationJobObject failed (error ${error})`);
  }
  // The job handle is deliberately never closed: the host's own end closes it.
  kernel32 = {
    job,
    assign(pid) {
      const process = OpenProcess(PROCESS_SET_QUOTA | PROCESS_TERMINATE, 0, pid);
      if (!process) return `OpenProcess(${pid}) failed (error ${GetLastError()})`;
      try {
        if (!AssignProcessToJobObject(job, process)) return `AssignProcessToJobObject failed (error ${GetLastError()})`;
        return undefined;
      } finally {
        CloseHandle(process);
      }
    },
  };
  return kernel32;
}

export const windowsGuard: PlatformGuard = {
  name: 'windows',
  prepare(plan) {
    plan.options.detached = false;
  },
  adopt(child: ChildProcess, logger: Logger) {
    if (child.pid === undefined) return;
    let problem: string | undefined;
    try {
      const kernel = jobObject();
      problem = kernel ? kernel.assign(child.pid) : 'koffi (an optional dependency) is not available';
    } catch (error) {
      problem = (error as Error).message;
    }
    if (problem && !warned) {
      warned = true;
      logger.warn({ problem }, `process-sandbox: workers are not in a Job Object (${problem}); a host killed abruptly may leave them running`);
    }
  },
};

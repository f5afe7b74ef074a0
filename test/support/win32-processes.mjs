// Finding processes on Windows, for the tests (processes.mjs uses it when process.platform is win32):
// a Toolhelp snapshot through koffi gives every process with its parent pid and executable. Another
// process's environment cannot be read on Windows, so "the processes this test run started" are this
// process's descendants: every process whose parent is this process or one already known to be a
// descendant (and which started after that parent; Windows keeps stale parent pids). Each snapshot
// remembers the descendants it saw, so a grandchild whose parent has since exited is still ours.
import { createRequire } from 'node:module';

const koffi = createRequire(import.meta.url)('koffi');
const kernel32 = koffi.load('kernel32.dll');
const HANDLE = koffi.pointer(koffi.opaque());
const PROCESSENTRY32W = koffi.struct({
  dwSize: 'uint32_t',
  cntUsage: 'uint32_t',
  th32ProcessID: 'uint32_t',
  th32DefaultHeapID: 'uintptr_t',
  th32ModuleID: 'uint32_t',
  cntThreads: 'uint32_t',
  th32ParentProcessID: 'uint32_t',
  pcPriClassBase: 'int32_t',
  dwFlags: 'uint32_t',
  szExeFile: koffi.array('char16_t', 260, 'String'),
});
const FILETIME = koffi.struct({ low: 'uint32_t', high: 'uint32_t' });
const out = (type) => koffi.out(koffi.pointer(type));
const CreateToolhelp32Snapshot = kernel32.func('__stdcall', 'CreateToolhelp32Snapshot', HANDLE, ['uint32_t', 'uint32_t']);
const Process32FirstW = kernel32.func('__stdcall', 'Process32FirstW', 'int', [HANDLE, koffi.inout(koffi.pointer(PROCESSENTRY32W))]);
const Process32NextW = kernel32.func('__stdcall', 'Process32NextW', 'int', [HANDLE, koffi.inout(koffi.pointer(PROCESSENTRY32W))]);
const OpenProcess = kernel32.func('__stdcall', 'OpenProcess', HANDLE, ['uint32_t', 'int', 'uint32_t']);
const GetProcessTimes = kernel32.func('__stdcall', 'GetProcessTimes', 'int', [HANDLE, out(FILETIME), out(FILETIME), out(FILETIME), out(FILETIME)]);
const GetExitCodeProcess = kernel32.func('__stdcall', 'GetExitCodeProcess', 'int', [HANDLE, out('uint32_t')]);
const CloseHandle = kernel32.func('__stdcall', 'CloseHandle', 'int', [HANDLE]);
const TH32CS_SNAPPROCESS = 0x2;
const PROCESS_QUERY_LIMITED_INFORMATION = 0x1000;
const STILL_ACTIVE = 259;
const INVALID_HANDLE_VALUE = 0xffff_ffff_ffff_ffffn;

/** Wine's ntdll exports wine_get_version; Windows' does not. Some figures only Windows gives. */
export const underWine = (() => {
  try {
    koffi.load('ntdll.dll').func('const char *wine_get_version()');
    return true;
  } catch {
    return false;
  }
})();

/** Every process: pid → { ppid, exe }. */
export function snapshot() {
  const snap = CreateToolhelp32Snapshot(TH32CS_SNAPPROCESS, 0);
  if (!snap || koffi.address(snap) === INVALID_HANDLE_VALUE) throw new Error('CreateToolhelp32Snapshot failed');
  const processes = new Map();
  try {
    const entry = { dwSize: koffi.sizeof(PROCESSENTRY32W), cntUsage: 0, th32ProcessID: 0, th32DefaultHeapID: 0, th32ModuleID: 0, cntThreads: 0, th32ParentProcessID: 0, pcPriClassBase: 0, dwFlags: 0, szExeFile: '' };
    for (let ok = Process32FirstW(snap, entry); ok; ok = Process32NextW(snap, entry)) {
      processes.set(entry.th32ProcessID, { ppid: entry.th32ParentProcessID, exe: entry.szExeFile });
      entry.dwSize = koffi.sizeof(PROCESSENTRY32W);
    }
  } finally {
    CloseHandle(snap);
  }
  return processes;
}

/** Creation time of `pid` (100 ns since 1601), or undefined if it cannot be opened. */
function createdAt(pid) {
  const handle = OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION, 0, pid);
  if (!handle) return undefined;
  try {
    const created = {};
    if (!GetProcessTimes(handle, created, {}, {}, {})) return undefined;
    return created.high * 2 ** 32 + created.low;
  } finally {
    CloseHandle(handle);
  }
}

/** True while `pid` exists and has not exited. */
export function isAlive(pid) {
  const handle = OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION, 0, pid);
  if (!handle) return false;
  try {
    const code = [0];
    return GetExitCodeProcess(handle, code) !== 0 && code[0] === STILL_ACTIVE;
  } finally {
    CloseHandle(handle);
  }
}

/** Descendants seen so far: pid → creation time. */
const family = new Map([[process.pid, createdAt(process.pid) ?? 0]]);

/** Live descendants of this process (see above). */
export function descendants() {
  const processes = snapshot();
  const live = new Set();
  for (let grew = true; grew; ) {
    grew = false;
    for (const [pid, { ppid }] of processes) {
      if (live.has(pid) || pid === process.pid) continue;
      const parentBorn = family.get(ppid);
      if (parentBorn === undefined) continue;
      const born = family.get(pid) ?? createdAt(pid);
      if (born === undefined || born < parentBorn) continue; // a stale parent pid, now someone else's
      family.set(pid, born);
      live.add(pid);
      grew = true;
    }
  }
  return [...live].filter(isAlive);
}

/** Executable name of `pid`, or '?'. */
export function exeOf(pid) {
  return snapshot().get(pid)?.exe ?? '?';
}

/** `pids` and all their live descendants (by parent pid). */
export function withDescendantsOf(pids) {
  const processes = snapshot();
  const all = new Set(pids);
  for (let grew = true; grew; ) {
    grew = false;
    for (const [pid, { ppid }] of processes) {
      if (!all.has(pid) && all.has(ppid)) {
        all.add(pid);
        grew = true;
      }
    }
  }
  return all;
}

// A process is known to be ours only if a snapshot saw its parent alive: keep looking while tests
// run, so that a worker killed between two root-hook checks still leads to what it started.
setInterval(() => {
  try {
    descendants();
  } catch {
    // a failed snapshot is retried on the next tick
  }
}, 200).unref();

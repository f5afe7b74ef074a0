/**
 * Windows: one Job Object per worker, created right after spawn with JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE
 * and without any breakaway flag, and the worker assigned to it before it has loaded anything, so
 * whatever it starts later is in the job too (the job is the innermost one, so libuv's own job, which
 * allows silent breakaway, does not let its children out). The host holds the only handle:
 *  - killing or recycling a worker is TerminateJobObject: its whole tree ends, detached or not,
 *    without walking parent links (Windows keeps no tree; taskkill /T guesses from stale pids);
 *  - when the host ends, however it ends (exit, crash, taskkill /F), the kernel closes the handles
 *    and kills every process of every job.
 * The host also keeps a handle to each worker's process (opened to assign it): while it is open,
 * Windows cannot give the worker's pid to another process, so a job is never confused with another
 * worker's, and the health sampler reads the worker's figures through it.
 *
 * Calls kernel32 through koffi (an optional dependency); without koffi, workers run unguarded and a
 * warning says so once. Verified under Wine with the real node.exe (docs/windows.md).
 */
import type { ChildProcess } from 'node:child_process';
import { loadKoffi } from '@process-sandbox/abstractions';
import type { Logger } from '../logger.js';
import type { PlatformGuard } from './guard.js';
import {
  bindKernel32,
  fileTimeMs,
  JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE,
  JobObjectExtendedLimitInformation,
  PROCESS_QUERY_LIMITED_INFORMATION,
  PROCESS_SET_QUOTA,
  PROCESS_TERMINATE,
  PROCESS_VM_READ,
  type Kernel32,
  type Koffi,
} from './win32-api.js';

interface WorkerJob {
  job: unknown;
  process: unknown;
}

/** What the OS says about one process (bytes, handles, milliseconds). */
export interface ProcessFigures {
  workingSetBytes: number;
  privateBytes: number;
  handles: number;
  cpuMs: number;
}

let kernel32: Kernel32 | null | undefined;
let koffi: Koffi | undefined;
let warned = false;
/** Worker pid → its job and process handles, from adopt() until release(). */
const jobs = new Map<number, WorkerJob>();

/** kernel32 through koffi, or undefined (with the reason thrown once) when it cannot be had. */
function api(): Kernel32 | undefined {
  if (kernel32 !== undefined) return kernel32 ?? undefined;
  kernel32 = null;
  koffi = loadKoffi<Koffi>(import.meta.url);
  if (!koffi) return undefined;
  kernel32 = bindKernel32(koffi);
  return kernel32;
}

function lastError(k: Kernel32): string {
  return `error ${k.GetLastError() as number}`;
}

/** Puts `pid` in a job of its own; returns why not, if it could not. */
function containInJob(pid: number): string | undefined {
  const k = api();
  if (!k) return 'koffi (an optional dependency) is not available';
  const processHandle = k.OpenProcess(PROCESS_SET_QUOTA | PROCESS_TERMINATE | PROCESS_QUERY_LIMITED_INFORMATION | PROCESS_VM_READ, 0, pid);
  if (!processHandle) return `OpenProcess(${pid}) failed (${lastError(k)})`;
  const job = k.CreateJobObjectW(null, null);
  if (!job) {
    const why = `CreateJobObjectW failed (${lastError(k)})`;
    k.CloseHandle(processHandle);
    return why;
  }
  const EXTENDED = k.types.structs.JOBOBJECT_EXTENDED_LIMIT_INFORMATION;
  const info = {
    BasicLimitInformation: {
      PerProcessUserTimeLimit: 0,
      PerJobUserTimeLimit: 0,
      // No JOB_OBJECT_LIMIT_BREAKAWAY_OK nor SILENT_BREAKAWAY_OK: nothing the worker starts leaves.
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
  let why: string | undefined;
  if (!k.SetInformationJobObject(job, JobObjectExtendedLimitInformation, info, koffi!.sizeof(EXTENDED))) why = `SetInformationJobObject failed (${lastError(k)})`;
  else if (!k.AssignProcessToJobObject(job, processHandle)) why = `AssignProcessToJobObject(${pid}) failed (${lastError(k)})`;
  if (why) {
    k.CloseHandle(job);
    k.CloseHandle(processHandle);
    return why;
  }
  jobs.set(pid, { job, process: processHandle });
  return undefined;
}

/** Ends every process in `pid`'s job (the worker and all it started). False if it has no job. */
export function terminateJob(pid: number): boolean {
  const entry = jobs.get(pid);
  if (!entry || !kernel32) return false;
  kernel32.TerminateJobObject(entry.job, 1);
  return true;
}

/** Ends `pid`'s job and lets go of its handles. False if it has no job. */
export function releaseJob(pid: number): boolean {
  if (!terminateJob(pid)) return false;
  release(pid);
  return true;
}

function release(pid: number): void {
  const entry = jobs.get(pid);
  if (!entry || !kernel32) return;
  jobs.delete(pid);
  kernel32.CloseHandle(entry.job);
  kernel32.CloseHandle(entry.process);
}

/**
 * Working set, private bytes, handle count and CPU time of `pid`, from the OS (no wmic), or
 * undefined if the process is gone or kernel32 cannot be reached. Uses the worker's own handle when
 * it has a job; otherwise opens one for the duration of the call.
 */
export function processFigures(pid: number): ProcessFigures | undefined {
  try {
    const k = api();
    return k ? figuresOf(k, pid) : undefined;
  } catch {
    return undefined; // koffi or kernel32 unusable here: the sampler falls back to pidusage
  }
}

function figuresOf(k: Kernel32, pid: number): ProcessFigures | undefined {
  const held = jobs.get(pid)?.process;
  const processHandle = held ?? k.OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION | PROCESS_VM_READ, 0, pid);
  if (!processHandle) return undefined;
  try {
    const MEMORY = k.types.structs.PROCESS_MEMORY_COUNTERS_EX;
    const memory: Record<string, number> = {};
    const handles = [0];
    const [created, exited, kernel, user] = [{}, {}, {}, {}] as Array<{ dwLowDateTime: number; dwHighDateTime: number }>;
    if (!k.K32GetProcessMemoryInfo(processHandle, memory, koffi!.sizeof(MEMORY))) return undefined;
    if (!k.GetProcessHandleCount(processHandle, handles)) return undefined;
    if (!k.GetProcessTimes(processHandle, created, exited, kernel, user)) return undefined;
    return {
      workingSetBytes: Number(memory.WorkingSetSize),
      privateBytes: Number(memory.PrivateUsage),
      handles: handles[0]!,
      cpuMs: fileTimeMs(kernel!) + fileTimeMs(user!),
    };
  } finally {
    if (!held) k.CloseHandle(processHandle);
  }
}

export const windowsGuard: PlatformGuard = {
  prepare(plan) {
    // Not detached: the worker shares the host's console (no window of its own, no console for
    // every child it starts) and is also in libuv's job; ours, assigned after, is the inner one.
    plan.options.detached = false;
  },
  adopt(child: ChildProcess, logger: Logger) {
    if (child.pid === undefined) return;
    let problem: string | undefined;
    try {
      problem = containInJob(child.pid);
    } catch (error) {
      problem = (error as Error).message;
    }
    if (problem && !warned) {
      warned = true;
      logger.warn({ problem }, `process-sandbox: workers are not in a Job Object (${problem}); killing a worker may leave what it started running, and a host killed abruptly may leave them all running`);
    }
  },
};

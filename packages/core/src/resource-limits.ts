/**
 * Opt-in hard OS limits on each worker (`limits` option), and telling a worker killed by one of them
 * apart from a crash.
 *
 * maxOpenFiles, maxAddressSpaceMB and maxCpuSeconds are setrlimit limits the worker applies to
 * itself before the implementation loads (@process-sandbox/worker's limits.ts); maxHeapMB becomes
 * V8's --max-old-space-size on the worker's command line. rlimits are inherited by whatever the
 * worker spawns, and are per process: maxCpuSeconds is CPU time over the worker's whole life (every
 * thread of it), not per call.
 */
import { ConfigurationError, ResourceLimitError } from '@process-sandbox/abstractions';
import type { WorkerLimits } from '@process-sandbox/abstractions';
import { cgroupOomKilled } from './cgroup.js';

export interface ResourceLimits {
  /** RLIMIT_NOFILE: most open descriptors; opening more fails with EMFILE inside the worker. At least 32. */
  maxOpenFiles?: number;
  /** RLIMIT_AS, in MiB: most virtual memory. Node reserves a lot of address space: keep it well above 2048. */
  maxAddressSpaceMB?: number;
  /** RLIMIT_CPU, in seconds of CPU time over the worker's life: then SIGXCPU (ResourceLimitError 'cpu'). */
  maxCpuSeconds?: number;
  /** V8's --max-old-space-size, in MiB: past it V8 aborts the worker (ResourceLimitError 'heap'). */
  maxHeapMB?: number;
}

export type ResolvedLimits = Readonly<ResourceLimits>;

const RANGES: Record<keyof ResourceLimits, [min: number, max: number]> = {
  maxOpenFiles: [32, 1 << 30],
  maxAddressSpaceMB: [256, 1 << 30],
  maxCpuSeconds: [1, 1 << 30],
  maxHeapMB: [16, 1 << 30],
};

/** Validates the `limits` option (and its interplay with `execArgv`). */
export function resolveLimits(value: unknown, execArgv: readonly string[]): ResolvedLimits | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new ConfigurationError('limits', 'expected an object such as { maxOpenFiles: 256, maxCpuSeconds: 60 }');
  const limits: ResourceLimits = {};
  for (const [key, v] of Object.entries(value)) {
    if (!(key in RANGES)) throw new ConfigurationError('limits', `unknown limit '${key}'; known limits are ${Object.keys(RANGES).join(', ')}`);
    if (v === undefined) continue;
    const [min, max] = RANGES[key as keyof ResourceLimits];
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
      throw new ConfigurationError('limits', `${key} must be a whole number between ${min} and ${max}, got ${String(v)}`);
    }
    limits[key as keyof ResourceLimits] = v;
  }
  const rlimits = limits.maxOpenFiles !== undefined || limits.maxAddressSpaceMB !== undefined || limits.maxCpuSeconds !== undefined;
  if (rlimits && process.platform !== 'linux' && process.platform !== 'darwin') {
    throw new ConfigurationError('limits', `maxOpenFiles, maxAddressSpaceMB and maxCpuSeconds are POSIX resource limits, not available on ${process.platform} (maxHeapMB is)`);
  }
  if (limits.maxHeapMB !== undefined && execArgv.some((a) => a.startsWith('--max-old-space-size'))) {
    throw new ConfigurationError('limits', 'maxHeapMB and a --max-old-space-size in execArgv contradict each other; give one');
  }
  return Object.freeze(limits);
}

/** What the worker applies to itself (ENV_LIMITS), or undefined when there is nothing to apply. */
export function workerLimits(limits: ResolvedLimits | undefined): WorkerLimits | undefined {
  if (!limits) return undefined;
  const { maxOpenFiles, maxAddressSpaceMB, maxCpuSeconds } = limits;
  if (maxOpenFiles === undefined && maxAddressSpaceMB === undefined && maxCpuSeconds === undefined) return undefined;
  return { maxOpenFiles, maxAddressSpaceMB, maxCpuSeconds };
}

/** Node flags that the limits add in front of the worker's own execArgv. */
export function limitFlags(limits: ResolvedLimits | undefined): string[] {
  return limits?.maxHeapMB === undefined ? [] : [`--max-old-space-size=${limits.maxHeapMB}`];
}

const HEAP_EXHAUSTED = /JavaScript heap out of memory|Reached heap limit/;
const ALLOCATION_FAILED = /Fatal process out of memory|Cannot allocate memory|std::bad_alloc|ENOMEM/;

/**
 * When a worker that ended unasked was stopped by one of its limits, the error that says so;
 * undefined for an ordinary crash.
 */
export function limitErrorFor(
  options: { limits?: ResolvedLimits; cgroup?: unknown },
  pid: number,
  exitCode: number | null,
  signal: NodeJS.Signals | null,
  method: string | undefined,
  stderrTail: string,
): ResourceLimitError | undefined {
  const { limits } = options;
  // SIGXCPU comes at the soft limit. (The hard limit's SIGKILL, a second later, only reaches a worker
  // that caught or ignored SIGXCPU; by then the process is reaped and its CPU time unreadable.)
  if (signal === 'SIGXCPU') {
    const detail = limits?.maxCpuSeconds !== undefined ? `CPU time limit of ${limits.maxCpuSeconds} s (limits.maxCpuSeconds) reached` : 'CPU time limit (RLIMIT_CPU) reached';
    return new ResourceLimitError('cpu', pid, method, `${detail}; killed by ${signal}`);
  }
  if (options.cgroup && cgroupOomKilled(pid)) {
    return new ResourceLimitError('hardMemory', pid, method, 'its cgroup reached its memory limit (cgroup.memoryMax, else hardMemoryLimitMB) and the kernel OOM killer ended it');
  }
  const aborted = signal === 'SIGABRT' || signal === 'SIGTRAP' || exitCode === 134;
  if (limits?.maxHeapMB !== undefined && aborted && HEAP_EXHAUSTED.test(stderrTail)) {
    return new ResourceLimitError('heap', pid, method, `V8 heap limit of ${limits.maxHeapMB} MiB (limits.maxHeapMB) reached`);
  }
  if (limits?.maxAddressSpaceMB !== undefined && (aborted || exitCode !== 0) && ALLOCATION_FAILED.test(stderrTail)) {
    return new ResourceLimitError('addressSpace', pid, method, `address space limit of ${limits.maxAddressSpaceMB} MiB (limits.maxAddressSpaceMB) reached`);
  }
  return undefined;
}


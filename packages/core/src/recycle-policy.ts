/**
 * When a worker should leave service, decided from what it reports and what the host measures.
 *
 * Soft limits (memory, handles, calls, lifetime) never interrupt a call: a worker over one is
 * retired when it is next idle, before it is offered another call. The hard memory limit is the
 * exception: crossed mid-call, the worker is killed at once.
 */

export type RecycleReason = 'memory' | 'handles' | 'calls' | 'lifetime' | 'idle' | 'hardMemory' | 'reload';
export const RECYCLE_REASONS: readonly RecycleReason[] = ['memory', 'handles', 'calls', 'lifetime', 'idle', 'hardMemory', 'reload'];

export interface RecycleLimits {
  maxMemoryMB: number | undefined;
  maxHandles: number | undefined;
  processRecycleThreshold: number | undefined;
  maxProcessLifetimeMs: number | undefined;
  hardMemoryLimitMB: number | undefined;
}

/** What is known of a worker right now. Undefined where nothing was measured yet. */
export interface WorkerUsage {
  rssBytes: number | undefined;
  handles: number | undefined;
  calls: number;
  ageMs: number;
}

export interface LimitWarning {
  limit: 'memory' | 'hardMemory' | 'handles' | 'calls' | 'lifetime';
  value: number;
  max: number;
}

const MB = 1024 * 1024;
/** A resourceWarning is emitted once a worker passes this fraction of a limit. */
const WARNING_FRACTION = 0.8;

export class RecyclePolicy {
  readonly #limits: RecycleLimits;

  /** Whether any soft limit retires workers (then a warm spare keeps replacements off the callers' path). */
  readonly recycles: boolean;

  constructor(limits: RecycleLimits) {
    this.#limits = limits;
    this.recycles = limits.maxMemoryMB !== undefined || limits.maxHandles !== undefined || limits.processRecycleThreshold !== undefined || limits.maxProcessLifetimeMs !== undefined;
  }

  /** The soft limit this worker has reached, if any: retire it before its next call. */
  retireReason(usage: WorkerUsage): RecycleReason | undefined {
    const l = this.#limits;
    if (l.processRecycleThreshold !== undefined && usage.calls >= l.processRecycleThreshold) return 'calls';
    if (l.maxMemoryMB !== undefined && usage.rssBytes !== undefined && usage.rssBytes >= l.maxMemoryMB * MB) return 'memory';
    if (l.maxHandles !== undefined && usage.handles !== undefined && usage.handles >= l.maxHandles) return 'handles';
    if (l.maxProcessLifetimeMs !== undefined && usage.ageMs >= l.maxProcessLifetimeMs) return 'lifetime';
    return undefined;
  }

  /** True when the worker must be killed now, whatever it is doing. */
  overHardLimit(usage: WorkerUsage): boolean {
    const max = this.#limits.hardMemoryLimitMB;
    return max !== undefined && usage.rssBytes !== undefined && usage.rssBytes >= max * MB;
  }

  /** Limits this worker has passed 80 % of. */
  warnings(usage: WorkerUsage): LimitWarning[] {
    const l = this.#limits;
    const out: LimitWarning[] = [];
    const check = (limit: LimitWarning['limit'], value: number | undefined, max: number | undefined): void => {
      if (value !== undefined && max !== undefined && value >= max * WARNING_FRACTION) out.push({ limit, value, max });
    };
    check('memory', usage.rssBytes, l.maxMemoryMB === undefined ? undefined : l.maxMemoryMB * MB);
    check('hardMemory', usage.rssBytes, l.hardMemoryLimitMB === undefined ? undefined : l.hardMemoryLimitMB * MB);
    check('handles', usage.handles, l.maxHandles);
    check('calls', usage.calls, l.processRecycleThreshold);
    check('lifetime', usage.ageMs, l.maxProcessLifetimeMs);
    return out;
  }
}

/** The shapes of what a pool reports and accepts: its stats, dispose() and lease() options. */
import type { WorkerState, PoolWorker } from './pool-worker.js';
import type { RecycleReason } from './recycle-policy.js';

export interface WorkerStats {
  id: number;
  pid: number;
  state: WorkerState;
  /** The warm spare: started and ready, held out of service until a worker leaves. */
  spare: boolean;
  /** Pinned to a lease. */
  leased: boolean;
  calls: number;
  rssBytes: number | undefined;
  heapUsedBytes: number | undefined;
  handles: number | undefined;
  cpuMs: number | undefined;
  startedAt: number;
  lastHealthAt: number | undefined;
}

export interface PoolStats {
  workers: WorkerStats[];
  totals: {
    calls: number;
    succeeded: number;
    failed: number;
    crashes: number;
    timeouts: number;
    recycles: Record<RecycleReason, number>;
    queued: number;
    inFlight: number;
  };
  /** Open leases (sessions), including those still waiting for a worker. */
  leases: number;
  circuit: 'closed' | 'open' | 'halfOpen';
}

export interface DisposeOptions {
  /** Run the calls already queued before stopping (default false: they reject with PoolDisposedError). */
  drain?: boolean;
}

export interface LeaseOptions {
  /** Build a fresh implementation instance for the session, disposed at its end. Default true. */
  newInstancePerSession?: boolean;
  /** Place in the line for a worker: higher first. Default 0. */
  priority?: number;
}

/** One worker's line in PoolStats. */
export function workerStats(w: PoolWorker, spare: boolean): WorkerStats {
  return {
    id: w.id,
    pid: w.pid,
    state: w.state,
    spare,
    leased: w.lease !== undefined,
    calls: w.calls,
    rssBytes: w.rssBytes,
    heapUsedBytes: w.health?.heapUsed,
    handles: w.handles,
    cpuMs: w.cpuMs,
    startedAt: w.startedAt,
    lastHealthAt: w.lastHealthAt,
  };
}

/** The shape of what a pool reports: stats() (its options, lease() and dispose(), are in pool.ts). */
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
  /**
   * Calls sent ahead to it (pipelineDepth) that it has not started. One aborted while ahead counts
   * until the worker confirms it dropped it unrun.
   */
  ahead: number;
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
    /** Fuel consumed by WebAssembly calls (`wasm.fuelPerCall`), as their workers reported it. */
    fuel: number;
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

/** One worker's line in PoolStats. */
export function workerStats(w: PoolWorker, spare: boolean): WorkerStats {
  return {
    id: w.id,
    pid: w.pid,
    state: w.state,
    spare,
    leased: w.lease !== undefined,
    calls: w.calls,
    ahead: w.aheadCalls.length,
    rssBytes: w.rssBytes,
    heapUsedBytes: w.health?.heapUsed,
    handles: w.handles,
    cpuMs: w.cpuMs,
    startedAt: w.startedAt,
    lastHealthAt: w.lastHealthAt,
  };
}

/**
 * The seam between the pool and its workers. The pool, the dispatcher and leases see a worker only
 * through `PoolWorker`, and the pool makes them through a `WorkerFactory`: by default a WorkerHandle
 * that spawns a real process; in the unit tests a fake that replies when the test says so. Time is
 * behind the same seam (`Clock`), so that the scheduling, recycling and breaker decisions can be
 * checked without processes and without waiting.
 */
import type { HealthSnapshot, WorkerStartError } from '@process-sandbox/abstractions';
import type { Call } from './call.js';
import type { HostSample } from './health-sampler.js';
import type { Lease } from './lease.js';
import type { ResolvedOptions } from './options.js';

export type WorkerState = 'spawning' | 'handshaking' | 'idle' | 'busy' | 'draining' | 'stopping' | 'exited' | 'crashed';

/** Started or serving, not on its way out: counts toward the pool's capacity. */
export function isLive(state: WorkerState): boolean {
  return state === 'spawning' || state === 'handshaking' || state === 'idle' || state === 'busy';
}

/** Why a worker left service; recycling reasons join these in the recycling work. */
export type StopReason = 'dispose' | 'timeout' | 'crash' | 'start-failed' | 'protocol' | 'shrink' | string;

/** What a worker tells the pool. */
export interface WorkerObserver {
  onStateChange(worker: PoolWorker, from: WorkerState, to: WorkerState): void;
  /** A call began running (from idle, or a sent-ahead call whose predecessor just replied). */
  onCallStarted(worker: PoolWorker, call: Call): void;
  /** A call finished and the worker went straight on with the one sent ahead (it stays busy). */
  onCallDone(worker: PoolWorker): void;
  /** A call sent ahead never started: its worker is gone. It must run elsewhere, exactly once. */
  onUnstarted(worker: PoolWorker, call: Call): void;
  /** The running call ended with the process, failing with `error`: the pool settles it (or retries it). */
  onCallLost(worker: PoolWorker, call: Call, error: Error): void;
  onHealth(worker: PoolWorker, health: HealthSnapshot): void;
  onCallTimedOut(worker: PoolWorker, call: Call): void;
  /** A named event the implementation emitted (within the host's event budget). */
  onWorkerEvent(worker: PoolWorker, name: string, payload: unknown): void;
}

/** One worker, as the pool, the dispatcher and leases see it. */
export interface PoolWorker {
  readonly id: number;
  readonly pid: number;
  /** The pid whose memory and CPU are sampled: `pid`, or in a PID namespace the node process under it. */
  readonly runtimePid: number;
  /** The pool's code generation this worker runs (bumped by reload()). */
  readonly generation: number;
  /** When it was made, on the clock's `now()`. */
  readonly startedAt: number;
  /** The lease this worker is pinned to, if any: then the pool does not hand it other calls. */
  lease: Lease | undefined;
  readonly state: WorkerState;
  /** Counts toward the pool's capacity: started or serving, not on its way out. */
  readonly live: boolean;
  /** The process has ended. */
  readonly terminal: boolean;
  /** Method names it reported in Ready. */
  readonly methods: readonly string[];
  /** Resolves when the worker is ready for calls; rejects with WorkerStartError. */
  readonly ready: Promise<void>;
  /** Resolves when the process has exited, for whatever reason. Never rejects. */
  readonly exited: Promise<void>;
  /** Calls this worker finished (value or thrown error). */
  readonly calls: number;
  readonly currentCall: Call | undefined;
  readonly aheadCall: Call | undefined;
  /** Busy with a user's call, nothing sent ahead yet, not pinned to a lease. */
  readonly canTakeAhead: boolean;
  /** How long it has been in its current state, in ms. */
  readonly msInState: number;
  readonly rssBytes: number | undefined;
  readonly handles: number | undefined;
  readonly cpuMs: number | undefined;
  readonly health: HealthSnapshot | undefined;
  readonly lastHealthAt: number | undefined;
  readonly stopReason: StopReason | undefined;
  readonly exitCode: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly interruptedMethod: string | undefined;
  /** Set when it ended before it was ready. */
  readonly startError: WorkerStartError | undefined;
  readonly endReason: string | undefined;
  /** Runs `call` now if idle, or sends it ahead if busy and `canTakeAhead`; throws otherwise. */
  run(call: Call): void;
  /** The caller aborted `call`, which was sent ahead: ask the worker to drop it if it has not begun. */
  cancelAhead(call: Call): void;
  /** Takes it out of service: idle ones shut down, busy ones finish their call first. */
  stop(reason: StopReason, graceFromNow?: boolean): void;
  /** Kills it now; the call in flight, if any, rejects with `error`. */
  killDuringCall(reason: StopReason, error: Error): void;
  recordHostSample(sample: HostSample): void;
}

export type WorkerFactory = (id: number, options: ResolvedOptions, observer: WorkerObserver, generation: number) => PoolWorker;

export type TimerHandle = ReturnType<typeof setTimeout>;

/** Time, as the pool and the dispatcher use it. */
export interface Clock {
  /** Milliseconds since the epoch (ages, the breaker's back-off). */
  now(): number;
  /** A monotonic, sub-millisecond clock (call spacing). */
  precise(): number;
  setTimeout(callback: () => void, ms: number): TimerHandle;
  clearTimeout(timer: TimerHandle | undefined): void;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  precise: () => performance.now(),
  setTimeout: (callback, ms) => setTimeout(callback, ms),
  clearTimeout: (timer) => clearTimeout(timer),
};

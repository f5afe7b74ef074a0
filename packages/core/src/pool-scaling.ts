/**
 * How many workers the pool runs, and when it starts one: always minPoolSize, more while calls wait
 * (up to maxPoolSize), the warm spares on top, and a spare promoted when a worker leaves service.
 * It exists so that every start after the pool's first goes through one gate (the circuit breaker,
 * never while the pool is stopping) and never happens inside a reply's path: refills wait for the
 * next turn of the event loop. Whether a worker must leave is Recycling's; this only replaces it.
 */
import type { ResolvedOptions } from './options.js';
import type { PoolWorker } from './pool-worker.js';
import type { StartGuard } from './start-guard.js';
import type { WarmSpares } from './warm-spares.js';
import type { WorkerSet } from './worker-set.js';

/** What scaling needs from its pool. */
export interface ScalingHost {
  readonly options: ResolvedOptions;
  /** The pool is stopping its workers: nothing more is started. */
  readonly stopping: boolean;
  /** Entries waiting in the dispatcher's line. */
  readonly waiting: number;
  /** Starts one worker (not through the breaker: `start` is). */
  spawn(): PoolWorker;
  /** A promoted spare is idle: retire it if it must go, else put it to work. */
  toWork(worker: PoolWorker): void;
}

export class PoolScaling {
  readonly #host: ScalingHost;
  readonly #workers: WorkerSet;
  readonly #spares: WarmSpares;
  readonly #startGuard: StartGuard;
  #refillScheduled = false;

  constructor(host: ScalingHost, workers: WorkerSet, spares: WarmSpares, startGuard: StartGuard) {
    this.#host = host;
    this.#workers = workers;
    this.#spares = spares;
    this.#startGuard = startGuard;
  }

  /** Starts a worker unless the pool is stopping or the circuit breaker says no. */
  start(): PoolWorker | undefined {
    return this.#host.stopping ? undefined : this.#startGuard.tryStart(() => this.#host.spawn());
  }

  /** `waiting` entries want a worker: start one for each beyond those already starting, up to maxPoolSize. */
  demand(waiting: number): void {
    if (this.#host.stopping) return;
    let live = this.#workers.liveCount();
    for (let missing = waiting - this.#workers.startingCount(); missing > 0 && live < this.#host.options.maxPoolSize && this.start(); missing--, live++);
  }

  /** Starts spares until there are as many as the planner wants. */
  fillSpares(): void {
    this.#spares.fill(() => this.start());
  }

  /**
   * #refill on the next turn of the event loop. Starting a process (a replacement, a spare) takes a
   * millisecond or more of synchronous work: it is never done between a reply and its caller, who
   * gets the reply first (its promise reactions run before an immediate).
   */
  refillSoon(): void {
    if (this.#refillScheduled || this.#host.stopping) return;
    this.#refillScheduled = true;
    setImmediate(() => {
      this.#refillScheduled = false;
      this.refill();
    });
  }

  /** Back up to minPoolSize, and to as many workers as the waiting calls need. */
  refill(): void {
    if (this.#host.stopping) return;
    while (this.#workers.liveCount() < this.#host.options.minPoolSize && this.start());
    this.demand(this.#host.waiting);
    this.fillSpares();
  }

  /** A worker left service: a spare (a ready one if there is one, else the oldest) serves in its place, and the spares are topped up. */
  promoteSpare(): void {
    if (this.#host.stopping) return;
    const spare = this.#spares.promote();
    if (!spare) return;
    if (spare.state === 'idle') this.#host.toWork(spare);
    this.refillSoon();
  }
}

/**
 * The pool's workers, and the questions the pool, the dispatcher, leases and recycling ask of them:
 * which one is free, which holds a call, which serves a lease, how many count toward maxPoolSize, how
 * many are still starting. Every answer is read from the workers' own states (and from WarmSpares,
 * which alone knows the spares), so nothing here is a second record of where a worker stands. It
 * also makes the workers, through the pool's WorkerFactory, so that ids are given in one place.
 */
import type { Call } from './call.js';
import type { Lease } from './lease.js';
import type { ResolvedOptions } from './options.js';
import type { PoolWorker, WorkerFactory, WorkerObserver } from './pool-worker.js';
import type { WarmSpares } from './warm-spares.js';

export class WorkerSet implements Iterable<PoolWorker> {
  readonly #workers = new Set<PoolWorker>();
  readonly #create: WorkerFactory;
  readonly #spares: WarmSpares;
  #nextId = 1;

  constructor(create: WorkerFactory, spares: WarmSpares) {
    this.#create = create;
    this.#spares = spares;
  }

  [Symbol.iterator](): Iterator<PoolWorker> {
    return this.#workers[Symbol.iterator]();
  }

  /** Makes a worker and counts it in until it is gone. */
  make(options: ResolvedOptions, observer: WorkerObserver, generation: number): PoolWorker {
    const worker = this.#create(this.#nextId++, options, observer, generation);
    this.#workers.add(worker);
    return worker;
  }

  /** The process has ended: it is no longer one of the pool's. */
  gone(worker: PoolWorker): void {
    this.#workers.delete(worker);
  }

  /**
   * The free worker used last (the fewest ms idle): handing out the warmest keeps the others free
   * to shrink. Free: idle, and neither pinned to a lease nor held back as a spare.
   */
  takeIdle(): PoolWorker | undefined {
    let warmest: PoolWorker | undefined;
    let warmestMs = Infinity;
    for (const w of this.#workers) {
      if (!this.#isFree(w)) continue;
      const ms = w.msInState;
      if (ms <= warmestMs) [warmest, warmestMs] = [w, ms];
    }
    return warmest;
  }

  hasIdle(): boolean {
    for (const w of this.#workers) if (this.#isFree(w)) return true;
    return false;
  }

  /** The worker running `call`, or holding it sent ahead. */
  holderOf(call: Call): PoolWorker | undefined {
    for (const worker of this.#workers) if (worker.currentCall === call || worker.aheadCall === call) return worker;
    return undefined;
  }

  /** The worker pinned to `lease`: stored once, as the worker's `lease`. */
  pinnedTo(lease: Lease): PoolWorker | undefined {
    for (const worker of this.#workers) if (worker.lease === lease) return worker;
    return undefined;
  }

  /** Workers that count toward maxPoolSize: serving or starting, not leaving, not a spare. */
  liveCount(): number {
    let live = 0;
    for (const w of this.#workers) if (w.live && !this.#spares.has(w)) live++;
    return live;
  }

  /** Workers on their way to serving (not spares): a waiting call need not start another for them. */
  startingCount(): number {
    let starting = 0;
    for (const w of this.#workers) if (!this.#spares.has(w) && (w.state === 'spawning' || w.state === 'handshaking')) starting++;
    return starting;
  }

  /** Pids of worker processes that have not exited yet. */
  livePids(): number[] {
    return [...this.#workers].filter((w) => !w.terminal && w.pid > 0).map((w) => w.pid);
  }

  #isFree(worker: PoolWorker): boolean {
    return worker.state === 'idle' && worker.lease === undefined && !this.#spares.has(worker);
  }
}

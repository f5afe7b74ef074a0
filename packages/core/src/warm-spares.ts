/**
 * The warm spares of a recycling pool: workers started ahead of need and kept out of service until
 * a worker leaves, when one takes its place, so that a retirement never makes a caller wait for a
 * start. Usually one; more while workers retire faster than a new one starts (see SparePlanner).
 * Which workers are spares is kept here only.
 */
import type { PoolWorker } from './pool-worker.js';
import { SparePlanner } from './spare-planner.js';

export class WarmSpares {
  /** In the order they were started: the oldest first. */
  readonly #spares = new Set<PoolWorker>();
  readonly #planner: SparePlanner;

  constructor(
    /** The warmSpare option: whether this pool keeps spares at all. */
    readonly enabled: boolean,
    callThreshold: number | undefined,
    /** The most spares kept at once (the warmSpare option's number). */
    maxSpares?: number,
  ) {
    this.#planner = new SparePlanner(callThreshold, maxSpares);
  }

  has(worker: PoolWorker): boolean {
    return this.#spares.has(worker);
  }

  get all(): Iterable<PoolWorker> {
    return this.#spares;
  }

  /** Takes one spare out, to serve in a leaving worker's place: a ready one if there is one, else the oldest. */
  promote(): PoolWorker | undefined {
    let chosen: PoolWorker | undefined;
    for (const spare of this.#spares) {
      chosen ??= spare;
      if (spare.state === 'idle') {
        chosen = spare;
        break;
      }
    }
    if (chosen) this.#spares.delete(chosen);
    return chosen;
  }

  /** Starts spares through `start` (which may refuse: the breaker, a stopping pool) until there are as many as wanted. */
  fill(start: () => PoolWorker | undefined): void {
    if (!this.enabled) return;
    for (let w; this.#spares.size < this.#planner.wanted && (w = start()); ) this.#spares.add(w);
  }

  remove(worker: PoolWorker): void {
    this.#spares.delete(worker);
  }

  /** They run old code (reload): from now on they are workers like the others, and leave like them. */
  clear(): void {
    this.#spares.clear();
  }

  // ─── what the planner learns from ─────────────────────────────────────────

  /** A call started; returns true if more spares are wanted now. */
  callStarted(now: number, serving: number): boolean {
    return this.enabled && this.#planner.callStarted(now, serving);
  }

  /** A worker took `ms` from spawn to ready. */
  started(ms: number): void {
    this.#planner.started(ms);
  }

  /** A worker that served `lifetimeMs` retired over a limit, in a pool of `serving` workers. */
  retired(now: number, lifetimeMs: number, serving: number): void {
    this.#planner.retired(now, lifetimeMs, serving);
  }
}

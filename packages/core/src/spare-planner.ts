/**
 * How many warm spares a recycling pool keeps. A spare must be ready when a worker retires, so the
 * pipeline of spares has to cover one start-up time: with workers retiring every `interval` ms and a
 * start taking `startup` ms, the spare promoted now must have been started ceil(startup / interval)
 * retirements ago. Both times are measured (moving averages), so the count follows the workload:
 * one spare for slow recycling, up to MAX_SPARES when workers retire faster than one starts.
 *
 * Before any worker has retired, a call threshold already tells when they will: every
 * `threshold` calls per serving worker. So the call rate gives the interval from the first calls on.
 */

/** Most warm spares kept at once (so at most maxPoolSize + MAX_SPARES processes while recycling). */
export const MAX_SPARES = 3;
const WEIGHT = 0.5;

export class SparePlanner {
  #startupMs: number | undefined;
  #intervalMs: number | undefined;
  #lastRetirementAt: number | undefined;
  #callSpacingMs: number | undefined;
  #lastCallAt: number | undefined;

  constructor(private readonly callThreshold: number | undefined) {}

  /** A call started somewhere in the pool; returns true if the wanted number of spares grew. */
  callStarted(now: number, serving: number): boolean {
    if (this.callThreshold === undefined) return false;
    if (this.#lastCallAt !== undefined) {
      const spacing = now - this.#lastCallAt;
      this.#callSpacingMs = this.#callSpacingMs === undefined ? spacing : WEIGHT * spacing + (1 - WEIGHT) * this.#callSpacingMs;
    }
    this.#lastCallAt = now;
    const before = this.wanted;
    this.#predicted = this.#callSpacingMs === undefined ? undefined : (this.#callSpacingMs * this.callThreshold) / Math.max(1, serving);
    return this.wanted > before;
  }
  #predicted: number | undefined;

  /** A worker took `ms` from spawn to ready. */
  started(ms: number): void {
    this.#startupMs = this.#startupMs === undefined ? ms : WEIGHT * ms + (1 - WEIGHT) * this.#startupMs;
  }

  /**
   * A worker that served `lifetimeMs` retired, in a pool of `serving` workers. The first retirement
   * estimates the interval from that worker's life; later ones from the time between retirements.
   */
  retired(now: number, lifetimeMs: number, serving: number): void {
    const interval = this.#lastRetirementAt === undefined ? lifetimeMs / Math.max(1, serving) : now - this.#lastRetirementAt;
    this.#lastRetirementAt = now;
    this.#intervalMs = this.#intervalMs === undefined ? interval : WEIGHT * interval + (1 - WEIGHT) * this.#intervalMs;
  }

  get wanted(): number {
    const interval = this.#intervalMs ?? this.#predicted;
    if (this.#startupMs === undefined || interval === undefined || interval <= 0) return 1;
    return Math.min(MAX_SPARES, Math.max(1, Math.ceil(this.#startupMs / interval)));
  }
}

/**
 * How many warm spares a recycling pool keeps. A spare must be ready when a worker retires, so the
 * pipeline of spares has to cover one start-up time: with workers retiring every `interval` ms and a
 * start taking `startup` ms, the spare promoted now must have been started ceil(startup / interval)
 * retirements ago. Both times are measured (moving averages), so the count follows the workload:
 * one spare for slow recycling, more (up to the pool's cap) when workers retire faster than one starts.
 *
 * The start time covered is not the average start but a slow one: the average plus twice the
 * average deviation (as TCP sizes its retransmission timeout from round-trip times). Starts vary
 * most exactly when they matter: on a loaded machine they took 130 ms at the median and up to
 * 450 ms, and a spare sized for the average was still starting, one retirement in five, when its
 * turn came; the call that found no worker ready waited for the rest of its start (15–180 ms).
 *
 * Before any worker has retired, a call threshold already tells when they will: every
 * `threshold` calls per serving worker. So the call rate gives the interval from the first calls on.
 */

/** Most warm spares kept at once by default (`warmSpare: true`): at most maxPoolSize + this many processes while recycling. */
export const MAX_SPARES = 4;
/** Most a pool may ask for (`warmSpare: n`). */
export const MAX_SPARES_LIMIT = 64;
const WEIGHT = 0.5;
/** How many average deviations above the average start time the spares cover. */
const DEVIATIONS = 2;

export class SparePlanner {
  #startupMs: number | undefined;
  #startupDeviationMs = 0;
  #intervalMs: number | undefined;
  #lastRetirementAt: number | undefined;
  #callSpacingMs: number | undefined;
  #lastCallAt: number | undefined;
  #predicted: number | undefined;

  constructor(
    private readonly callThreshold: number | undefined,
    /** The most spares wanted, whatever the measures say (the warmSpare option). */
    private readonly maxSpares = MAX_SPARES,
  ) {}

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

  /** A worker took `ms` from spawn to ready. */
  started(ms: number): void {
    if (this.#startupMs === undefined) {
      // One start says little about the next: assume they vary by half of it until more are seen.
      this.#startupMs = ms;
      this.#startupDeviationMs = ms / 2;
      return;
    }
    this.#startupDeviationMs = WEIGHT * Math.abs(ms - this.#startupMs) + (1 - WEIGHT) * this.#startupDeviationMs;
    this.#startupMs = WEIGHT * ms + (1 - WEIGHT) * this.#startupMs;
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

  /** The start time the spares cover: a slow start, not the average one. */
  get coveredStartupMs(): number | undefined {
    return this.#startupMs === undefined ? undefined : this.#startupMs + DEVIATIONS * this.#startupDeviationMs;
  }

  get wanted(): number {
    const interval = this.#intervalMs ?? this.#predicted;
    const startup = this.coveredStartupMs;
    const cap = Math.max(1, this.maxSpares);
    if (startup === undefined || interval === undefined || interval <= 0) return 1;
    return Math.min(cap, Math.max(1, Math.ceil(startup / interval)));
  }
}

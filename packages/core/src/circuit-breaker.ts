/**
 * Stops crash loops. A worker "dies young" when it fails to start or crashes within its first
 * YOUNG_CALLS calls. After THRESHOLD young deaths in a row the circuit opens: calls and create()
 * fail fast with CircuitOpenError (carrying the last failure) and no worker is started until the
 * back-off ends (doubling each time it reopens, up to MAX_BACKOFF_MS). Then it is half-open: one
 * probe worker may start; if it dies young the circuit reopens, if it serves YOUNG_CALLS calls the
 * circuit closes.
 *
 * One breaker per pool. (Sharing one among the pools of the same module was tried: a pool then
 * failed because of crashes in another, unrelated one.) create() needs none: it fails on the first
 * start failure, with the WorkerStartError itself.
 */
import { CircuitOpenError } from '@process-sandbox/abstractions';

export const YOUNG_CALLS = 3;
const THRESHOLD = 3;
const BASE_BACKOFF_MS = 500;
const MAX_BACKOFF_MS = 30_000;

export class CircuitBreaker {
  #youngDeaths = 0;
  #openings = 0;
  #openUntil = 0;
  #probing = false;
  #lastError: Error | undefined;

  get state(): 'closed' | 'open' | 'halfOpen' {
    if (this.#openings === 0) return 'closed';
    return Date.now() < this.#openUntil ? 'open' : 'halfOpen';
  }

  /** When the circuit may next let a worker start. */
  get retryAt(): number {
    return this.#openUntil;
  }

  /** Throws CircuitOpenError while the circuit is open. */
  check(): void {
    if (this.state === 'open') throw new CircuitOpenError(this.#openUntil, this.#lastError);
  }

  /** Asks to start a worker: always while closed; once (the probe) while half-open; never while open. */
  mayStart(): boolean {
    const state = this.state;
    if (state === 'closed') return true;
    if (state === 'open' || this.#probing) return false;
    this.#probing = true;
    return true;
  }

  /** Returns true if this death opened (or reopened) the circuit. */
  youngDeath(error: Error): boolean {
    this.#lastError = error;
    this.#probing = false;
    this.#youngDeaths++;
    if (this.#openings === 0 && this.#youngDeaths < THRESHOLD) return false;
    this.#openings++;
    this.#openUntil = Date.now() + Math.min(BASE_BACKOFF_MS * 2 ** (this.#openings - 1), MAX_BACKOFF_MS);
    return true;
  }

  survived(): void {
    this.#youngDeaths = 0;
    this.#openings = 0;
    this.#openUntil = 0;
    this.#probing = false;
  }
}

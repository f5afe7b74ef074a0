/**
 * Stops start-up crash loops. It judges whether workers can START, never whether calls succeed:
 *
 * - A worker **dies young** when it dies before it is ready (a start failure: the module throws or
 *   exits while loading, the handshake fails, processStartTimeoutMs passes), or when it dies after
 *   it is ready but before it has served its first call *with no call running to blame* (say, it
 *   exits on a timer set while loading).
 * - A worker that dies while a call runs in it was killed by that call (process.exit, a segfault, a
 *   call timeout): that is the call's failure, reported to its caller as WorkerCrashedError (or
 *   CallTimeoutError), and it never counts here. Otherwise a load where many calls crash their
 *   workers, each of them replaced, would trip the breaker and refuse the healthy calls too.
 * - A worker **survives** when it completes its first call: start-up works, the record is cleared.
 *   Later calls of established workers say nothing about start-up, and do not clear it.
 *
 * After THRESHOLD young deaths with no survival between them the circuit opens: calls and leases
 * fail fast with CircuitOpenError (carrying the last failure) and no worker is started until the
 * back-off ends (doubling each time it reopens, up to MAX_BACKOFF_MS). Then it is half-open: one
 * probe worker may start. If the probe dies young the circuit reopens, with a longer back-off; if it
 * serves its first call the circuit closes. Ready alone is not enough: a module whose workers die
 * right after Ready would otherwise close the circuit at every probe and never see its back-off grow.
 * A probe that ends with no verdict (killed by the call it ran, stopped by the pool) lets another
 * probe start.
 *
 * One breaker per pool, so that a pool never fails because of crashes in another one that happens to
 * load the same module. create() needs none: it fails on the first start failure, with the
 * WorkerStartError itself. The clock is injectable for tests.
 */
import { CircuitOpenError } from '@process-sandbox/abstractions';

const THRESHOLD = 3;
const BASE_BACKOFF_MS = 500;
const MAX_BACKOFF_MS = 30_000;

export type CircuitState = 'closed' | 'open' | 'halfOpen';

export class CircuitBreaker<W extends object = object> {
  readonly #now: () => number;
  #youngDeaths = 0;
  #openings = 0;
  #openUntil = 0;
  /** The half-open probe, while it has no verdict. */
  #probe: W | undefined;
  #lastError: Error | undefined;

  constructor(now: () => number = Date.now) {
    this.#now = now;
  }

  get state(): CircuitState {
    if (this.#openings === 0) return 'closed';
    return this.#now() < this.#openUntil ? 'open' : 'halfOpen';
  }

  /** When the circuit may next let a worker start. */
  get retryAt(): number {
    return this.#openUntil;
  }

  /** Young deaths since the last survival (or the last opening's count, while open). */
  get youngDeaths(): number {
    return this.#youngDeaths;
  }

  /** Throws CircuitOpenError while the circuit is open. */
  check(): void {
    if (this.state === 'open') throw new CircuitOpenError(this.#openUntil, this.#lastError);
  }

  /**
   * Starts a worker through `start` if the circuit allows it: always while closed; one probe at a
   * time while half-open; never while open. Returns the worker, or undefined.
   */
  tryStart(start: () => W): W | undefined {
    const state = this.state;
    if (state === 'closed') return start();
    if (state === 'open' || this.#probe !== undefined) return undefined;
    this.#probe = start();
    return this.#probe;
  }

  /** `worker` died young. Returns true if this death opened (or reopened) the circuit. */
  youngDeath(worker: W, error: Error): boolean {
    this.#lastError = error;
    if (this.#probe === worker) this.#probe = undefined;
    this.#youngDeaths++;
    if (this.#openings === 0 && this.#youngDeaths < THRESHOLD) return false;
    // While open (a worker started before the opening dying now), the back-off already runs.
    if (this.#openings > 0 && this.state === 'open') return false;
    this.#openings++;
    this.#openUntil = this.#now() + Math.min(BASE_BACKOFF_MS * 2 ** (this.#openings - 1), MAX_BACKOFF_MS);
    return true;
  }

  /** `worker` completed its first call: start-up works. Closes the circuit. */
  survived(_worker: W): void {
    this.#probe = undefined;
    this.#youngDeaths = 0;
    this.#openings = 0;
    this.#openUntil = 0;
  }

  /** `worker` ended with no verdict on start-up (a call to blame, or stopped by the pool). */
  ended(worker: W): void {
    if (this.#probe === worker) this.#probe = undefined;
  }
}

/**
 * The pool's use of its circuit breaker (circuit-breaker.ts has the rule): which deaths are young,
 * which first calls prove start-up works, and what happens while the circuit is open (waiting calls
 * fail fast; a timer lets the pool try again when the back-off ends).
 */
import { PoolDisposedError } from '@process-sandbox/abstractions';
import { CircuitBreaker, type CircuitState } from './circuit-breaker.js';
import type { Logger } from './logger.js';
import type { Clock, PoolWorker, TimerHandle } from './pool-worker.js';

export interface StartGuardHost {
  readonly logger: Logger;
  /** The circuit opened: fail what waits, with `error()`. */
  onOpen(error: (call: unknown) => Error): void;
  /** The back-off ended: start workers again if some are wanted. */
  onRetry(): void;
}

export class StartGuard {
  readonly #clock: Clock;
  readonly #host: StartGuardHost;
  #breaker: CircuitBreaker<PoolWorker>;
  #timer: TimerHandle | undefined;
  /** Workers that have started a call (control calls included): their deaths are not young. */
  readonly #givenACall = new WeakSet<PoolWorker>();

  constructor(clock: Clock, host: StartGuardHost) {
    this.#clock = clock;
    this.#host = host;
    this.#breaker = this.#newBreaker();
  }

  get state(): CircuitState {
    return this.#breaker.state;
  }

  /** Throws CircuitOpenError while the circuit is open. */
  check(): void {
    this.#breaker.check();
  }

  /** Starts a worker through `start` if the circuit allows it. */
  tryStart(start: () => PoolWorker): PoolWorker | undefined {
    return this.#breaker.tryStart(start);
  }

  /** New code (reload): a new record. */
  reset(): void {
    this.#breaker = this.#newBreaker();
  }

  stop(): void {
    this.#clock.clearTimeout(this.#timer);
  }

  /** `worker` started a call: from now on a death of it has a call to blame. */
  callStarted(worker: PoolWorker): void {
    if (worker.calls === 0) this.#givenACall.add(worker);
  }

  /** `worker` finished a call: its first one proves that start-up works. */
  callDone(worker: PoolWorker): void {
    if (worker.calls === 1) this.#breaker.survived(worker);
  }

  /** `worker` is gone; `current`: it ran the pool's current code (an old one says nothing of the new). */
  workerGone(worker: PoolWorker, crashed: boolean, current: boolean): void {
    const youngDeath = current ? this.#youngDeathOf(worker, crashed) : undefined;
    if (youngDeath === undefined) this.#breaker.ended(worker);
    else if (this.#breaker.youngDeath(worker, youngDeath)) this.#onOpen();
  }

  /**
   * The circuit breaker judges start-up, not calls (see circuit-breaker.ts): a worker dies young if
   * it never became ready, or if it crashed after Ready without ever having been given a call. One
   * that died while a call ran in it was killed by that call (the call's WorkerCrashedError or
   * CallTimeoutError says so) and does not count; nor does one that completed a call.
   */
  #youngDeathOf(worker: PoolWorker, crashed: boolean): Error | undefined {
    if (worker.startError) return worker.startError;
    if (!crashed || this.#givenACall.has(worker)) return undefined;
    const how = worker.endReason ?? `exit code ${worker.exitCode}, signal ${worker.signal}`;
    return new Error(`worker ${worker.pid} died after it was ready, before it was given any call: ${how}`);
  }

  /** Calls waiting now would wait for the whole back-off: fail them fast; try again when it ends. */
  #onOpen(): void {
    const error = (): Error => {
      try {
        this.#breaker.check();
      } catch (open) {
        return open as Error;
      }
      return new PoolDisposedError();
    };
    this.#host.logger.error({ retryAt: this.#breaker.retryAt }, `process-sandbox: circuit open: ${error().message}`);
    this.#host.onOpen(error);
    this.#retryWhenBackOffEnds();
  }

  /**
   * A timer may fire a millisecond before the wall clock says the back-off has ended (timers run on
   * a monotonic clock): the circuit would then still be open, no probe would start, and with no
   * timer left the pool would never try again. So it re-arms until the circuit is half-open.
   */
  #retryWhenBackOffEnds(): void {
    this.#clock.clearTimeout(this.#timer);
    this.#timer = this.#clock.setTimeout(() => {
      if (this.#breaker.state === 'open') this.#retryWhenBackOffEnds();
      else this.#host.onRetry();
    }, Math.max(1, this.#breaker.retryAt - this.#clock.now()));
  }

  #newBreaker(): CircuitBreaker<PoolWorker> {
    return new CircuitBreaker(() => this.#clock.now());
  }
}

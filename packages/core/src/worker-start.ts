/**
 * One worker's start: the `ready` promise its starters wait on, the processStartTimeoutMs timer, the
 * method names it offered in Ready, and the WorkerStartError of a worker that never got that far.
 * It exists so that "was this worker ever ready" is one recorded fact (the state alone cannot tell
 * after EOF, nor can the method list: a module may export none) and the start's promise is settled
 * in one place. It moves no state: WorkerHandle's `#transition` does, and calls in here.
 */
import { callableMethods, type WorkerStartError } from '@process-sandbox/abstractions';
import type { Logger } from './logger.js';

export class WorkerStart {
  /** Resolves when the worker is ready for calls; rejects with WorkerStartError. */
  readonly ready: Promise<void>;
  #resolve!: () => void;
  #reject!: (error: WorkerStartError) => void;
  #timer: NodeJS.Timeout | undefined;
  #methods: readonly string[] = [];
  #succeeded = false;
  #error: WorkerStartError | undefined;

  /** `onTimeout`: the worker was not ready within `timeoutMs` (it is then killed by the caller). */
  constructor(timeoutMs: number, onTimeout: () => void) {
    this.ready = new Promise((resolve, reject) => {
      this.#resolve = resolve;
      this.#reject = reject;
    });
    this.ready.catch(() => {}); // the pool observes it; never an unhandled rejection
    this.#timer = setTimeout(onTimeout, timeoutMs);
  }

  /** The callable methods it listed in Ready (none before). */
  get methods(): readonly string[] {
    return this.#methods;
  }
  /** Ready was accepted. */
  get succeeded(): boolean {
    return this.#succeeded;
  }
  /** Set when the process ended before it was ready. */
  get error(): WorkerStartError | undefined {
    return this.#error;
  }

  /** The start is over, one way or the other: the timeout no longer applies. */
  stopTimer(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  /** Records the methods Ready listed. Reserved names (then) are dropped from what the host will call, not refused: see validate.ts. */
  offered(listed: string[], logger: Logger, pid: number): void {
    const methods = callableMethods(listed);
    if (methods.length !== listed.length) {
      logger.warn({ pid, dropped: listed.filter((m) => !methods.includes(m)) }, `process-sandbox: worker ${pid} lists reserved method names that will not be callable through the proxy`);
    }
    this.#methods = methods;
  }

  succeed(): void {
    this.#succeeded = true;
    this.#resolve();
  }

  fail(error: WorkerStartError): void {
    this.#error = error;
    this.#reject(error);
  }
}

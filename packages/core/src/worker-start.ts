/**
 * One worker's start: the `ready` promise its starters wait on, the processStartTimeoutMs timer, the
 * method names it offered in Ready, the warm-up call after Ready, and the WorkerStartError of a
 * worker that never got that far.
 * It exists so that "was this worker ever ready" is one recorded fact (the state alone cannot tell
 * after EOF, nor can the method list: a module may export none) and the start's promise is settled
 * in one place. It moves no state: WorkerHandle's `#transition` does, and calls in here.
 */
import { callableMethods, frameMessage, MessageKind, WARM_UP_SESSION, type WorkerStartError } from '@process-sandbox/abstractions';
import { Call } from './call.js';
import type { Logger } from './logger.js';

/** The warm-up call's id: negative like every host control message, and below any a lease reaches. */
const WARM_UP_ID = Number.MIN_SAFE_INTEGER;
/**
 * The same frame for every worker, made once. Its argument, echoed back, has a value of each common
 * kind, so that encoding and decoding them is compiled in the worker before its first call.
 */
const WARM_UP_FRAME = frameMessage([MessageKind.Invoke, WARM_UP_ID, 'warmUp', [[0, -1, 1.5, 'warm-up', true, null, { a: [1] }]], WARM_UP_SESSION, []]);

export class WorkerStart {
  /** Resolves when the worker is ready for calls; rejects with WorkerStartError. */
  readonly ready: Promise<void>;
  #resolve!: () => void;
  #reject!: (error: WorkerStartError) => void;
  #timer: NodeJS.Timeout | undefined;
  #methods: readonly string[] = [];
  #succeeded = false;
  #error: WorkerStartError | undefined;
  #warmUp: Call | undefined;

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

  /**
   * The warm-up call, to send after Ready: one no-op call before the worker counts as ready. A fresh
   * process's first call runs cold code (the worker's call path compiled on first use, in both
   * directions), which made every replacement's first call 2–3× slower than the next. It runs under
   * the start's timeout; no user code, no user's count or event sees it (docs/protocol.md).
   */
  beginWarmUp(): Call {
    const call = new Call(WARM_UP_ID, '<warm-up>', WARM_UP_FRAME, 0, undefined);
    call.control = true;
    this.#warmUp = call;
    return call;
  }

  /** The warm-up call was sent and has not ended: the handshake's last step. */
  get warmingUp(): boolean {
    return this.#warmUp !== undefined;
  }

  /** Whether `call` is the warm-up call; if it is, it has ended (answered, or its worker is gone). */
  endWarmUp(call: Call): boolean {
    if (call !== this.#warmUp) return false;
    this.#warmUp = undefined;
    return true;
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

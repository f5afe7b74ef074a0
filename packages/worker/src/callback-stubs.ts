/**
 * Functions the host passed as arguments, as the implementation gets them: each call of one sends
 * Callback to the host and returns a promise of the host function's value (or its error). Valid
 * while its call runs; called afterwards, it throws CallbackExpiredError at once.
 *
 * The returned promise is marked handled: a progress callback is usually called without `await`,
 * and a host function that throws must not become an unhandled rejection, which ends the worker.
 * Awaited, it rejects as it should. At most MAX_CALLBACKS_IN_FLIGHT of a call's callbacks wait for
 * the host at once (the host kills a worker with more); the rest wait here, in order, and the
 * call's reply waits until they have all been sent: every callback made while the call ran reaches
 * the host before the call settles there (the host runs a callback as it arrives).
 */
import { frameMessage, MAX_CALLBACKS_IN_FLIGHT, MessageKind, type EncodeOptions } from '@process-sandbox/abstractions';

export class CallbackExpiredError extends Error {
  override name = 'CallbackExpiredError';
}

interface Pending {
  resolve(value: unknown): void;
  reject(error: unknown): void;
  scope: CallScope;
}

/** The callbacks of one call. */
interface CallScope {
  active: boolean;
  inFlight: number;
  queue: Buffer[];
  numbers: Set<number>;
  /** The call ended and waits for its queue to be sent. */
  drained: (() => void) | undefined;
}

export class CallbackStubs {
  #next = 0;
  readonly #pending = new Map<number, Pending>();
  readonly #send: (frame: Buffer) => void;
  readonly #options: EncodeOptions;

  constructor(send: (frame: Buffer) => void, options: EncodeOptions) {
    this.#send = send;
    this.#options = options;
  }

  /**
   * Puts a stub in `args` at each of `slots` (indices the host listed in Invoke). Returns the
   * function that ends them when the call ends, once the callbacks still queued here are sent.
   */
  install(id: number, method: string, args: unknown[], slots: readonly number[]): () => Promise<void> {
    const scope: CallScope = { active: true, inFlight: 0, queue: [], numbers: new Set(), drained: undefined };
    for (const slot of slots) {
      if (!Number.isInteger(slot) || slot < 0 || slot >= args.length) continue;
      args[slot] = (...callArgs: unknown[]): Promise<unknown> => {
        if (!scope.active) throw new CallbackExpiredError(`the callback passed as argument ${slot} of ${method}() was called after that call ended; a callback is valid only while its call runs`);
        const number = ++this.#next;
        // Encoded now: an argument that cannot cross throws here, in the implementation's own call.
        const frame = frameMessage([MessageKind.Callback, id, number, slot, callArgs], this.#options);
        const promise = new Promise((resolve, reject) => this.#pending.set(number, { resolve, reject, scope }));
        promise.catch(() => {});
        scope.numbers.add(number);
        if (scope.inFlight < MAX_CALLBACKS_IN_FLIGHT) {
          scope.inFlight++;
          this.#send(frame);
        } else {
          scope.queue.push(frame);
        }
        return promise;
      };
    }
    return async () => {
      if (scope.queue.length > 0) await new Promise<void>((resolve) => (scope.drained = resolve));
      this.#end(scope, method);
    };
  }

  /** CallbackReply from the host. */
  answer(number: number, error: Error | null, value: unknown): void {
    const pending = this.#pending.get(number);
    if (!pending) return; // its call ended: already rejected
    this.#pending.delete(number);
    const { scope } = pending;
    scope.numbers.delete(number);
    scope.inFlight--;
    const queued = scope.queue.shift();
    if (queued && scope.active) {
      scope.inFlight++;
      this.#send(queued);
      if (scope.queue.length === 0) scope.drained?.();
    }
    if (error) pending.reject(error);
    else pending.resolve(value);
  }

  #end(scope: CallScope, method: string): void {
    scope.active = false;
    scope.queue.length = 0;
    for (const number of scope.numbers) {
      const pending = this.#pending.get(number);
      this.#pending.delete(number);
      pending?.reject(new CallbackExpiredError(`${method}() ended before the host answered its callback`));
    }
    scope.numbers.clear();
  }
}

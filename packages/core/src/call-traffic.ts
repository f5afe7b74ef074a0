/**
 * What passes between host and worker while a call runs, besides its Invoke and its reply: the
 * items of a stream it returned (StreamOpen, StreamItem; the host's StreamCredit and StreamCancel)
 * and the calls back into functions it was passed (Callback; the host's CallbackReply). One per
 * worker, for its running call; WorkerHandle hands it what the gate admitted.
 *
 * It is the state half of the gate for these messages: each must be for the call running now, a
 * stream only once and only for a user's call, an item only within the credit granted, a callback
 * only for an argument that was a function and with at most MAX_CALLBACKS_IN_FLIGHT unanswered.
 * Anything else is returned as the protocol problem it is, and the handle kills the worker.
 *
 * A host callback runs with the worker's arguments; whatever it does (throws, rejects, returns a
 * value that cannot be encoded) is answered to the worker as an error. Nothing it does reaches the
 * host's event loop as an exception.
 */
import {
  frameMessage,
  MAX_CALLBACK_SLOTS,
  MAX_CALLBACKS_IN_FLIGHT,
  MessageKind,
  SerializationError,
  describeValue,
  type EncodeOptions,
} from '@process-sandbox/abstractions';
import type { Call } from './call.js';
import { CallItems, streamFace } from './remote-stream.js';

/** What the traffic needs from its worker. */
export interface TrafficLink {
  /** The call running on the worker now, if any. */
  running(): Call | undefined;
  send(frame: Buffer): void;
  /** The running call's timer: on while the host waits on the worker (see WorkerCalls.waitOnWorker). */
  waitOnWorker(waiting: boolean): void;
}

/** A protocol problem to report, or undefined when the message was taken. */
export type Problem = string | undefined;

export class CallTraffic {
  readonly #link: TrafficLink;
  readonly #encodeOptions: EncodeOptions;
  /** The id of the call whose callbacks are in flight (not the call: its arguments may be large), and their numbers. */
  #callbacksOf = 0;
  readonly #inFlight = new Set<number>();

  constructor(link: TrafficLink, maxMessageBytes: number) {
    this.#link = link;
    this.#encodeOptions = { maxBytes: maxMessageBytes, limitName: 'maxMessageBytes' };
  }

  streamOpen(id: number): Problem {
    const call = this.#running(id, 'StreamOpen');
    if (typeof call === 'string') return call;
    if (call.control) return `StreamOpen for call ${id}, a session message`;
    if (call.stream) return `StreamOpen for call ${id}, whose stream is already open`;
    const stream = new CallItems(call, {
      grant: (credit) => this.#sendFor(call, [MessageKind.StreamCredit, call.id, credit]),
      cancel: () => this.#sendFor(call, [MessageKind.StreamCancel, call.id]),
      waiting: (waiting) => {
        if (this.#link.running() === call) this.#link.waitOnWorker(waiting);
      },
    });
    this.#link.waitOnWorker(false); // until its consumer asks for an item
    // Its caller is gone already (aborted with onAbortRunning 'detach'): nobody will read it, so it
    // is cancelled at once rather than holding the worker.
    call.openStream(stream, streamFace(stream));
    if (call.settled) void stream.return();
    return undefined;
  }

  streamItem(id: number, item: unknown): Problem {
    const call = this.#running(id, 'StreamItem');
    if (typeof call === 'string') return call;
    const stream = call.stream as CallItems | undefined;
    if (!stream) return `StreamItem for call ${id}, which opened no stream`;
    if (!stream.push(item)) return `StreamItem for call ${id} beyond the credit granted`;
    return undefined;
  }

  callback(id: number, callback: number, slot: number, args: unknown[]): Problem {
    const call = this.#running(id, 'Callback');
    if (typeof call === 'string') return call;
    const fn = call.callbacks?.[slot];
    if (typeof fn !== 'function') return `Callback to argument ${slot} of call ${id}, which is not a function`;
    if (this.#callbacksOf !== call.id) {
      this.#callbacksOf = call.id;
      this.#inFlight.clear();
    }
    if (this.#inFlight.has(callback)) return `Callback ${callback} of call ${id} while the one of that number is unanswered`;
    if (this.#inFlight.size >= MAX_CALLBACKS_IN_FLIGHT) return `more than ${MAX_CALLBACKS_IN_FLIGHT} callbacks of call ${id} unanswered`;
    this.#inFlight.add(callback);
    const answer = (error: unknown, value?: unknown): void => {
      if (this.#callbacksOf === call.id) this.#inFlight.delete(callback);
      // A call that ended meanwhile: the worker has no use for the answer (and may run another call).
      this.#sendFor(call, undefined, () => replyFrame(callback, error, value, this.#encodeOptions, call.method, slot));
    };
    // In a microtask, not on the receive path: what the host function does (abort its call, dispose
    // the pool, call the proxy) never runs in the middle of reading this worker's frames. It still
    // runs before the caller sees the call's result, even one read later in the same pass.
    queueMicrotask(() => {
      let result: unknown;
      try {
        result = (fn as (...a: unknown[]) => unknown)(...args);
      } catch (error) {
        return answer(error ?? new Error('the callback threw ' + describeValue(error)));
      }
      Promise.resolve(result).then(
        (value) => answer(undefined, value),
        (error: unknown) => answer(error ?? new Error('the callback rejected with ' + describeValue(error))),
      );
    });
    return undefined;
  }

  /** The running call, if it is call `id`; else the problem. */
  #running(id: number, what: string): Call | string {
    const call = this.#link.running();
    if (!call || call.id !== id) return `${what} for call ${id}, but ${call ? `call ${call.id}` : 'no call'} is running`;
    return call;
  }

  /** Sends to the worker while it still runs `call` (a later call has nothing to do with it). */
  #sendFor(call: Call, message: unknown[] | undefined, frame?: () => Buffer): void {
    if (this.#link.running() !== call) return;
    this.#link.send(frame ? frame() : frameMessage(message as never));
  }
}

/**
 * The arguments as sent (each function replaced by null) and the indices of the functions, or
 * undefined if there are none. A function beyond MAX_CALLBACK_SLOTS, or nested in a value, is
 * left for the codec, which refuses it with a SerializationError naming its path.
 */
export function splitCallbacks(args: unknown[]): { args: unknown[]; slots: number[]; callbacks: unknown[] } | undefined {
  let slots: number[] | undefined;
  const n = Math.min(args.length, MAX_CALLBACK_SLOTS);
  for (let i = 0; i < n; i++) if (typeof args[i] === 'function') (slots ??= []).push(i);
  if (!slots) return undefined;
  const sent = args.slice();
  for (const i of slots) sent[i] = null;
  return { args: sent, slots, callbacks: args };
}

/** The CallbackReply frame: the value, or the error; one that cannot be encoded becomes an error saying why. */
function replyFrame(callback: number, error: unknown, value: unknown, options: EncodeOptions, method: string, slot: number): Buffer {
  if (error === undefined) {
    try {
      return frameMessage([MessageKind.CallbackReply, callback, null, value], options);
    } catch (encodeError) {
      error = new SerializationError(`the value returned by the callback (argument ${slot} of ${method}()) cannot cross the process boundary: ${(encodeError as Error).message}`);
    }
  }
  const thrown = error instanceof Error ? error : new Error(`the callback (argument ${slot} of ${method}()) threw ${describeValue(error)}`);
  try {
    return frameMessage([MessageKind.CallbackReply, callback, thrown, null], options);
  } catch {
    return frameMessage([MessageKind.CallbackReply, callback, new Error(`the callback (argument ${slot} of ${method}()) threw an error that cannot be encoded`), null]);
  }
}

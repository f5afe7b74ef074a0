/**
 * The caller's side of a stream: what `await proxy.rows()` gives when the worker's method returned
 * an async iterable. Items arrive as StreamItem frames and wait here until the consumer takes them;
 * the worker may send only as many as it was granted (STREAM_WINDOW at first, then as many as the
 * consumer has taken), so this buffer never holds more than STREAM_WINDOW items, however slow the
 * consumer. The stream's end is the call's settlement (its Result, or its Failure, crash, timeout,
 * dispose): the items received before an error are delivered first, then the error is thrown.
 *
 * `break`, `return()` and `throw()` cancel it: the worker is told (StreamCancel) and returns its
 * iterator; the worker stays busy until it replies. The call's AbortSignal does the same, and the
 * pending `next()` rejects with the CallAbortedError.
 */
import { CallAbortedError, STREAM_WINDOW } from '@process-sandbox/abstractions';
import type { Call, CallStream } from './call.js';

interface Waiter<T> {
  resolve(result: IteratorResult<T>): void;
  reject(error: Error): void;
}

/** What a stream needs from the worker that sends it. */
export interface StreamLink {
  /** More items may be sent. */
  grant(credit: number): void;
  /** The consumer stopped: the worker returns its iterator. */
  cancel(): void;
  /** `true`: the host now waits for the worker (an item the consumer asked for, or its reply after a cancel): the call's timer runs. */
  waiting(owed: boolean): void;
}

/**
 * The items of a remote method that returned an async iterable: `for await` it, or `break` (or
 * `return()`, or abort the call's signal) to stop the worker's iterator.
 */
export interface RemoteStream<T = unknown> extends AsyncIterableIterator<T>, AsyncDisposable {
  /** Items received and not yet taken (at most STREAM_WINDOW). */
  readonly buffered: number;
}

/**
 * A stream whose caller dropped it unfinished (no break, no return()) would hold its worker for
 * good: when its face is collected, the stream is cancelled.
 */
const abandoned = new FinalizationRegistry<{ abandon(): void }>((items) => items.abandon());

/**
 * What the caller holds: a face over the call's items that nothing of the pool refers to, so that
 * the garbage collector can tell when the caller has let go of it.
 */
export function streamFace<T>(items: CallItems<T>): RemoteStream<T> {
  const face: RemoteStream<T> = {
    get buffered() {
      return items.buffered;
    },
    next: () => items.next(),
    return: () => items.return(),
    throw: (error?: unknown) => items.throw(error),
    [Symbol.asyncIterator]() {
      return face;
    },
    [Symbol.asyncDispose]: () => items[Symbol.asyncDispose](),
  };
  abandoned.register(face, items);
  return face;
}

/** The RemoteStream of one call, fed by the worker that runs it. */
export class CallItems<T = unknown> implements RemoteStream<T>, CallStream {
  readonly #link: StreamLink;
  readonly #items: unknown[] = [];
  #head = 0;
  /** Items the worker may send in all, and items received in all. */
  #granted = STREAM_WINDOW;
  #received = 0;
  #consumed = 0;
  #cancelled = false;
  /** Set when the call settled: `ok` true for its Result. */
  #end: { ok: true } | { ok: false; error: Error } | undefined;
  #errorThrown = false;
  /** Why it was aborted (signal, dispose): thrown by the next next() if none was waiting. */
  #abortError: Error | undefined;
  /** The consumer's next() calls waiting for an item, in order (for await has one at a time; others may have more). */
  readonly #waiters: Waiter<T>[] = [];
  /** Stops listening to the call's signal (once the consumer has seen the end). */
  #unwatch: (() => void) | undefined;

  /** Made by the worker that runs `call` when it says StreamOpen. */
  constructor(call: Call, link: StreamLink) {
    this.#link = link;
    // The signal ends the stream for its consumer even once the worker has sent it all (the call
    // settled): what is buffered is dropped and next() throws CallAbortedError. While the call runs,
    // the dispatcher also sees the abort and settles the call.
    const signal = call.options?.signal;
    if (signal && !signal.aborted) {
      const onAbort = (): void => this.abort(new CallAbortedError(call.method, true, signal.reason));
      signal.addEventListener('abort', onAbort, { once: true });
      this.#unwatch = () => signal.removeEventListener('abort', onAbort);
    }
    call.promise.then(
      () => this.#settle({ ok: true }),
      (error: Error) => this.#settle({ ok: false, error }),
    );
  }

  /** Items received and not yet taken by the consumer. */
  get buffered(): number {
    return this.#received - this.#consumed;
  }

  /** The gate admitted an item: false if the worker had no credit for it (a protocol error). */
  push(item: unknown): boolean {
    if (this.#received >= this.#granted) return false;
    this.#received++;
    if (this.#cancelled) return true; // on its way before the cancel reached the worker: dropped
    const waiter = this.#waiters.shift();
    if (waiter) {
      this.#took();
      waiter.resolve({ value: item as T, done: false });
    } else {
      this.#items.push(item);
    }
    this.#updateWaiting();
    return true;
  }

  next(): Promise<IteratorResult<T>> {
    if (this.#head < this.#items.length) {
      const value = this.#items[this.#head] as T;
      this.#items[this.#head++] = undefined;
      if (this.#head > 1024 && this.#head * 2 > this.#items.length) this.#items.splice(0, this.#head), (this.#head = 0);
      this.#took();
      return Promise.resolve({ value, done: false });
    }
    if (this.#cancelled) {
      if (this.#abortError === undefined || this.#errorThrown) return Promise.resolve({ value: undefined, done: true });
      this.#errorThrown = true;
      return Promise.reject(this.#abortError);
    }
    if (this.#end) return this.#finish();
    return new Promise((resolve, reject) => {
      this.#waiters.push({ resolve, reject });
      this.#updateWaiting();
    });
  }

  /** Stops the stream (what `break` does): the worker returns its iterator. */
  return(): Promise<IteratorResult<T>> {
    for (const waiter of this.#cancel()) waiter.resolve({ value: undefined, done: true });
    return Promise.resolve({ value: undefined, done: true });
  }

  throw(error?: unknown): Promise<IteratorResult<T>> {
    for (const waiter of this.#cancel()) waiter.resolve({ value: undefined, done: true });
    return Promise.reject(error);
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    for (const waiter of this.#cancel()) waiter.resolve({ value: undefined, done: true });
  }

  /** Its caller let go of it unfinished: stop the worker's iterator. */
  abandon(): void {
    this.#cancel();
  }

  /** The call's signal aborted, or the pool is disposed, while the stream was open: it ends with `error`. */
  abort(error: Error): void {
    if (this.#cancelled) return;
    this.#abortError = error;
    const [first, ...rest] = this.#cancel();
    if (!first) return;
    this.#errorThrown = true;
    first.reject(error);
    for (const waiter of rest) waiter.resolve({ value: undefined, done: true });
  }

  /** Stops it; returns the next() calls that were waiting, for the caller to settle. */
  #cancel(): Waiter<T>[] {
    if (this.#cancelled) return [];
    this.#cancelled = true;
    this.#unwatched();
    this.#items.length = 0;
    this.#head = 0;
    if (!this.#end) {
      this.#link.cancel();
      this.#link.waiting(true); // its reply is owed now
    }
    return this.#waiters.splice(0);
  }

  #unwatched(): void {
    this.#unwatch?.();
    this.#unwatch = undefined;
  }

  /** The consumer took an item: grant more once half the window is free, so frames stay few. */
  #took(): void {
    this.#consumed++;
    if (this.#end || this.#cancelled) return;
    const free = STREAM_WINDOW - (this.#granted - this.#consumed);
    if (free >= STREAM_WINDOW / 2) {
      this.#granted += free;
      this.#link.grant(free);
    }
  }

  /**
   * The call's timeout bounds each wait of the consumer for its next item: the timer runs while a
   * next() waits with nothing buffered, from when it was asked or the item before arrived. A slow
   * consumer (or one that has not asked yet) holds the worker without a timeout.
   */
  #updateWaiting(): void {
    if (this.#end || this.#cancelled) return;
    this.#link.waiting(this.#waiters.length > 0);
  }

  #settle(end: { ok: true } | { ok: false; error: Error }): void {
    this.#end = end;
    // The first waiting next() gets the end (or the error), the others `done`.
    for (const waiter of this.#waiters.splice(0)) this.#finish().then(waiter.resolve, waiter.reject);
  }

  /** Nothing is buffered and the call has settled: done, or its error (once). */
  #finish(): Promise<IteratorResult<T>> {
    const end = this.#end!;
    this.#unwatched();
    if (end.ok || this.#errorThrown) return Promise.resolve({ value: undefined, done: true });
    this.#errorThrown = true;
    return Promise.reject(end.error);
  }
}

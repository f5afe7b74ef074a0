/**
 * One call, from `proxy.method(...)` to its settlement. The promise handed to the caller is made
 * here and settled only through `resolve`/`reject`, which act once: whichever path ends a call
 * first (reply, crash, timeout, abort, dispose) wins, and later attempts do nothing.
 */
import { attachCallerStack, type CallUsage, type Frame } from '@process-sandbox/abstractions';

/** Per-call options, given through `ProcessProxy.with(proxy, options)`. */
export interface CallOptions {
  /** Aborts the call: a queued call leaves the queue; a running one is handled per `onAbortRunning`. */
  signal?: AbortSignal;
  /** Overrides methodCallTimeoutMs for these calls. */
  timeoutMs?: number;
  /** Higher runs first; FIFO within a priority. Default 0. */
  priority?: number;
  /** A running call that is aborted: 'kill' its worker (default; the only way to stop native code), or 'detach' and let it finish unobserved. */
  onAbortRunning?: 'kill' | 'detach';
}


/**
 * Where a call was made, when `captureCallerStack` asks for it: the stack captured (walked, not
 * formatted) when the caller made the call. V8 formats it into text only when `stack` is read,
 * which happens only if the call fails with a library error.
 */
export interface CallSite {
  stack?: unknown;
}

/** Captures the caller's stack, without the frames at and above `above` (the library's entry point). */
export function captureCallSite(above: Function): CallSite {
  const site: CallSite = {};
  Error.captureStackTrace(site, above);
  return site;
}

/**
 * The call's promise, as the caller sees it. The library's errors are made in a socket or timer
 * callback, so their stacks say nothing of the caller: when the call fails, this adds the caller's
 * frames. Without a captured call site they come from V8's async stack trace, taken here after the
 * await: it lists the caller's async functions awaiting this promise, each at the line of its
 * await, and costs nothing until a call fails but this async function (about 0.5 µs a call,
 * against several µs for capturing every call's stack). A captured call site gives the whole
 * synchronous stack, callers that do not await included.
 */
export async function callerView(call: Call): Promise<unknown> {
  try {
    return await call.answer();
  } catch (error) {
    const frames = callerFrames(call.callSite ?? captureCallSite(callerView));
    attachCallerStack(error as Error, call.method, frames);
    throw error;
  }
}

/** This package's own files: their frames at the top of a call site are the library's, not the caller's. */
const LIBRARY_DIRECTORY = new URL('.', import.meta.url).href;

/** The caller's frames of a call site, as stack lines, without the library's own at the top. */
function callerFrames(site: CallSite): string {
  let stack: unknown;
  try {
    stack = site.stack; // formatted now, once
  } catch {
    return ''; // a throwing Error.prepareStackTrace
  }
  if (typeof stack !== 'string') return '';
  const lines = stack.split('\n').slice(1);
  let first = 0;
  // The library's frames, and Node's microtask runner above the async frames.
  while (first < lines.length && (lines[first]!.includes(LIBRARY_DIRECTORY) || lines[first]!.includes('(node:internal/'))) first++;
  return lines.slice(first).join('\n');
}

/**
 * Where a call is. The dispatcher moves it (Dispatcher.#move); settling it is the one step the call
 * takes itself, once, whoever settles it (reply, crash, timeout, abort, dispose).
 *
 *   queued ──→ ahead ──→ running ──→ settled
 *     │  ↑       │          │  ↑
 *     │  └───────┘          │  └── (a lease's call, or one sent to an idle worker, starts at once)
 *     │  its worker died    └──→ queued: crashed, and its method is declared idempotent (retry)
 *     │  before starting it
 *     └──────────────→ settled (abort, queue timeout, dispose, circuit open)
 */
export type CallState = 'queued' | 'ahead' | 'running' | 'settled';

/** A call's stream, as the call and the dispatcher see it (remote-stream.ts). */
export interface CallStream {
  /** The caller's signal aborted the call while its stream was open: cancel it, end it with `error`. */
  abort(error: Error): void;
}

/** Told, synchronously, when a call settles (`error` undefined on success): the dispatcher keeps its counts with it. */
export type SettleListener = (call: Call, from: CallState, error: Error | undefined) => void;

const ignore = (): void => {};

export class Call {
  readonly promise: Promise<unknown>;
  readonly enqueuedAt = performance.now();
  #state: CallState = 'queued';
  startedAt: number | undefined;
  /** The caller aborted it after it was sent ahead to a worker: the worker was asked to drop it. */
  cancelRequested = false;
  /** A session message rather than a user's call: not counted toward a worker's calls. */
  control = false;
  /** Runs so far that ended in a crash and were retried. */
  attempts = 0;
  /** Where the caller made the call (with `captureCallerStack: true`). */
  callSite: CallSite | undefined;
  /** What to undo when it settles (its abort listener, its queue timer): run by the settle listener, no reaction per call. */
  cleanUp: (() => void)[] | undefined;
  /** What a WebAssembly worker reported the call used (fuel, host calls), checked by the gate. */
  usage: CallUsage | undefined;
  /** The functions among its arguments, by argument index: the worker may call them back while it runs. */
  callbacks: readonly unknown[] | undefined;
  /**
   * Its result is a stream (the worker said StreamOpen): the caller has it already, and the call
   * settles when the stream ends (its items are the stream's; the settlement, its end or error).
   */
  stream: CallStream | undefined;
  readonly #onSettle: SettleListener | undefined;
  #resolve!: (value: unknown) => void;
  #reject!: (error: Error) => void;
  #answer: Promise<unknown> | undefined;
  #answerResolve: ((value: unknown) => void) | undefined;
  #answerReject: ((error: Error) => void) | undefined;

  constructor(
    readonly id: number,
    readonly method: string,
    /**
     * The encoded Invoke frame, ready to write: arguments are encoded once, before queueing. Large
     * binary arguments are not copied into it but referenced (segments: see frameMessageShared).
     */
    readonly frame: Frame,
    readonly timeoutMs: number,
    readonly options: CallOptions | undefined,
    onSettle?: SettleListener,
  ) {
    this.#onSettle = onSettle;
    this.promise = new Promise((resolve, reject) => {
      this.#resolve = resolve;
      this.#reject = reject;
    });
    // The caller awaits answer(), not always this promise: its rejection is observed here, so that it
    // is never an unhandled rejection in the host (the counts no longer hang a reaction on it).
    this.promise.catch(ignore);
  }

  get state(): CallState {
    return this.#state;
  }

  get settled(): boolean {
    return this.#state === 'settled';
  }

  /** For the dispatcher's #move only: every other step of a call's life goes through it. */
  moveTo(to: Exclude<CallState, 'settled'>): CallState {
    const from = this.#state;
    if (from !== 'settled') this.#state = to;
    return from;
  }

  /**
   * What the caller awaits: the call's value, or its stream as soon as the worker opens one (the
   * call itself then settles only when the stream ends). Asked once, by callerView.
   */
  answer(): Promise<unknown> {
    if (this.stream) return Promise.reject(new Error('internal: answer() asked after the stream opened'));
    if (this.settled) return this.promise;
    this.#answer ??= new Promise((resolve, reject) => {
      this.#answerResolve = resolve;
      this.#answerReject = reject;
    });
    return this.#answer;
  }

  /**
   * The worker opened a stream for this running call: the caller gets `face` now. The call keeps
   * only `stream`, the part the worker feeds, never the face: a face its caller dropped can be
   * collected (and then cancels the stream; see remote-stream.ts).
   */
  openStream(stream: CallStream, face: unknown): void {
    this.stream = stream;
    this.#answerResolve?.(face);
    this.#answer = this.#answerResolve = this.#answerReject = undefined;
  }

  /** Returns true if this settled the call. */
  resolve(value: unknown): boolean {
    if (!this.#end(undefined)) return false;
    this.#resolve(value);
    if (!this.stream) this.#answerResolve?.(value);
    return true;
  }

  /** Returns true if this settled the call (false if it was already settled). */
  reject(error: Error): boolean {
    if (!this.#end(error)) return false;
    this.#reject(error);
    if (!this.stream) this.#answerReject?.(error);
    return true;
  }

  #end(error: Error | undefined): boolean {
    const from = this.#state;
    if (from === 'settled') return false;
    this.#state = 'settled';
    this.#onSettle?.(this, from, error);
    return true;
  }
}

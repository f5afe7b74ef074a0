/**
 * One call, from `proxy.method(...)` to its settlement. The promise handed to the caller is made
 * here and settled only through `resolve`/`reject`, which act once: whichever path ends a call
 * first (reply, crash, timeout, abort, dispose) wins, and later attempts do nothing.
 */
import { WorkerCrashedError } from '@process-sandbox/abstractions';
import type { WorkerHandle } from './worker-handle.js';

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

export class Call {
  readonly promise: Promise<unknown>;
  readonly enqueuedAt = performance.now();
  startedAt: number | undefined;
  /** The worker running it, once it runs. */
  worker: WorkerHandle | undefined;
  /** The caller aborted it after it was sent ahead to a worker: the worker was asked to drop it. */
  cancelRequested = false;
  /** A session message rather than a user's call: not counted toward a worker's calls. */
  control = false;
  /** Runs so far that ended in a crash and were retried. */
  attempts = 0;
  /**
   * Set for methods declared idempotent (`retry` option): asked before a crash rejects the call.
   * Returns true if it re-queued the call instead.
   */
  retry: ((error: WorkerCrashedError) => boolean) | undefined;
  #settled = false;
  #resolve!: (value: unknown) => void;
  #reject!: (error: Error) => void;

  constructor(
    readonly id: number,
    readonly method: string,
    /** The encoded Invoke frame, ready to write: arguments are encoded once, before queueing. */
    readonly frame: Buffer,
    readonly timeoutMs: number,
    readonly options: CallOptions | undefined,
  ) {
    this.promise = new Promise((resolve, reject) => {
      this.#resolve = resolve;
      this.#reject = reject;
    });
  }

  get settled(): boolean {
    return this.#settled;
  }

  /** Returns true if this settled the call. */
  resolve(value: unknown): boolean {
    if (this.#settled) return false;
    this.#settled = true;
    this.#resolve(value);
    return true;
  }

  /** Returns true if this settled the call (false if it was already settled, or re-queued for a retry). */
  reject(error: Error): boolean {
    if (this.#settled) return false;
    if (this.retry && error instanceof WorkerCrashedError && this.retry(error)) return false;
    this.#settled = true;
    this.#reject(error);
    return true;
  }
}

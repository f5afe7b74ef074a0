/**
 * The life of a call, in one place: validate, encode, queue (FIFO within a priority, bounded), wait
 * for a worker, run, settle exactly once.
 *
 * p-queue orders the calls; its concurrency is the pool's maximum size, so at most that many calls
 * have left the queue, each either running on a worker or first in line (`#waiting`) for the next
 * one that becomes idle. A call settled while still queued (queue timeout, dispose) is skipped when
 * its turn comes.
 */
import PQueue from 'p-queue';
import {
  frameMessage,
  MessageKind,
  MethodNotFoundError,
  QueueFullError,
  QueueTimeoutError,
} from '@process-sandbox/abstractions';
import { Call } from './call.js';
import type { ResolvedOptions } from './options.js';
import type { WorkerHandle } from './worker-handle.js';

/** What the dispatcher needs from the pool. */
export interface WorkerSource {
  /** An idle worker, taken out of the idle set; or undefined. */
  takeIdleWorker(): WorkerHandle | undefined;
  /** `waiting` calls want a worker: start more if there is room. */
  demand(waiting: number): void;
  /** Method names, once a worker has reported them. */
  readonly methods: ReadonlySet<string> | undefined;
}

export interface CallTotals {
  calls: number;
  succeeded: number;
  failed: number;
}

export class Dispatcher {
  readonly #options: ResolvedOptions;
  readonly #workers: WorkerSource;
  readonly #queue: PQueue;
  /** Calls that left p-queue and wait for the next idle worker, in order. */
  readonly #waiting: Call[] = [];
  /** Calls not yet on a worker and not settled: what maxQueueSize bounds. */
  readonly #queued = new Set<Call>();
  #inFlight = 0;
  #nextId = 1;
  #closedError: (() => Error) | undefined;
  readonly totals: CallTotals = { calls: 0, succeeded: 0, failed: 0 };
  onQueueFull: (method: string) => void = () => {};
  /** Every accepted call, once, when it settles: `error` undefined on success. */
  onCallSettled: (call: Call, error: Error | undefined) => void = () => {};

  constructor(options: ResolvedOptions, workers: WorkerSource) {
    this.#options = options;
    this.#workers = workers;
    this.#queue = new PQueue({ concurrency: options.maxPoolSize });
  }

  get queued(): number {
    return this.#queued.size;
  }
  get inFlight(): number {
    return this.#inFlight;
  }

  invoke(method: string, args: unknown[]): Promise<unknown> {
    if (this.#closedError) return Promise.reject(this.#closedError());
    const methods = this.#workers.methods;
    if (methods && !methods.has(method)) return Promise.reject(new MethodNotFoundError(method, [...methods]));
    if (this.#queued.size >= this.#options.maxQueueSize) {
      this.onQueueFull(method);
      return Promise.reject(new QueueFullError(method, this.#options.maxQueueSize));
    }
    const id = this.#nextId++;
    let frame: Buffer;
    try {
      // Encoded now, so an argument that cannot cross fails here, before anything is queued or sent.
      frame = frameMessage([MessageKind.Invoke, id, method, args]);
    } catch (error) {
      return Promise.reject(error);
    }
    const call = new Call(id, method, frame, this.#options.methodCallTimeoutMs);
    this.#queued.add(call);
    this.totals.calls++;
    call.promise.then(
      () => {
        this.totals.succeeded++;
        this.onCallSettled(call, undefined);
      },
      (error: Error) => {
        this.totals.failed++;
        this.onCallSettled(call, error);
      },
    );
    if (this.#options.queueTimeoutMs !== undefined) this.#armQueueTimeout(call, this.#options.queueTimeoutMs);
    void this.#queue.add(() => this.#wait(call));
    return call.promise;
  }

  /** Hands the first waiting call to `worker`, which has just become idle. Returns false if none waits. */
  offer(worker: WorkerHandle): boolean {
    for (let call = this.#waiting.shift(); call !== undefined; call = this.#waiting.shift()) {
      if (call.settled) continue;
      this.#start(call, worker);
      return true;
    }
    return false;
  }

  /** New calls are refused with `error()` from now on. */
  close(error: () => Error): void {
    this.#closedError ??= error;
  }

  /** Rejects every call that has not reached a worker. */
  rejectQueued(error: (call: Call) => Error): void {
    for (const call of [...this.#queued]) this.#finish(call, call.reject(error(call)));
    this.#waiting.length = 0;
    this.#queue.clear();
  }

  /** Resolves when every accepted call has settled. */
  async drained(): Promise<void> {
    await this.#queue.onIdle();
  }

  /** Runs as a p-queue job: its promise holds a concurrency slot until the call settles. */
  #wait(call: Call): Promise<unknown> | undefined {
    if (call.settled) return undefined;
    const worker = this.#workers.takeIdleWorker();
    if (worker) this.#start(call, worker);
    else {
      this.#waiting.push(call);
      this.#workers.demand(this.#waiting.length);
    }
    return call.promise.catch(() => {});
  }

  #start(call: Call, worker: WorkerHandle): void {
    this.#queued.delete(call);
    this.#inFlight++;
    void call.promise.then(
      () => this.#inFlight--,
      () => this.#inFlight--,
    );
    try {
      worker.run(call);
    } catch (error) {
      call.reject(error as Error); // an internal fault must still settle the call
    }
  }

  #armQueueTimeout(call: Call, timeoutMs: number): void {
    const timer = setTimeout(() => {
      if (this.#queued.has(call)) this.#finish(call, call.reject(new QueueTimeoutError(call.method, timeoutMs)));
    }, timeoutMs);
    const clear = (): void => clearTimeout(timer);
    call.promise.then(clear, clear);
  }

  /** Bookkeeping for a call settled before it reached a worker (its p-queue job may never run). */
  #finish(call: Call, settledNow: boolean): void {
    if (!settledNow) return;
    this.#queued.delete(call);
  }
}

/**
 * The life of a call, in one place: validate, encode, queue (by priority, FIFO within one, bounded),
 * wait for a worker, run, settle exactly once — or leave the queue on abort or queue timeout, or go
 * round again after a crash when the method was declared idempotent.
 *
 * p-queue orders the calls; its concurrency is the pool's maximum size, so at most that many entries
 * have left it, each either running on a worker or first in line (`#waiting`) for the next idle one.
 * An entry settled while still in p-queue is skipped when its turn comes. Lease requests wait in the
 * same line as calls, so a session gets a worker in its fair turn.
 */
import PQueue from 'p-queue';
import {
  CallAbortedError,
  frameMessage,
  MessageKind,
  MethodNotFoundError,

  QueueFullError,
  QueueTimeoutError,
  type WorkerCrashedError,
} from '@process-sandbox/abstractions';
import { Call, type CallOptions } from './call.js';
import type { ResolvedOptions } from './options.js';
import type { WorkerHandle } from './worker-handle.js';

/** What the dispatcher needs from the pool. */
export interface WorkerSource {
  /** An idle worker, taken out of the idle set; or undefined. */
  takeIdleWorker(): WorkerHandle | undefined;
  /** `waiting` entries want a worker: start more if there is room. */
  demand(waiting: number): void;
  /** Method names, once a worker has reported them. */
  readonly methods: ReadonlySet<string> | undefined;
  /** Throws (CircuitOpenError) when calls must fail fast. */
  checkCircuit(): void;
}

/** Something other than a call that waits in line for a worker (a lease). */
export interface WorkerRequest {
  readonly settled: boolean;
  assign(worker: WorkerHandle): void;
}

export interface CallTotals {
  calls: number;
  succeeded: number;
  failed: number;
}

type Entry = Call | WorkerRequest;

export class Dispatcher {
  readonly #options: ResolvedOptions;
  readonly #workers: WorkerSource;
  readonly #queue: PQueue;
  /** Entries that left p-queue and wait for the next idle worker, in order. */
  readonly #waiting: Entry[] = [];
  /** Calls not on a worker and not settled: what maxQueueSize bounds. */
  readonly #queued = new Set<Call>();
  readonly #retryMethods: ReadonlySet<string>;
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
    this.#retryMethods = new Set(options.retry?.methods);
  }

  get queued(): number {
    return this.#queued.size;
  }

  invoke(method: string, args: unknown[], options?: CallOptions): Promise<unknown> {
    let call: Call;
    try {
      call = this.prepare(method, args, options, 0);
    } catch (error) {
      return Promise.reject(error);
    }
    if (call.settled) return call.promise; // already aborted
    if (this.#retryMethods.has(method)) call.retry = (error) => this.#retry(call, error);
    this.#queued.add(call);
    if (this.#options.queueTimeoutMs !== undefined) this.#armQueueTimeout(call, this.#options.queueTimeoutMs);
    void this.#queue.add(() => this.#wait(call), { priority: options?.priority ?? 0 });
    return call.promise;
  }

  /**
   * Validates, encodes and accounts a call without queueing it (a lease runs its calls itself).
   * Throws what the caller should get: PoolDisposedError, CircuitOpenError, MethodNotFoundError,
   * QueueFullError, SerializationError.
   */
  prepare(method: string, args: unknown[], options: CallOptions | undefined, session: number): Call {
    if (this.#closedError) throw this.#closedError();
    this.#workers.checkCircuit();
    const methods = this.#workers.methods;
    if (methods && !methods.has(method)) throw new MethodNotFoundError(method, [...methods]);
    if (session === 0 && this.#queued.size >= this.#options.maxQueueSize) {
      this.onQueueFull(method);
      throw new QueueFullError(method, this.#options.maxQueueSize);
    }
    const id = this.#nextId++;
    // Encoded now, so an argument that cannot cross fails here, before anything is queued or sent.
    const frame = frameMessage([MessageKind.Invoke, id, method, args, session]);
    const call = new Call(id, method, frame, options?.timeoutMs ?? this.#options.methodCallTimeoutMs, options);
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
    if (options?.signal) this.#watchSignal(call, options.signal);
    return call;
  }

  /** Queues a request for a worker (a lease) in the same line as calls. */
  request(request: WorkerRequest, priority = 0): void {
    void this.#queue.add(() => this.#wait(request), { priority });
  }

  /** Hands the first waiting entry to `worker`, which has just become idle. Returns false if none waits. */
  offer(worker: WorkerHandle): boolean {
    for (let entry = this.#waiting.shift(); entry !== undefined; entry = this.#waiting.shift()) {
      if (entry.settled) continue;
      this.#assign(entry, worker);
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
    for (const call of [...this.#queued]) this.#leaveQueue(call, error(call));
  }

  /** Resolves when every accepted call has settled and every request was served. */
  async drained(): Promise<void> {
    await this.#queue.onIdle();
  }

  /** Runs as a p-queue job: its promise holds a concurrency slot until the call settles. */
  #wait(entry: Entry): Promise<unknown> | undefined {
    if (entry.settled) return undefined;
    const worker = this.#workers.takeIdleWorker();
    if (worker) this.#assign(entry, worker);
    else {
      this.#waiting.push(entry);
      this.#workers.demand(this.#waiting.length);
    }
    return entry instanceof Call ? entry.promise.catch(() => {}) : undefined;
  }

  #assign(entry: Entry, worker: WorkerHandle): void {
    if (!(entry instanceof Call)) return entry.assign(worker);
    this.#queued.delete(entry);
    try {
      worker.run(entry);
    } catch (error) {
      entry.reject(error as Error); // an internal fault must still settle the call
    }
  }

  /** A crashed run of an idempotent method: go round again, after a pause, unless attempts ran out. */
  #retry(call: Call, error: WorkerCrashedError): boolean {
    const retry = this.#options.retry;
    if (!retry || call.attempts >= retry.attempts || this.#closedError) return false;
    call.attempts++;
    call.startedAt = undefined;
    call.worker = undefined;
    this.#options.logger.warn({ method: call.method, attempt: call.attempts, error: error.message }, `process-sandbox: retrying ${call.method}() after a crash (attempt ${call.attempts + 1})`);
    this.#queued.add(call);
    setTimeout(() => {
      if (call.settled) return;
      if (this.#closedError) return void this.#leaveQueue(call, this.#closedError());
      // Its p-queue job still holds a slot: it goes straight to the head of the line.
      this.#waiting.unshift(call);
      const worker = this.#workers.takeIdleWorker();
      if (worker) this.offer(worker);
      else this.#workers.demand(this.#waiting.length);
    }, retry.backoffMs * 2 ** (call.attempts - 1));
    return true;
  }

  #watchSignal(call: Call, signal: AbortSignal): void {
    const onAbort = (): void => {
      if (call.settled) return;
      if (this.#queued.has(call) || call.worker === undefined) {
        this.#leaveQueue(call, new CallAbortedError(call.method, false, signal.reason));
      } else if (call.options?.onAbortRunning === 'detach') {
        call.reject(new CallAbortedError(call.method, true, signal.reason)); // its reply will find it settled
      } else {
        call.worker.killDuringCall('abort', new CallAbortedError(call.method, true, signal.reason));
      }
    };
    if (signal.aborted) return onAbort();
    signal.addEventListener('abort', onAbort, { once: true });
    const forget = (): void => signal.removeEventListener('abort', onAbort);
    call.promise.then(forget, forget);
  }

  #armQueueTimeout(call: Call, timeoutMs: number): void {
    const timer = setTimeout(() => {
      if (this.#queued.has(call)) this.#leaveQueue(call, new QueueTimeoutError(call.method, timeoutMs));
    }, timeoutMs);
    const clear = (): void => clearTimeout(timer);
    call.promise.then(clear, clear);
  }

  /** Settles a call that never reached a worker; its p-queue job, when its turn comes, does nothing. */
  #leaveQueue(call: Call, error: Error): void {
    this.#queued.delete(call);
    call.retry = undefined;
    call.reject(error);
  }
}



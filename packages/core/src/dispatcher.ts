/**
 * The life of a call, in one place: validate, encode, queue (by priority, FIFO within one, bounded),
 * wait for a worker, run, settle exactly once — or leave the queue on abort or queue timeout, or go
 * round again after a crash when the method was declared idempotent.
 *
 * The line is p-queue's stable PriorityQueue (higher priority first, FIFO within one), used in pull
 * mode: a worker that becomes free takes the next entry. (p-queue's job runner pushes a job out as
 * soon as a concurrency slot is free, which let a low-priority call leave before higher ones enqueued
 * in the same tick.) Lease requests wait in the same line as calls, so a session gets a worker in
 * its fair turn. An entry settled while in line (abort, queue timeout, dispose) is removed.
 *
 * One-call lookahead: a busy worker may be sent the next call before its current one returns, so it
 * never waits for the host between calls. Which call goes ahead is decided in a microtask, after
 * everything enqueued in the same tick has taken its place in line by priority.
 */
import { PriorityQueue } from 'p-queue';
import {
  CallAbortedError,
  frameMessage,
  MessageKind,
  MethodNotFoundError,
  QueueFullError,
  QueueTimeoutError,
  describePath,
  type EncodeOptions,
  type PathKey,
  type WorkerCrashedError,
} from '@process-sandbox/abstractions';
import { Call, callerView, captureCallSite, type CallOptions } from './call.js';
import type { ResolvedOptions } from './options.js';
import { systemClock, type Clock, type PoolWorker } from './pool-worker.js';

/** What the dispatcher needs from the pool. */
export interface WorkerSource {
  /** An idle worker, taken out of the idle set; or undefined. */
  takeIdleWorker(): PoolWorker | undefined;
  /** `waiting` entries want a worker: start more if there is room. */
  demand(waiting: number): void;
  /** Method names, once a worker has reported them. */
  readonly methods: ReadonlySet<string> | undefined;
  /** Throws (CircuitOpenError) when calls must fail fast. */
  checkCircuit(): void;
  /** Whether a worker is idle right now (then a call does not wait, whatever maxQueueSize says). */
  hasIdleWorker(): boolean;
}

/** Something other than a call that waits in line for a worker (a lease). */
export interface WorkerRequest {
  readonly settled: boolean;
  priority?: number;
  assign(worker: PoolWorker): void;
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
  /** Entries waiting for a worker, by priority. Typed for functions by p-queue; it only stores them. */
  readonly #line = new PriorityQueue();
  /** Entries that go before the whole line: calls back from a worker that died before starting them. */
  readonly #front: Entry[] = [];
  #unsettled = 0;
  #drainWaiters: (() => void)[] = [];
  /** Calls not on a worker and not settled: what maxQueueSize bounds. */
  readonly #queued = new Set<Call>();
  readonly #retryMethods: ReadonlySet<string>;
  #nextId = 1;
  #closedError: (() => Error) | undefined;
  readonly totals: CallTotals = { calls: 0, succeeded: 0, failed: 0 };
  onQueueFull: (method: string) => void = () => {};
  /** Every accepted call, once, when it settles: `error` undefined on success. */
  onCallSettled: (call: Call, error: Error | undefined) => void = () => {};

  /** Made once: the hot path allocates nothing for them. */
  readonly #encodeOptions: EncodeOptions;

  readonly #clock: Clock;

  constructor(options: ResolvedOptions, workers: WorkerSource, clock: Clock = systemClock) {
    this.#options = options;
    this.#clock = clock;
    this.#encodeOptions = { maxBytes: options.maxMessageBytes, limitName: 'maxMessageBytes', describePath: describeInvokePath };
    this.#workers = workers;
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
    this.#enter(call);
    return callerView(call);
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
    if (session === 0 && this.#queued.size >= this.#options.maxQueueSize && !this.#workers.hasIdleWorker()) {
      this.onQueueFull(method);
      throw new QueueFullError(method, this.#options.maxQueueSize);
    }
    const id = this.#nextId++;
    // Encoded now, so an argument that cannot cross fails here, before anything is queued or sent;
    // one over maxMessageBytes (which the worker would refuse) fails as soon as the encoding passes it.
    const frame = frameMessage([MessageKind.Invoke, id, method, args, session], this.#encodeOptions);
    const call = new Call(id, method, frame, options?.timeoutMs ?? this.#options.methodCallTimeoutMs, options);
    if (this.#options.captureCallerStack) call.callSite = captureCallSite(Dispatcher.prototype.prepare);
    this.totals.calls++;
    this.#unsettled++;
    call.promise.then(
      () => {
        this.totals.succeeded++;
        this.#settled(call, undefined);
      },
      (error: Error) => {
        this.totals.failed++;
        this.#settled(call, error);
      },
    );
    if (options?.signal) this.#watchSignal(call, options.signal);
    return call;
  }

  /** Queues a request for a worker (a lease) in the same line as calls. */
  request(request: WorkerRequest, priority = 0): void {
    request.priority = priority;
    this.#enter(request);
  }

  /** Entries in line for a worker. */
  get waiting(): number {
    return this.#line.size + this.#front.length;
  }

  /** Hands the next entry in line to `worker`, which has just become idle. Returns false if none waits. */
  offer(worker: PoolWorker): boolean {
    const entry = this.#takeNext(false);
    if (entry) this.#assign(entry, worker);
    return entry !== undefined;
  }

  /** Sends the next call in line ahead to `worker`, busy with another. (A lease waits for an idle worker.) */
  offerAhead(worker: PoolWorker): void {
    const call = this.#takeNext(true);
    if (call) this.#assign(call, worker);
  }

  /** A call sent ahead to a worker that died before starting it: back to the head of the line, to run exactly once. */
  requeue(call: Call): void {
    call.worker = undefined;
    call.startedAt = undefined;
    if (call.settled) return;
    if (this.#closedError) return void call.reject(this.#closedError());
    this.#queued.add(call);
    this.#toFront(call);
  }

  #enter(entry: Entry): void {
    const worker = this.#workers.takeIdleWorker();
    if (worker) return this.#assign(entry, worker);
    this.#line.enqueue(entry as unknown as () => Promise<unknown>, { priority: entryPriority(entry) });
    this.#workers.demand(this.waiting);
  }

  #toFront(entry: Entry): void {
    const worker = this.#workers.takeIdleWorker();
    if (worker) return this.#assign(entry, worker);
    this.#front.unshift(entry);
    this.#workers.demand(this.waiting);
  }

  /** The next unsettled entry: the front first, then the line. With `callsOnly`, lease requests keep their place. */
  #takeNext(callsOnly: boolean): Entry | undefined {
    for (let i = 0; i < this.#front.length; i++) {
      const entry = this.#front[i]!;
      if (entry.settled) this.#front.splice(i--, 1);
      else if (!callsOnly || entry instanceof Call) return this.#front.splice(i, 1)[0];
    }
    for (let entry = this.#line.dequeue() as unknown as Entry | undefined; entry; entry = this.#line.dequeue() as unknown as Entry | undefined) {
      if (entry.settled) continue;
      if (!callsOnly || entry instanceof Call) return entry;
      this.#front.push(entry); // a lease request at the head: it keeps its turn
    }
    return undefined;
  }

  /** New calls are refused with `error()` from now on. */
  close(error: () => Error): void {
    this.#closedError ??= error;
  }

  /** Rejects every call that has not reached a worker. */
  rejectQueued(error: (call: Call) => Error): void {
    for (const call of [...this.#queued]) this.#leaveQueue(call, error(call));
  }

  /** Resolves when every accepted call has settled. */
  drained(): Promise<void> {
    if (this.#unsettled === 0) return Promise.resolve();
    return new Promise((resolve) => this.#drainWaiters.push(resolve));
  }

  #settled(call: Call, error: Error | undefined): void {
    if (--this.#unsettled === 0) for (const resolve of this.#drainWaiters.splice(0)) resolve();
    this.onCallSettled(call, error);
  }

  #assign(entry: Entry, worker: PoolWorker): void {
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
    this.#clock.setTimeout(() => {
      if (call.settled) return;
      if (this.#closedError) return void this.#leaveQueue(call, this.#closedError());
      this.#toFront(call); // it was first in line once already
    }, retry.backoffMs * 2 ** (call.attempts - 1));
    return true;
  }

  #watchSignal(call: Call, signal: AbortSignal): void {
    const onAbort = (): void => {
      if (call.settled) return;
      if (this.#queued.has(call) || call.worker === undefined) {
        this.#leaveQueue(call, new CallAbortedError(call.method, false, signal.reason));
      } else if (call.worker.aheadCall === call) {
        // Sent ahead: the worker drops it if it has not begun (if it has, it is treated as running).
        call.reject(new CallAbortedError(call.method, false, signal.reason));
        call.worker.cancelAhead(call);
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
    const timer = this.#clock.setTimeout(() => {
      if (this.#queued.has(call)) this.#leaveQueue(call, new QueueTimeoutError(call.method, timeoutMs));
      else if (call.worker?.aheadCall === call) {
        // Sent ahead but not started: still waiting, as far as the caller is concerned.
        call.reject(new QueueTimeoutError(call.method, timeoutMs));
        call.worker.cancelAhead(call);
      }
    }, timeoutMs);
    const clear = (): void => this.#clock.clearTimeout(timer);
    call.promise.then(clear, clear);
  }

  /** Settles a call that never reached a worker; its p-queue job, when its turn comes, does nothing. */
  #leaveQueue(call: Call, error: Error): void {
    this.#queued.delete(call);
    this.#line.remove(call as unknown as () => Promise<unknown>);
    call.retry = undefined;
    call.reject(error);
  }
}


/** Names a place in an Invoke message for SerializationError: `add() argument 0: [3][0]`, `the call add()`. */
function describeInvokePath(path: readonly PathKey[], message: unknown): string {
  const method = String((message as unknown[])[2]);
  if (path[0] === 3 && typeof path[1] === 'number') return describePath(`${method}() argument ${path[1]}`, path.slice(2));
  return describePath(`the call ${method}()`, path);
}

function entryPriority(entry: Entry): number {
  return (entry instanceof Call ? entry.options?.priority : entry.priority) ?? 0;
}

/**
 * The life of a call, in one place: validate, encode, queue (by priority, FIFO within one, bounded),
 * wait for a worker, run, settle exactly once — or leave the queue on abort or queue timeout, or go
 * round again after a crash when the method was declared idempotent. A call's state (call.ts) is
 * moved here only, and the counts (queued, in flight, unsettled) follow from it.
 *
 * The line is p-queue's stable PriorityQueue (higher priority first, FIFO within one), used in pull
 * mode. (p-queue's job runner pushes a job out as soon as a concurrency slot is free, which let a
 * low-priority call leave before higher ones enqueued in the same tick.) Lease requests wait in the
 * same line as calls, so a session gets a worker in its fair turn. An entry settled while in line
 * (abort, queue timeout, dispose) is removed.
 *
 * One scheduling loop, `#schedule`, pairs free capacity with waiting work, and is never re-entered:
 * workers and leases only report (a worker is idle, a call started, a call was lost), and whatever a
 * pairing sets off while the loop runs is picked up by the same loop.
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
  WorkerCrashedError,
  type EncodeOptions,
  type PathKey,
} from '@process-sandbox/abstractions';
import { Call, callerView, captureCallSite, type CallOptions, type CallState } from './call.js';
import { splitCallbacks } from './call-traffic.js';
import type { ResolvedOptions } from './options.js';
import { systemClock, type Clock, type PoolWorker } from './pool-worker.js';

/** What the dispatcher needs from the pool. */
export interface WorkerSource {
  /** An idle worker, taken out of the idle set; or undefined. */
  takeIdleWorker(): PoolWorker | undefined;
  /** Whether a worker is idle right now (then a call does not wait, whatever maxQueueSize says). */
  hasIdleWorker(): boolean;
  /** Busy workers that may be sent a call ahead now. */
  aheadCandidates(): Iterable<PoolWorker>;
  /** The worker running `call` or holding it ahead (asked on abort and queue timeout only). */
  holderOf(call: Call): PoolWorker | undefined;
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
  priority?: number;
  assign(worker: PoolWorker): void;
}

export interface CallTotals {
  calls: number;
  succeeded: number;
  failed: number;
  /** Fuel consumed by WebAssembly calls (`wasm.fuelPerCall`), as their workers reported it. */
  fuel: number;
}

type Entry = Call | WorkerRequest;

const NO_CALLBACKS: number[] = [];

export class Dispatcher {
  readonly #options: ResolvedOptions;
  readonly #workers: WorkerSource;
  readonly #clock: Clock;
  /** Entries waiting for a worker, by priority. Typed for functions by p-queue; it only stores them. */
  readonly #line = new PriorityQueue();
  /** Entries that go before the whole line: calls back from a worker that died before starting them. */
  readonly #front: Entry[] = [];
  /** The calls in state `queued` that wait in this line (or in a retry's back-off): an index kept by #move. */
  readonly #queued = new Set<Call>();
  /** Users' calls in state `ahead` or `running` (a lease's calls included, its session messages not). */
  #inFlight = 0;
  #drainWaiters: (() => void)[] = [];
  readonly #retryMethods: ReadonlySet<string>;
  /** Calls of the line whose method is declared idempotent: a crash sends them round again. */
  readonly #retryable = new WeakSet<Call>();
  #nextId = 1;
  #closedError: (() => Error) | undefined;
  #scheduling = false;
  #scheduleAgain = false;
  #aheadPassQueued = false;
  #aheadPassDue = false;
  readonly totals: CallTotals = { calls: 0, succeeded: 0, failed: 0, fuel: 0 };
  onQueueFull: (method: string) => void = () => {};
  /** Every accepted call, once, when it settles: `error` undefined on success. */
  onCallSettled: (call: Call, error: Error | undefined) => void = () => {};

  /** Made once: the hot path allocates nothing for them. */
  readonly #encodeOptions: EncodeOptions;
  readonly #onSettle = (call: Call, from: CallState): void => this.#leave(call, from);

  constructor(options: ResolvedOptions, workers: WorkerSource, clock: Clock = systemClock) {
    this.#options = options;
    this.#clock = clock;
    this.#encodeOptions = { maxBytes: options.maxMessageBytes, limitName: 'maxMessageBytes', describePath: describeInvokePath };
    this.#workers = workers;
    this.#retryMethods = new Set(options.retry?.methods);
  }

  /** Calls waiting in line for a worker (a lease's own calls are not in it). */
  get queued(): number {
    return this.#queued.size;
  }

  /** Users' calls handed to a worker and not settled: running, or sent ahead. */
  get inFlight(): number {
    return this.#inFlight;
  }

  invoke(method: string, args: unknown[], options?: CallOptions): Promise<unknown> {
    let call: Call;
    try {
      call = this.prepare(method, args, options, 0);
    } catch (error) {
      return Promise.reject(error);
    }
    if (call.settled) return call.promise; // already aborted
    if (this.#retryMethods.has(method)) this.#retryable.add(call);
    this.#queued.add(call);
    if (this.#options.queueTimeoutMs !== undefined) this.#armQueueTimeout(call, this.#options.queueTimeoutMs);
    this.#enter(call, false);
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
    // Functions among the arguments are callbacks: sent as null, their indices listed (call-traffic.ts).
    const split = splitCallbacks(args);
    // Encoded now, so an argument that cannot cross fails here, before anything is queued or sent;
    // one over maxMessageBytes (which the worker would refuse) fails as soon as the encoding passes it.
    const frame = frameMessage([MessageKind.Invoke, id, method, split?.args ?? args, session, split?.slots ?? NO_CALLBACKS], this.#encodeOptions);
    const call = new Call(id, method, frame, options?.timeoutMs ?? this.#options.methodCallTimeoutMs, options, this.#onSettle);
    if (split) call.callbacks = split.callbacks;
    if (this.#options.captureCallerStack) call.callSite = captureCallSite(Dispatcher.prototype.prepare);
    this.totals.calls++;
    call.promise.then(
      () => {
        this.totals.succeeded++;
        this.totals.fuel += call.usage?.fuel ?? 0;
        this.#settled(call, undefined);
      },
      (error: Error) => {
        this.totals.failed++;
        this.totals.fuel += call.usage?.fuel ?? 0;
        this.#settled(call, error);
      },
    );
    if (options?.signal) this.#watchSignal(call, options.signal);
    return call;
  }

  /** Queues a request for a worker (a lease) in the same line as calls. */
  request(request: WorkerRequest, priority = 0): void {
    request.priority = priority;
    this.#enter(request, false);
  }

  /** Entries in line for a worker. */
  get waiting(): number {
    return this.#line.size + this.#front.length;
  }

  // ─── what the pool reports ────────────────────────────────────────────────

  /** A worker became free (idle): pair it with waiting work. */
  workerFree(): void {
    this.#schedule();
  }

  /** `call` began running (from idle, or after the call before it replied). */
  started(call: Call): void {
    this.#move(call, 'running');
  }

  /** Some busy worker may take a call ahead: look, once everything enqueued in this tick is in line. */
  wantAhead(): void {
    if (this.#aheadPassQueued || this.#queued.size === 0) return;
    this.#aheadPassQueued = true;
    queueMicrotask(() => {
      this.#aheadPassQueued = false;
      this.#aheadPassDue = true;
      this.#schedule();
    });
  }

  /** A call sent ahead to a worker that died before starting it: back to the head of the line, to run exactly once. */
  unstarted(call: Call): void {
    call.startedAt = undefined;
    if (call.settled) return;
    if (this.#closedError) return void call.reject(this.#closedError());
    this.#move(call, 'queued');
    this.#enter(call, true);
  }

  /** The running call ended with its worker's process: it goes round again if it may, else fails with `error`. */
  lost(call: Call, error: Error): void {
    if (call.settled) return;
    const retry = this.#options.retry;
    // A stream's items already reached its consumer: it is never run again.
    if (!retry || call.stream || !this.#retryable.has(call) || !(error instanceof WorkerCrashedError) || call.attempts >= retry.attempts || this.#closedError) {
      return void call.reject(error);
    }
    call.attempts++;
    call.startedAt = undefined;
    this.#options.logger.warn({ method: call.method, attempt: call.attempts, error: error.message }, `process-sandbox: retrying ${call.method}() after a crash (attempt ${call.attempts + 1})`);
    this.#move(call, 'queued');
    this.#clock.setTimeout(() => {
      if (call.settled) return;
      if (this.#closedError) return void this.#leaveQueue(call, this.#closedError());
      this.#enter(call, true); // it was first in line once already
    }, retry.backoffMs * 2 ** (call.attempts - 1));
  }

  // ─── scheduling ───────────────────────────────────────────────────────────

  #enter(entry: Entry, front: boolean): void {
    if (front) this.#front.unshift(entry);
    else this.#line.enqueue(entry as unknown as () => Promise<unknown>, { priority: entryPriority(entry) });
    this.#schedule();
    if (this.waiting === 0) return;
    this.#workers.demand(this.waiting);
    this.wantAhead();
  }

  /**
   * Pairs free capacity with waiting work until one runs out: idle workers take the next entry;
   * in the ahead pass (a microtask after calls were enqueued or a worker started one), busy workers
   * that may go ahead take the next call. A report that arrives while it runs (a
   * worker it handed a call to changes state) makes it go round once more instead of nesting.
   */
  #schedule(): void {
    if (this.#scheduling) return void (this.#scheduleAgain = true);
    this.#scheduling = true;
    try {
      do {
        this.#scheduleAgain = false;
        while (this.waiting > 0 && this.#workers.hasIdleWorker()) {
          const entry = this.#takeNext(false);
          if (!entry) break;
          this.#assign(entry, this.#workers.takeIdleWorker()!);
        }
        if (this.#aheadPassDue) {
          this.#aheadPassDue = false;
          for (const worker of this.#workers.aheadCandidates()) {
            const call = this.#takeNext(true);
            if (!call) break;
            this.#assign(call, worker);
          }
        }
      } while (this.#scheduleAgain);
    } finally {
      this.#scheduling = false;
    }
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

  #assign(entry: Entry, worker: PoolWorker): void {
    if (!(entry instanceof Call)) return entry.assign(worker);
    // To an idle worker it starts at once (the worker reports it: started()); to a busy one it goes ahead.
    if (worker.state !== 'idle') this.#move(entry, 'ahead');
    try {
      worker.run(entry);
    } catch (error) {
      entry.reject(error as Error); // an internal fault must still settle the call
    }
  }

  // ─── state ────────────────────────────────────────────────────────────────

  /** Every step of a call's life but settling goes through here. */
  #move(call: Call, to: Exclude<CallState, 'settled'>): void {
    const from = call.moveTo(to);
    if (from === 'settled' || from === to || call.control) return;
    this.#leave(call, from);
    if (to === 'queued') this.#queued.add(call);
    else this.#inFlight++;
  }

  /** `call` left state `from` (to another, or settled). */
  #leave(call: Call, from: CallState): void {
    if (call.control) return;
    if (from === 'queued') this.#queued.delete(call);
    else if (from === 'ahead' || from === 'running') this.#inFlight--;
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

  get #unsettled(): number {
    return this.totals.calls - this.totals.succeeded - this.totals.failed;
  }

  #settled(call: Call, error: Error | undefined): void {
    if (this.#unsettled === 0) for (const resolve of this.#drainWaiters.splice(0)) resolve();
    this.onCallSettled(call, error);
  }

  #watchSignal(call: Call, signal: AbortSignal): void {
    const onAbort = (): void => {
      switch (call.state) {
        case 'queued':
          return this.#leaveQueue(call, new CallAbortedError(call.method, false, signal.reason));
        case 'ahead':
          // The worker drops it if it has not begun (if it has, it is treated as running).
          call.reject(new CallAbortedError(call.method, false, signal.reason));
          return this.#workers.holderOf(call)?.cancelAhead(call);
        case 'running': {
          const error = new CallAbortedError(call.method, true, signal.reason);
          // An open stream is cancelled (the worker returns its iterator), not killed.
          if (call.stream) {
            call.stream.abort(error);
            return void call.reject(error);
          }
          const worker = call.options?.onAbortRunning === 'detach' ? undefined : this.#workers.holderOf(call);
          if (worker) return worker.killDuringCall('abort', error);
          return void call.reject(error); // detached: its reply will find it settled
        }
        default:
          return;
      }
    };
    if (signal.aborted) return onAbort();
    signal.addEventListener('abort', onAbort, { once: true });
    const forget = (): void => signal.removeEventListener('abort', onAbort);
    call.promise.then(forget, forget);
  }

  #armQueueTimeout(call: Call, timeoutMs: number): void {
    const timer = this.#clock.setTimeout(() => {
      if (call.state === 'queued') this.#leaveQueue(call, new QueueTimeoutError(call.method, timeoutMs));
      else if (call.state === 'ahead') {
        // Sent ahead but not started: still waiting, as far as the caller is concerned.
        call.reject(new QueueTimeoutError(call.method, timeoutMs));
        this.#workers.holderOf(call)?.cancelAhead(call);
      }
    }, timeoutMs);
    const clear = (): void => this.#clock.clearTimeout(timer);
    call.promise.then(clear, clear);
  }

  /** Settles a call that never reached a worker, and takes it out of the line. */
  #leaveQueue(call: Call, error: Error): void {
    this.#line.remove(call as unknown as () => Promise<unknown>);
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

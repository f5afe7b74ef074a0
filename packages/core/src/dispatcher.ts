/**
 * The life of a call, in one place: validate, encode, queue (by priority, FIFO within one, bounded),
 * wait for a worker, run, settle exactly once — or leave the queue on abort or queue timeout, or go
 * round again after a crash when the method was declared idempotent. A call's state (call.ts) is
 * moved here only, and the counts (queued, in flight, unsettled) follow from it.
 *
 * The line (call-line.ts) orders waiting entries by priority, FIFO within one. Lease requests wait
 * in the same line as calls, so a session gets a worker in its fair turn.
 *
 * One scheduling loop, `#schedule`, pairs free capacity with waiting work, and is never re-entered:
 * workers and leases only report (a worker is idle, a call started, a call was lost), and whatever a
 * pairing sets off while the loop runs is picked up by the same loop.
 *
 * Lookahead (pipelineDepth): a busy worker may be sent its next calls before its current one
 * returns. Which calls go ahead, and which are recalled when, are the rules in lookahead.ts; the
 * moves of the calls' states and the pass that sends them stay here.
 */
import {
  CallAbortedError,
  MethodNotFoundError,
  QueueFullError,
  QueueTimeoutError,
  WorkerCrashedError,
  type EncodeOptions,
} from '@process-sandbox/abstractions';
import { Call, callerView, captureCallSite, type CallOptions, type CallState } from './call.js';
import { CallLine, entryPriority, type Entry, type WorkerRequest as LineRequest } from './call-line.js';
import { Lookahead } from './lookahead.js';
import { splitCallbacks } from './call-traffic.js';
import { invokeEncodeOptions, invokeFrame } from './invoke-frame.js';
import type { ResolvedOptions } from './options.js';
import { systemClock, type Clock, type PoolWorker } from './pool-worker.js';

/** What the dispatcher needs from the pool. */
export interface WorkerSource {
  /** An idle worker, taken out of the idle set; or undefined. */
  takeIdleWorker(): PoolWorker | undefined;
  /** Whether a worker is idle right now (then a call does not wait, whatever maxQueueSize says). */
  hasIdleWorker(): boolean;
  /** The busy worker, of those that may be sent a call ahead now, that holds the fewest calls ahead. */
  aheadCandidate(): PoolWorker | undefined;
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
export interface WorkerRequest extends LineRequest {
  assign(worker: PoolWorker): void;
}

export interface CallTotals {
  calls: number;
  succeeded: number;
  failed: number;
  /** Fuel consumed by WebAssembly calls (`wasm.fuelPerCall`), as their workers reported it. */
  fuel: number;
}

export class Dispatcher {
  readonly #options: ResolvedOptions;
  readonly #workers: WorkerSource;
  readonly #clock: Clock;
  /** Entries waiting for a worker. */
  readonly #line = new CallLine();
  /** Users' calls in state `ahead` (an index kept by #move) and the rules that recall them. */
  readonly #lookahead = new Lookahead((call) => this.#workers.holderOf(call), () => this.#schedule());
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
  readonly totals: CallTotals = { calls: 0, succeeded: 0, failed: 0, fuel: 0 };
  onQueueFull: (method: string) => void = () => {};
  /** Every accepted call, once, when it settles: `error` undefined on success. */
  onCallSettled: (call: Call, error: Error | undefined) => void = () => {};

  /** Made once: the hot path allocates nothing for them. */
  readonly #encodeOptions: EncodeOptions;
  /** Where every accepted call settles: its state, the totals and drain are kept here, with no reaction per call. */
  readonly #onSettle = (call: Call, from: CallState, error: Error | undefined): void => {
    this.#leave(call, from);
    if (call.cleanUp) for (const undo of call.cleanUp) undo();
    if (error === undefined) this.totals.succeeded++;
    else this.totals.failed++;
    this.totals.fuel += call.usage?.fuel ?? 0;
    this.#settled(call, error);
  };

  constructor(options: ResolvedOptions, workers: WorkerSource, clock: Clock = systemClock) {
    this.#options = options;
    this.#clock = clock;
    this.#encodeOptions = invokeEncodeOptions(options.maxMessageBytes);
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
    // Encoded now: an argument that cannot cross fails here, before anything is queued (invoke-frame.ts).
    const split = splitCallbacks(args);
    const frame = invokeFrame(id, method, split?.args ?? args, session, split?.slots, this.#encodeOptions);
    const call = new Call(id, method, frame, options?.timeoutMs ?? this.#options.methodCallTimeoutMs, options, this.#onSettle);
    if (split) call.callbacks = split.callbacks;
    if (this.#options.captureCallerStack) call.callSite = captureCallSite(Dispatcher.prototype.prepare);
    this.totals.calls++;
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
    return this.#line.size;
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
    if (this.#queued.size > 0) this.#lookahead.wantPass();
  }

  /** A call sent ahead to a worker that died before starting it: back to the head of the line, to run exactly once. */
  unstarted(call: Call): void {
    call.startedAt = undefined;
    call.cancelRequested = false; // a Cancel to its next worker is a new one
    if (call.settled) return;
    this.#options.logger.debug({ id: call.id, method: call.method }, `process-sandbox: call ${call.id} (${call.method}) came back unstarted from its worker; it goes back in line`);
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
    const priority = entryPriority(entry);
    this.#lookahead.noteEntry(priority);
    if (front) this.#line.returnToFront(entry);
    else this.#line.enqueue(entry);
    this.#schedule();
    if (this.waiting === 0) return;
    if (entry instanceof Call && entry.state === 'queued') this.#lookahead.recallBelow(priority);
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
          const entry = this.#line.takeNext(false);
          if (!entry) break;
          this.#assign(entry, this.#workers.takeIdleWorker()!);
        }
        if (this.#lookahead.takePass()) {
          // One call at a time to the worker holding the fewest: the calls ahead spread evenly.
          for (let worker = this.#workers.aheadCandidate(); worker; worker = this.#workers.aheadCandidate()) {
            const call = this.#line.takeNext(true);
            if (!call) break;
            this.#assign(call, worker);
          }
        }
        if (this.waiting === 0 && this.#lookahead.size > 0 && this.#workers.hasIdleWorker()) this.#lookahead.stealForFree();
      } while (this.#scheduleAgain);
    } finally {
      this.#scheduling = false;
    }
  }

  #assign(entry: Entry, worker: PoolWorker): void {
    if (!(entry instanceof Call)) return (entry as WorkerRequest).assign(worker); // only requests of ours are in line
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
    else {
      this.#inFlight++;
      if (to === 'ahead') this.#lookahead.add(call);
    }
  }

  /** `call` left state `from` (to another, or settled). */
  #leave(call: Call, from: CallState): void {
    if (call.control) return;
    if (from === 'queued') this.#queued.delete(call);
    else if (from === 'ahead' || from === 'running') {
      this.#inFlight--;
      if (from === 'ahead') this.#lookahead.delete(call);
    }
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
    (call.cleanUp ??= []).push(() => signal.removeEventListener('abort', onAbort));
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
    (call.cleanUp ??= []).push(() => this.#clock.clearTimeout(timer));
  }

  /** Settles a call that never reached a worker, and takes it out of the line. */
  #leaveQueue(call: Call, error: Error): void {
    this.#line.remove(call);
    call.reject(error);
  }
}

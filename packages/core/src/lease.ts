/**
 * A session: a sequence of calls pinned to one worker, for stateful legacy objects (open a document,
 * edit it, save it). The lease waits for a worker in the same line as calls, opens a session on it
 * (by default with a fresh implementation instance), runs its calls one at a time in order, and at
 * the end closes the session (disposing that instance) and hands the worker back to the pool — which
 * may retire it if it is over a limit.
 *
 * If the worker dies, the call running then rejects with the crash error, and every other call of
 * the lease rejects with SessionLostError: a session is never silently re-run elsewhere.
 */
import { MessageKind, frameMessage, PoolDisposedError, SessionLostError } from '@process-sandbox/abstractions';
import { Call, callerView, type CallOptions } from './call.js';
import type { WorkerRequest } from './dispatcher.js';
import type { PoolWorker } from './pool-worker.js';

/** What a lease needs from its pool. */
export interface LeaseHost {
  prepare(method: string, args: unknown[], options: CallOptions | undefined, session: number): Call;
  nextControlId(): number;
  readonly sessionOpenTimeoutMs: number;
  /** The lease is done with this (live, idle) worker. */
  release(worker: PoolWorker): void;
  /** The lease is over, whatever became of its worker. */
  forget(lease: Lease): void;
  /** The worker pinned to `lease` (whose `lease` is it), while the pool has it. */
  workerOf(lease: Lease): PoolWorker | undefined;
}

let nextSession = 1;

/**
 * waiting  in line for a worker
 * opening  pinned to its worker; SessionOpen sent
 * open     runs its calls, one at a time, in order
 * ending   end() was called: its calls finish, then SessionClose
 * ended    its worker is handed back (or it never got one)
 * lost     its worker died: every call fails with SessionLostError
 */
export type LeaseState = 'waiting' | 'opening' | 'open' | 'ending' | 'ended' | 'lost';

export class Lease implements WorkerRequest {
  readonly session = nextSession++;
  /** Resolves once the lease has its worker and its session is open. */
  readonly acquired: Promise<void>;
  readonly #host: LeaseHost;
  readonly #fresh: boolean;
  /** Its calls not yet handed to the worker. */
  readonly #calls: Call[] = [];
  #state: LeaseState = 'waiting';
  /** What made it `lost`. */
  #lostError: SessionLostError | undefined;
  #ending: Promise<void> | undefined;
  #acquiredResolve!: () => void;
  #acquiredReject!: (error: Error) => void;

  constructor(host: LeaseHost, fresh: boolean) {
    this.#host = host;
    this.#fresh = fresh;
    this.acquired = new Promise((resolve, reject) => {
      this.#acquiredResolve = resolve;
      this.#acquiredReject = reject;
    });
    this.acquired.catch(() => {});
  }

  get state(): LeaseState {
    return this.#state;
  }

  /** For the dispatcher: true once the lease no longer waits for a worker. */
  get settled(): boolean {
    return this.#state !== 'waiting';
  }

  /**
   * The worker this lease is pinned to. The pin is stored once, as the worker's `lease` (the pool
   * reads it for every scheduling decision); the lease finds its worker through the pool.
   */
  get worker(): PoolWorker | undefined {
    return this.#state === 'waiting' ? undefined : this.#host.workerOf(this);
  }

  /** The dispatcher hands us an idle worker: pin it and open the session on it. */
  assign(worker: PoolWorker): void {
    this.#state = 'opening';
    worker.lease = this;
    this.#control(worker, MessageKind.SessionOpen).promise.then(
      () => {
        if (this.#state === 'opening') this.#state = 'open';
        this.#acquiredResolve();
        this.#pump();
      },
      (error: Error) => {
        this.#acquiredReject(error);
        void this.end();
      },
    );
  }

  /** The pool could not serve the request (disposed). */
  fail(error: Error): void {
    if (this.#state !== 'waiting') return;
    this.#state = 'ended';
    this.#acquiredReject(error);
    this.#host.forget(this);
  }

  invoke(method: string, args: unknown[], options?: CallOptions): Promise<unknown> {
    if (this.#lostError) return Promise.reject(new SessionLostError(method, this.#lostError.pid, { cause: this.#lostError.cause }));
    if (this.#ending || this.#state === 'ended') return Promise.reject(new PoolDisposedError(method, 'the lease has ended'));
    let call: Call;
    try {
      call = this.#host.prepare(method, args, options, this.session);
    } catch (error) {
      return Promise.reject(error);
    }
    this.#calls.push(call);
    this.#pump();
    return callerView(call);
  }

  /** The pinned worker is idle again. */
  onIdle(): void {
    this.#pump();
  }

  /** The pinned worker left service (crash, timeout, kill): nothing more can run in this session. */
  onWorkerLost(worker: PoolWorker): void {
    const opened = this.#state !== 'opening';
    this.#state = 'lost';
    this.#lostError = new SessionLostError(undefined, worker.pid, { cause: worker.endReason ? new Error(worker.endReason) : undefined });
    for (const call of this.#calls.splice(0)) call.reject(new SessionLostError(call.method, worker.pid));
    if (!opened) this.#acquiredReject(this.#lostError);
    this.#host.forget(this);
  }

  /** Waits for the lease's calls, closes the session and hands the worker back. Idempotent. */
  end(): Promise<void> {
    this.#ending ??= this.#end();
    return this.#ending;
  }

  async #end(): Promise<void> {
    if (this.#state === 'waiting') return this.fail(new PoolDisposedError(undefined, 'the lease ended before it got a worker'));
    const worker = this.worker;
    const running = worker?.currentCall;
    await Promise.allSettled([...this.#calls, running].filter((c) => c !== undefined).map((c) => c!.promise));
    await this.acquired.catch(() => {});
    if (this.#state === 'lost' || !worker?.live) return;
    const opened = this.#state === 'open';
    this.#state = 'ending';
    if (opened) await this.#control(worker, MessageKind.SessionClose).promise.catch(() => {});
    if (this.#state !== 'ending' || !worker.live) return; // lost meanwhile
    this.#state = 'ended';
    worker.lease = undefined;
    this.#host.forget(this);
    this.#host.release(worker);
  }

  #pump(): void {
    if (this.#state !== 'open' && this.#state !== 'ending') return;
    const worker = this.worker;
    if (!worker || worker.state !== 'idle') return;
    for (let call = this.#calls.shift(); call; call = this.#calls.shift()) {
      if (call.settled) continue; // aborted while waiting
      worker.run(call);
      return;
    }
  }

  /** A session message, sent like a call (the worker answers it in order) but not counted as one. */
  #control(worker: PoolWorker, kind: typeof MessageKind.SessionOpen | typeof MessageKind.SessionClose): Call {
    const id = this.#host.nextControlId();
    const frame = kind === MessageKind.SessionOpen ? frameMessage([kind, id, this.session, this.#fresh]) : frameMessage([kind, id, this.session]);
    const call = new Call(id, kind === MessageKind.SessionOpen ? '<session open>' : '<session close>', frame, this.#host.sessionOpenTimeoutMs, undefined);
    call.control = true;
    worker.run(call);
    return call;
  }
}

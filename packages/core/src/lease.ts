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
}

let nextSession = 1;

export class Lease implements WorkerRequest {
  readonly session = nextSession++;
  /** Resolves once the lease has its worker and its session is open. */
  readonly acquired: Promise<void>;
  readonly #host: LeaseHost;
  readonly #fresh: boolean;
  readonly #calls: Call[] = [];
  #worker: PoolWorker | undefined;
  #running: Call | undefined;
  #opened = false;
  #lost: SessionLostError | undefined;
  #ending: Promise<void> | undefined;
  #acquiredResolve!: () => void;
  #acquiredReject!: (error: Error) => void;
  #settled = false;

  constructor(host: LeaseHost, fresh: boolean) {
    this.#host = host;
    this.#fresh = fresh;
    this.acquired = new Promise((resolve, reject) => {
      this.#acquiredResolve = resolve;
      this.#acquiredReject = reject;
    });
    this.acquired.catch(() => {});
  }

  /** For the dispatcher: true once the lease no longer waits for a worker. */
  get settled(): boolean {
    return this.#settled;
  }

  get worker(): PoolWorker | undefined {
    return this.#worker;
  }

  /** The dispatcher hands us an idle worker: open the session on it. */
  assign(worker: PoolWorker): void {
    this.#settled = true;
    this.#worker = worker;
    worker.lease = this;
    this.#control(MessageKind.SessionOpen).promise.then(
      () => {
        this.#opened = true;
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
    if (this.#settled) return;
    this.#settled = true;
    this.#acquiredReject(error);
    this.#host.forget(this);
  }

  invoke(method: string, args: unknown[], options?: CallOptions): Promise<unknown> {
    if (this.#lost) return Promise.reject(new SessionLostError(method, this.#lost.pid, { cause: this.#lost.cause }));
    if (this.#ending) return Promise.reject(new PoolDisposedError(method, 'the lease has ended'));
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
    this.#running = undefined;
    this.#pump();
  }

  /** The pinned worker left service (crash, timeout, kill): nothing more can run in this session. */
  onWorkerLost(worker: PoolWorker): void {
    this.#lost = new SessionLostError(undefined, worker.pid, { cause: worker.endReason ? new Error(worker.endReason) : undefined });
    this.#running = undefined;
    for (const call of this.#calls.splice(0)) call.reject(new SessionLostError(call.method, worker.pid));
    if (!this.#opened) this.#acquiredReject(this.#lost);
    this.#host.forget(this);
  }

  /** Waits for the lease's calls, closes the session and hands the worker back. Idempotent. */
  end(): Promise<void> {
    this.#ending ??= this.#end();
    return this.#ending;
  }

  async #end(): Promise<void> {
    if (!this.#settled) return this.fail(new PoolDisposedError(undefined, 'the lease ended before it got a worker'));
    await Promise.allSettled([...this.#calls, this.#running].filter((c) => c !== undefined).map((c) => c!.promise));
    await this.acquired.catch(() => {});
    const worker = this.#worker!;
    if (this.#lost || !worker.live) return;
    if (this.#opened) await this.#control(MessageKind.SessionClose).promise.catch(() => {});
    if (this.#lost || !worker.live) return;
    worker.lease = undefined;
    this.#host.forget(this);
    this.#host.release(worker);
  }

  #pump(): void {
    const worker = this.#worker;
    if (!worker || !this.#opened || this.#running || worker.state !== 'idle') return;
    for (let call = this.#calls.shift(); call; call = this.#calls.shift()) {
      if (call.settled) continue; // aborted while waiting
      this.#running = call;
      worker.run(call);
      return;
    }
  }

  /** A session message, sent like a call (the worker answers it in order) but not counted as one. */
  #control(kind: typeof MessageKind.SessionOpen | typeof MessageKind.SessionClose): Call {
    const id = this.#host.nextControlId();
    const frame = kind === MessageKind.SessionOpen ? frameMessage([kind, id, this.session, this.#fresh]) : frameMessage([kind, id, this.session]);
    const call = new Call(id, kind === MessageKind.SessionOpen ? '<session open>' : '<session close>', frame, this.#host.sessionOpenTimeoutMs, undefined);
    call.control = true;
    this.#running = call;
    this.#worker!.run(call);
    return call;
  }
}

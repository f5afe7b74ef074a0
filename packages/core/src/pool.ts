/**
 * The set of workers behind one proxy: starts them, keeps between minPoolSize and maxPoolSize of
 * them serving, hands idle ones to the dispatcher (or to the lease they are pinned to), retires them
 * past their limits with a warm spare ready to take over, replaces the ones that crash or time out,
 * stops starting them when they keep dying young (circuit breaker), rolls them onto new code
 * (reload), and takes them all down on dispose. Its parts: the workers themselves (WorkerSet), how
 * many run (PoolScaling), the line (Dispatcher), limits and retirement (Recycling), the spares
 * (WarmSpares) and the breaker (StartGuard); the pool wires them and turns workers' reports into events.
 */
import { PoolDisposedError, type HealthSnapshot } from '@process-sandbox/abstractions';
import { callSettledEvent } from './call-outcome.js';
import type { Call, CallOptions } from './call.js';
import { Dispatcher, type WorkerSource } from './dispatcher.js';
import { guardOnExit, unguard } from './host-exit.js';
import { discards } from './logger.js';
import { Lease, type LeaseHost } from './lease.js';
import { reloadOptions, type ReloadOptions, type ResolvedOptions } from './options.js';
import { SafeEmitter, type PoolEvents } from './pool-events.js';
import { workerStats, type PoolStats } from './pool-types.js';
import { Recycling } from './recycling.js';
import { StartGuard } from './start-guard.js';
import { WarmSpares } from './warm-spares.js';
import { isLive, systemClock, type Clock, type PoolWorker, type WorkerFactory, type WorkerObserver, type WorkerState } from './pool-worker.js';
import { PoolScaling } from './pool-scaling.js';
import { WorkerHandle } from './worker-handle.js';
import { WorkerSet } from './worker-set.js';

export type { WorkerStats, PoolStats } from './pool-types.js';

export interface DisposeOptions {
  /** Run the calls already queued before stopping (default false: they reject with PoolDisposedError). */
  drain?: boolean;
}

export interface LeaseOptions {
  /** Build a fresh implementation instance for the session, disposed at its end. Default true. */
  newInstancePerSession?: boolean;
  /** Place in the line for a worker: higher first. Default 0. */
  priority?: number;
}

/** How a pool makes its workers and reads the time: real processes and the system clock, unless a test says otherwise. */
export interface PoolDependencies {
  createWorker?: WorkerFactory;
  clock?: Clock;
}

const spawnWorkerHandle: WorkerFactory = (id, options, observer, generation) => new WorkerHandle(id, options, observer, generation);

export class ProcessPool extends SafeEmitter<PoolEvents> implements WorkerSource, WorkerObserver, LeaseHost {
  #options: ResolvedOptions;
  readonly #dispatcher: Dispatcher;
  readonly #workers: WorkerSet;
  readonly #leases = new Set<Lease>();
  #methods: Set<string> | undefined;
  #nextControlId = -1;
  #generation = 0;
  #crashes = 0;
  #timeouts = 0;
  /** open: serving; closing: dispose() was called (queued calls may still drain); stopping: its workers are being stopped. */
  #phase: 'open' | 'closing' | 'stopping' = 'open';
  /** dispose()'s one run, for every caller. */
  #disposal: Promise<void> | undefined;
  /** The circuit breaker, as this pool applies it. */
  readonly #startGuard: StartGuard;
  readonly #spares: WarmSpares;
  readonly #recycling: Recycling;
  readonly #scaling: PoolScaling;
  readonly #clock: Clock;

  constructor(options: ResolvedOptions, dependencies: PoolDependencies = {}) {
    super(options.logger);
    this.#options = options;
    this.#clock = dependencies.clock ?? systemClock;
    this.#dispatcher = new Dispatcher(options, this, this.#clock);
    this.#dispatcher.onQueueFull = (method) => this.emit('queueFull', { method, maxQueueSize: options.maxQueueSize });
    this.#dispatcher.onCallSettled = (call, error) => this.#onCallSettled(call, error);
    this.#startGuard = new StartGuard(this.#clock, {
      logger: options.logger,
      onOpen: (error) => this.#dispatcher.rejectQueued(error),
      onRetry: () => this.#scaling.refill(),
    });
    this.#spares = new WarmSpares(options.warmSpare, options.processRecycleThreshold, options.maxWarmSpares);
    this.#workers = new WorkerSet(dependencies.createWorker ?? spawnWorkerHandle, this.#spares);
    const pool = this; // eslint-disable-line @typescript-eslint/no-this-alias -- its private fields, read live
    const host = {
      get options() {
        return pool.#options;
      },
      get generation() {
        return pool.#generation;
      },
      get stopping() {
        return pool.#phase === 'stopping';
      },
      get waiting() {
        return pool.#dispatcher.queued;
      },
      workers: this.#workers,
      liveCount: () => this.#workers.liveCount(),
      spawn: () => this.#spawn(),
      toWork: (worker: PoolWorker) => this.#onIdle(worker),
    };
    this.#recycling = new Recycling(host, this, this.#spares, this.#clock);
    this.#scaling = new PoolScaling(host, this.#workers, this.#spares, this.#startGuard);
    guardOnExit(this);
  }

  get options(): ResolvedOptions {
    return this.#options;
  }

  /** Starts minPoolSize workers and waits until they are ready; on failure disposes and throws. */
  async start(): Promise<void> {
    try {
      const first = Array.from({ length: this.#options.minPoolSize }, () => this.#spawn());
      // The spare starts alongside and create() waits for it too (in parallel, it costs next to
      // nothing), so that the first retirement finds it ready. A spare that fails to start fails
      // nothing: the pool carries on without it.
      this.#scaling.fillSpares();
      await Promise.all([...first.map((w) => w.ready), ...[...this.#spares.all].map((w) => w.ready.catch(() => {}))]);
    } catch (error) {
      await this.dispose();
      throw error;
    }
  }

  get methods(): ReadonlySet<string> | undefined {
    return this.#methods;
  }

  get disposed(): boolean {
    return this.#phase !== 'open';
  }

  invoke(method: string, args: unknown[], options?: CallOptions): Promise<unknown> {
    return this.#dispatcher.invoke(method, args, options);
  }

  /** A lease on one worker: resolves once the worker is pinned and the session open. */
  async lease(options: LeaseOptions = {}): Promise<Lease> {
    if (this.#phase !== 'open') throw new PoolDisposedError(undefined, 'cannot lease a worker');
    this.#startGuard.check();
    const lease = new Lease(this, options.newInstancePerSession ?? true);
    this.#leases.add(lease);
    this.#dispatcher.request(lease, options.priority);
    await lease.acquired;
    return lease;
  }

  /**
   * Rolls every worker onto new code (or options): successors start first, then the old workers
   * leave as soon as they are idle. No call fails; calls made after this resolves run on the new code.
   * If a successor cannot start, the old workers stay and this rejects with its WorkerStartError.
   */
  async reload(changes: ReloadOptions = {}): Promise<void> {
    if (this.#phase !== 'open') throw new PoolDisposedError(undefined, 'cannot reload');
    const previous = this.#options;
    const next = reloadOptions(previous, changes);
    const old = [...this.#workers].filter((w) => w.live);
    this.#options = next;
    this.#generation++;
    this.#startGuard.reset(); // new code, new record
    const successors = Array.from({ length: Math.max(1, old.filter((w) => !this.#spares.has(w)).length) }, () => this.#spawn());
    try {
      await Promise.all(successors.map((w) => w.ready));
    } catch (error) {
      this.#options = previous;
      this.#generation--;
      for (const w of successors) w.stop('reload failed');
      throw error;
    }
    this.#methods = new Set(successors[0]!.methods);
    // Old workers leave once idle; the idle ones now. A leased one stays until its lease ends.
    this.#spares.clear(); // old code: they leave like the others
    for (const worker of old) if (worker.state === 'idle' && !worker.lease) this.#recycling.retire(worker, 'reload');
    this.#scaling.fillSpares();
  }

  stats(): PoolStats {
    const { totals } = this.#dispatcher;
    return {
      workers: [...this.#workers].map((w) => workerStats(w, this.#spares.has(w))),
      totals: { ...totals, crashes: this.#crashes, timeouts: this.#timeouts, recycles: { ...this.#recycling.counts }, queued: this.#dispatcher.queued, inFlight: this.#dispatcher.inFlight },
      leases: this.#leases.size,
      circuit: this.#startGuard.state,
    };
  }

  /** Pids of worker processes that have not exited yet. */
  livePids(): number[] {
    return this.#workers.livePids();
  }

  /**
   * Stops the pool. Queued calls reject with PoolDisposedError (or run first, with `drain`);
   * calls in flight get `shutdownGraceMs` to finish; then every worker is killed. Resolves once
   * every worker process has exited. Idempotent.
   */
  dispose(options: DisposeOptions = {}): Promise<void> {
    this.#disposal ??= this.#dispose(options.drain === true);
    return this.#disposal;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.dispose();
  }

  async #dispose(drain: boolean): Promise<void> {
    this.#phase = 'closing';
    this.#dispatcher.close(() => new PoolDisposedError());
    if (drain) await this.#dispatcher.drained();
    else this.#dispatcher.rejectQueued((call) => new PoolDisposedError(call.method));
    for (const lease of [...this.#leases]) lease.fail(new PoolDisposedError(undefined, 'the pool was disposed while the lease waited for a worker'));
    this.#phase = 'stopping';
    this.#recycling.stop();
    this.#startGuard.stop();
    for (const worker of this.#workers) worker.stop('dispose', true);
    await Promise.all([...this.#workers].map((w) => w.exited));
    unguard(this);
    this.emit('disposed');
  }

  // ─── WorkerSource and LeaseHost: what the dispatcher and leases ask of us ──

  /** (A worker that becomes idle over a limit or on old code is retired at once, before it is ever free.) */
  takeIdleWorker(): PoolWorker | undefined {
    return this.#workers.takeIdle();
  }

  hasIdleWorker(): boolean {
    return this.#workers.hasIdle();
  }

  holderOf(call: Call): PoolWorker | undefined {
    return this.#workers.holderOf(call);
  }

  aheadCandidate(): PoolWorker | undefined {
    if (this.#phase === 'stopping') return undefined;
    let best: PoolWorker | undefined;
    for (const worker of this.#workers) {
      if ((!best || worker.aheadCalls.length < best.aheadCalls.length) && this.#recycling.mayGoAhead(worker)) best = worker;
    }
    return best;
  }

  demand(waiting: number): void {
    this.#scaling.demand(waiting);
  }

  checkCircuit(): void {
    this.#startGuard.check();
  }

  prepare(method: string, args: unknown[], options: CallOptions | undefined, session: number): Call {
    return this.#dispatcher.prepare(method, args, options, session);
  }

  nextControlId(): number {
    return this.#nextControlId--; // negative: never collides with a call id
  }

  get sessionOpenTimeoutMs(): number {
    return this.#options.processStartTimeoutMs;
  }

  release(worker: PoolWorker): void {
    if (worker.state === 'idle') this.#onIdle(worker);
  }

  forget(lease: Lease): void {
    this.#leases.delete(lease);
  }

  workerOf(lease: Lease): PoolWorker | undefined {
    return this.#workers.pinnedTo(lease);
  }

  // ─── WorkerObserver: what workers tell us ──────────────────────────────────

  onStateChange(worker: PoolWorker, from: WorkerState, to: WorkerState): void {
    // idle ⇄ busy happens twice per call: trace, and no message built for a logger that drops it.
    // Every other change is the worker's life: debug.
    const level = (from === 'idle' && to === 'busy') || (from === 'busy' && to === 'idle') ? 'trace' : 'debug';
    if (!discards(this.#options.logger, level)) this.#options.logger[level]({ pid: worker.pid, from, to }, `process-sandbox: worker ${worker.pid} ${from} → ${to}`);
    if (from === 'busy' || from === 'draining') this.#recycling.callsEnded();
    if (to === 'idle') {
      if (from === 'handshaking') {
        this.#methods ??= new Set(worker.methods);
        this.emit('workerReady', { pid: worker.pid, methods: worker.methods });
        this.#spares.started(this.#clock.now() - worker.startedAt);
      } else {
        this.#startGuard.callDone(worker);
      }
      if (worker.lease) return worker.lease.onIdle();
      if (this.#spares.has(worker)) return; // held back until a worker leaves
      return this.#onIdle(worker);
    }
    if (isLive(from) && !worker.live) {
      worker.lease?.onWorkerLost(worker);
      // A worker left service (retired, timed out, crashed): the spare takes its place, once. Not
      // when the pool shrinks on purpose.
      if (!this.#spares.has(worker) && worker.stopReason !== 'idle') this.#scaling.promoteSpare();
    }
    if (to === 'exited' || to === 'crashed') this.#onWorkerGone(worker, to);
    else if (!worker.live) this.#scaling.refillSoon(); // draining or stopping: make room for a successor
  }

  onCallStarted(worker: PoolWorker, call: Call): void {
    this.#dispatcher.started(call);
    this.#startGuard.callStarted(worker);
    this.#recycling.callStarted();
    if (this.#recycling.mayGoAhead(worker)) this.#dispatcher.wantAhead();
    if (this.#spares.callStarted(this.#clock.precise(), this.#workers.liveCount())) this.#scaling.refillSoon();
  }

  onCallDone(worker: PoolWorker): void {
    // With calls sent ahead a worker may never be idle between calls: its first call counts here too.
    this.#startGuard.callDone(worker);
    // The idle path checks limits in #onIdle; a worker going straight on to its next call, here.
    const reason = this.#recycling.reasonToRetire(worker);
    if (reason) this.#recycling.retire(worker, reason);
  }

  onUnstarted(_worker: PoolWorker, call: Call): void {
    this.#dispatcher.unstarted(call);
  }

  onCallLost(_worker: PoolWorker, call: Call, error: Error): void {
    this.#dispatcher.lost(call, error);
  }

  onHealth(worker: PoolWorker, health: HealthSnapshot): void {
    if (this.listenerCount('health') > 0) this.emit('health', { pid: worker.pid, health });
    this.#recycling.checkLimits(worker);
  }

  onCallTimedOut(worker: PoolWorker, call: { method: string; timeoutMs: number }): void {
    this.#timeouts++;
    this.emit('callTimedOut', { pid: worker.pid, method: call.method, timeoutMs: call.timeoutMs });
  }

  onWorkerEvent(worker: PoolWorker, name: string, payload: unknown): void {
    this.emit('workerEvent', { pid: worker.pid, name, payload });
  }

  // ─── internals ─────────────────────────────────────────────────────────────

  /** An idle worker that belongs to no lease: retire it if it is over a limit or old code, else put it to work. */
  #onIdle(worker: PoolWorker): void {
    // Checked before the worker is offered a call: it never serves past a limit.
    const reason = this.#recycling.reasonToRetire(worker);
    if (reason) return this.#recycling.retire(worker, reason);
    this.#dispatcher.workerFree();
  }

  #spawn(): PoolWorker {
    const worker = this.#workers.make(this.#options, this, this.#generation);
    if (worker.pid) this.emit('workerStarted', { pid: worker.pid });
    return worker;
  }

  #onWorkerGone(worker: PoolWorker, to: WorkerState): void {
    this.#workers.gone(worker);
    this.#spares.remove(worker);
    const exit = { pid: worker.pid, exitCode: worker.exitCode, signal: worker.signal, reason: String(worker.stopReason ?? 'crash') };
    // A timeout kill is counted and reported as a timeout (callTimedOut), not a second time as a crash.
    const crashed = to === 'crashed' && worker.startError === undefined && worker.stopReason !== 'timeout';
    if (crashed) {
      this.#crashes++;
      this.emit('workerCrashed', { ...exit, method: worker.interruptedMethod, detail: worker.endReason });
    }
    this.emit('workerExited', exit);
    if (this.#phase === 'stopping') return;
    this.#startGuard.workerGone(worker, crashed, worker.generation === this.#generation);
    this.#scaling.refillSoon();
  }

  #onCallSettled(call: Call, error: Error | undefined): void {
    if (this.listenerCount('callSettled') > 0) this.emit('callSettled', callSettledEvent(call, error));
  }
}

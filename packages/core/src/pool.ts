/**
 * The set of workers behind one proxy: starts them, keeps between minPoolSize and maxPoolSize of
 * them serving, hands idle ones to the dispatcher (or to the lease they are pinned to), retires them
 * past their limits with a warm spare ready to take over, replaces the ones that crash or time out,
 * stops starting them when they keep dying young (circuit breaker), rolls them onto new code
 * (reload), and takes them all down on dispose.
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
import { WorkerHandle } from './worker-handle.js';

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
  readonly #workers = new Set<PoolWorker>();
  readonly #leases = new Set<Lease>();
  #methods: Set<string> | undefined;
  #nextWorkerId = 1;
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
  #refillScheduled = false;

  readonly #createWorker: WorkerFactory;
  readonly #clock: Clock;

  constructor(options: ResolvedOptions, dependencies: PoolDependencies = {}) {
    super(options.logger);
    this.#options = options;
    this.#createWorker = dependencies.createWorker ?? spawnWorkerHandle;
    this.#clock = dependencies.clock ?? systemClock;
    this.#dispatcher = new Dispatcher(options, this, this.#clock);
    this.#dispatcher.onQueueFull = (method) => this.emit('queueFull', { method, maxQueueSize: options.maxQueueSize });
    this.#dispatcher.onCallSettled = (call, error) => this.#onCallSettled(call, error);
    this.#startGuard = new StartGuard(this.#clock, {
      logger: options.logger,
      onOpen: (error) => this.#dispatcher.rejectQueued(error),
      onRetry: () => this.#refill(),
    });
    this.#spares = new WarmSpares(options.warmSpare, options.processRecycleThreshold);
    const pool = this; // eslint-disable-line @typescript-eslint/no-this-alias -- its private fields, read live
    const host = {
      get options() {
        return pool.#options;
      },
      get generation() {
        return pool.#generation;
      },
      workers: this.#workers,
      liveCount: () => this.#liveCount(),
    };
    this.#recycling = new Recycling(host, this, this.#spares, this.#clock);
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
      this.#spares.fill(() => this.#startIfAllowed());
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
    this.#spares.fill(() => this.#startIfAllowed());
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
    return [...this.#workers].filter((w) => !w.terminal && w.pid > 0).map((w) => w.pid);
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

  /**
   * The free worker used last (the fewest ms idle): handing out the warmest keeps the others free
   * to shrink. Free: idle, and neither pinned to a lease nor held back as a spare. (A worker that
   * becomes idle over a limit or on old code is retired at once, before it is ever free.)
   */
  takeIdleWorker(): PoolWorker | undefined {
    let warmest: PoolWorker | undefined;
    let warmestMs = Infinity;
    for (const w of this.#workers) {
      if (!this.#isFree(w)) continue;
      const ms = w.msInState;
      if (ms <= warmestMs) [warmest, warmestMs] = [w, ms];
    }
    return warmest;
  }

  hasIdleWorker(): boolean {
    for (const w of this.#workers) if (this.#isFree(w)) return true;
    return false;
  }

  #isFree(worker: PoolWorker): boolean {
    return worker.state === 'idle' && worker.lease === undefined && !this.#spares.has(worker);
  }

  holderOf(call: Call): PoolWorker | undefined {
    for (const worker of this.#workers) if (worker.currentCall === call || worker.aheadCall === call) return worker;
    return undefined;
  }

  *aheadCandidates(): Iterable<PoolWorker> {
    if (this.#phase === 'stopping') return;
    for (const worker of this.#workers) if (this.#recycling.mayGoAhead(worker)) yield worker;
  }

  demand(waiting: number): void {
    if (this.#phase === 'stopping') return;
    let starting = 0;
    for (const w of this.#workers) if (!this.#spares.has(w) && (w.state === 'spawning' || w.state === 'handshaking')) starting++;
    let live = this.#liveCount();
    for (let missing = waiting - starting; missing > 0 && live < this.#options.maxPoolSize && this.#startIfAllowed(); missing--, live++);
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
    for (const worker of this.#workers) if (worker.lease === lease) return worker;
    return undefined;
  }

  // ─── WorkerObserver: what workers tell us ──────────────────────────────────

  onStateChange(worker: PoolWorker, from: WorkerState, to: WorkerState): void {
    // idle ⇄ busy happens twice per call: trace, and no message built for a logger that drops it.
    // Every other change is the worker's life: debug.
    const level = (from === 'idle' && to === 'busy') || (from === 'busy' && to === 'idle') ? 'trace' : 'debug';
    if (!discards(this.#options.logger, level)) this.#options.logger[level]({ pid: worker.pid, from, to }, `process-sandbox: worker ${worker.pid} ${from} → ${to}`);
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
      if (!this.#spares.has(worker) && worker.stopReason !== 'idle') this.#promoteSpare();
    }
    if (to === 'exited' || to === 'crashed') this.#onWorkerGone(worker, to);
    else if (!worker.live) this.#refillSoon(); // draining or stopping: make room for a successor
  }

  onCallStarted(worker: PoolWorker, call: Call): void {
    this.#dispatcher.started(call);
    this.#startGuard.callStarted(worker);
    if (this.#recycling.mayGoAhead(worker)) this.#dispatcher.wantAhead();
    if (this.#spares.callStarted(this.#clock.precise(), this.#liveCount())) this.#refillSoon();
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
    const worker = this.#createWorker(this.#nextWorkerId++, this.#options, this, this.#generation);
    this.#workers.add(worker);
    if (worker.pid) this.emit('workerStarted', { pid: worker.pid });
    return worker;
  }

  /** Starts a worker unless the pool is stopping or the circuit breaker says no. */
  #startIfAllowed(): PoolWorker | undefined {
    return this.#phase === 'stopping' ? undefined : this.#startGuard.tryStart(() => this.#spawn());
  }

  #onWorkerGone(worker: PoolWorker, to: WorkerState): void {
    this.#workers.delete(worker);
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
    this.#refillSoon();
  }

  /**
   * #refill on the next turn of the event loop. Starting a process (a replacement, a spare) takes a
   * millisecond or more of synchronous work: it is never done between a reply and its caller, who
   * gets the reply first (its promise reactions run before an immediate).
   */
  #refillSoon(): void {
    if (this.#refillScheduled || this.#phase === 'stopping') return;
    this.#refillScheduled = true;
    setImmediate(() => {
      this.#refillScheduled = false;
      this.#refill();
    });
  }

  /** Back up to minPoolSize, and to as many workers as the waiting calls need. */
  #refill(): void {
    if (this.#phase === 'stopping') return;
    while (this.#liveCount() < this.#options.minPoolSize && this.#startIfAllowed());
    this.demand(this.#dispatcher.queued);
    this.#spares.fill(() => this.#startIfAllowed());
  }

  #onCallSettled(call: Call, error: Error | undefined): void {
    if (this.listenerCount('callSettled') > 0) this.emit('callSettled', callSettledEvent(call, error));
  }

  /** A spare becomes a regular worker (a ready one if there is one, else the oldest) and the spares are topped up. */
  #promoteSpare(): void {
    if (this.#phase === 'stopping') return;
    const spare = this.#spares.promote();
    if (!spare) return;
    if (spare.state === 'idle') this.#onIdle(spare);
    this.#refillSoon();
  }

  /** Workers that count toward maxPoolSize: serving or starting, not leaving, not the spare. */
  #liveCount(): number {
    let live = 0;
    for (const w of this.#workers) if (w.live && !this.#spares.has(w)) live++;
    return live;
  }
}

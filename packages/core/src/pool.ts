/**
 * The set of workers behind one proxy: starts them, keeps between minPoolSize and maxPoolSize of
 * them serving, hands idle ones to the dispatcher (or to the lease they are pinned to), retires them
 * past their limits with a warm spare ready to take over, replaces the ones that crash or time out,
 * stops starting them when they keep dying young (circuit breaker), rolls them onto new code
 * (reload), and takes them all down on dispose.
 */
import { classCodeOf, PoolDisposedError, ResourceLimitError, type HealthSnapshot } from '@process-sandbox/abstractions';
import type { Call, CallOptions } from './call.js';
import { CircuitBreaker } from './circuit-breaker.js';
import { Dispatcher, type WorkerSource } from './dispatcher.js';
import { sampleProcess, Sampler } from './health-sampler.js';
import { BusyMemoryWatch } from './memory-watch.js';
import { guardOnExit, unguard } from './host-exit.js';
import { discards } from './logger.js';
import { Lease, type LeaseHost } from './lease.js';
import { reloadOptions, type ReloadOptions, type ResolvedOptions } from './options.js';
import { SafeEmitter, type PoolEvents } from './pool-events.js';
import { SparePlanner } from './spare-planner.js';
import { RECYCLE_REASONS, RecyclePolicy, type RecycleReason, type WorkerUsage } from './recycle-policy.js';
import { systemClock, type Clock, type PoolWorker, type WorkerFactory, type WorkerObserver, type WorkerState } from './pool-worker.js';
import { WorkerHandle } from './worker-handle.js';

export interface WorkerStats {
  id: number;
  pid: number;
  state: WorkerState;
  /** The warm spare: started and ready, held out of service until a worker leaves. */
  spare: boolean;
  /** Pinned to a lease. */
  leased: boolean;
  calls: number;
  rssBytes: number | undefined;
  heapUsedBytes: number | undefined;
  handles: number | undefined;
  cpuMs: number | undefined;
  startedAt: number;
  lastHealthAt: number | undefined;
}

export interface PoolStats {
  workers: WorkerStats[];
  totals: {
    calls: number;
    succeeded: number;
    failed: number;
    crashes: number;
    timeouts: number;
    recycles: Record<RecycleReason, number>;
    queued: number;
    inFlight: number;
  };
  /** Open leases (sessions), including those still waiting for a worker. */
  leases: number;
  circuit: 'closed' | 'open' | 'halfOpen';
}

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

const LIVE_STATES: ReadonlySet<WorkerState> = new Set(['spawning', 'handshaking', 'idle', 'busy']);

export class ProcessPool extends SafeEmitter<PoolEvents> implements WorkerSource, WorkerObserver, LeaseHost {
  #options: ResolvedOptions;
  readonly #dispatcher: Dispatcher;
  readonly #workers = new Set<PoolWorker>();
  /** Idle workers, most recently used last: handing out the warmest keeps the others free to shrink. */
  readonly #idle: PoolWorker[] = [];
  readonly #leases = new Set<Lease>();
  #methods: Set<string> | undefined;
  #nextWorkerId = 1;
  #nextControlId = -1;
  #generation = 0;
  #crashes = 0;
  #timeouts = 0;
  #disposing: Promise<void> | undefined;
  #stopping = false;
  #breaker: CircuitBreaker<PoolWorker>;
  #breakerTimer: ReturnType<typeof setTimeout> | undefined;
  #policy: RecyclePolicy;
  readonly #recycles = Object.fromEntries(RECYCLE_REASONS.map((r) => [r, 0])) as Record<RecycleReason, number>;
  /**
   * Started ahead of need, kept out of service until a worker leaves; then one takes its place.
   * Usually one; more while workers retire faster than a new one starts (see SparePlanner).
   */
  readonly #spares: PoolWorker[] = [];
  readonly #sparePlanner: SparePlanner;
  /** Limits each worker has been warned about, so that a resourceWarning is emitted once. */
  readonly #warned = new WeakMap<PoolWorker, Set<string>>();
  #sampler: Sampler | undefined;
  #memoryWatch: BusyMemoryWatch<PoolWorker> | undefined;
  #refillScheduled = false;
  /** Workers that have started a call (control calls included): their deaths are not young. */
  readonly #givenACall = new WeakSet<PoolWorker>();

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
    this.#policy = new RecyclePolicy(options);
    this.#sparePlanner = new SparePlanner(options.processRecycleThreshold);
    this.#breaker = new CircuitBreaker(() => this.#clock.now());
    if (options.healthIntervalMs > 0) this.#sampler = new Sampler(options.healthIntervalMs, () => this.#sample());
    if (options.hardMemoryLimitMB !== undefined) {
      this.#memoryWatch = BusyMemoryWatch.start(options.hardMemoryLimitMB * 1024 * 1024, () => this.#running(), (worker, rss) => this.#killOverHardLimit(worker, rss));
    }
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
      this.#ensureSpare();
      await Promise.all([...first.map((w) => w.ready), ...this.#spares.map((w) => w.ready.catch(() => {}))]);
    } catch (error) {
      await this.dispose();
      throw error;
    }
  }

  get methods(): ReadonlySet<string> | undefined {
    return this.#methods;
  }

  get disposed(): boolean {
    return this.#disposing !== undefined;
  }

  invoke(method: string, args: unknown[], options?: CallOptions): Promise<unknown> {
    return this.#dispatcher.invoke(method, args, options);
  }

  /** A lease on one worker: resolves once the worker is pinned and the session open. */
  async lease(options: LeaseOptions = {}): Promise<Lease> {
    if (this.#disposing) throw new PoolDisposedError(undefined, 'cannot lease a worker');
    this.#breaker.check();
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
    if (this.#disposing) throw new PoolDisposedError(undefined, 'cannot reload');
    const previous = this.#options;
    const next = reloadOptions(previous, changes);
    const old = [...this.#workers].filter((w) => w.live);
    this.#options = next;
    this.#generation++;
    this.#breaker = new CircuitBreaker(() => this.#clock.now()); // new code, new record
    const successors = Array.from({ length: Math.max(1, old.filter((w) => !this.#spares.includes(w)).length) }, () => this.#spawn());
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
    this.#spares.length = 0; // old code: they leave like the others
    for (const worker of old) if (worker.state === 'idle' && !worker.lease) this.#retire(worker, 'reload');
    this.#ensureSpare();
  }

  stats(): PoolStats {
    const { totals } = this.#dispatcher;
    return {
      workers: [...this.#workers].map((w) => ({
        id: w.id,
        pid: w.pid,
        state: w.state,
        spare: this.#spares.includes(w),
        leased: w.lease !== undefined,
        calls: w.calls,
        rssBytes: w.rssBytes,
        heapUsedBytes: w.health?.heapUsed,
        handles: w.handles,
        cpuMs: w.cpuMs,
        startedAt: w.startedAt,
        lastHealthAt: w.lastHealthAt,
      })),
      totals: { ...totals, crashes: this.#crashes, timeouts: this.#timeouts, recycles: { ...this.#recycles }, queued: this.#dispatcher.queued, inFlight: this.#dispatcher.inFlight },
      leases: this.#leases.size,
      circuit: this.#breaker.state,
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
    this.#disposing ??= this.#dispose(options.drain === true);
    return this.#disposing;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.dispose();
  }

  async #dispose(drain: boolean): Promise<void> {
    this.#dispatcher.close(() => new PoolDisposedError());
    if (drain) await this.#dispatcher.drained();
    else this.#dispatcher.rejectQueued((call) => new PoolDisposedError(call.method));
    for (const lease of [...this.#leases]) lease.fail(new PoolDisposedError(undefined, 'the pool was disposed while the lease waited for a worker'));
    this.#stopping = true;
    this.#sampler?.stop();
    this.#memoryWatch?.stop();
    this.#clock.clearTimeout(this.#breakerTimer);
    for (const worker of this.#workers) worker.stop('dispose', true);
    await Promise.all([...this.#workers].map((w) => w.exited));
    unguard(this);
    this.emit('disposed');
  }

  // ─── WorkerSource and LeaseHost: what the dispatcher and leases ask of us ──

  takeIdleWorker(): PoolWorker | undefined {
    return this.#idle.pop();
  }

  hasIdleWorker(): boolean {
    return this.#idle.length > 0;
  }

  *aheadCandidates(): Iterable<PoolWorker> {
    if (this.#stopping) return;
    for (const worker of this.#workers) if (this.#mayGoAhead(worker)) yield worker;
  }

  demand(waiting: number): void {
    if (this.#stopping) return;
    let starting = 0;
    for (const w of this.#workers) if (!this.#spares.includes(w) && (w.state === 'spawning' || w.state === 'handshaking')) starting++;
    let live = this.#liveCount();
    for (let missing = waiting - starting; missing > 0 && live < this.#options.maxPoolSize && this.#startIfAllowed(); missing--, live++);
  }

  checkCircuit(): void {
    this.#breaker.check();
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
        this.#sparePlanner.started(this.#clock.now() - worker.startedAt);
      } else if (worker.calls === 1) {
        this.#breaker.survived(worker); // its first call: start-up works
      }
      if (worker.lease) return worker.lease.onIdle();
      if (this.#spares.includes(worker)) return; // held back until a worker leaves
      return this.#onIdle(worker);
    }
    if (from === 'idle') this.#removeIdle(worker);
    if (LIVE_STATES.has(from) && !worker.live) {
      worker.lease?.onWorkerLost(worker);
      // A worker left service (retired, timed out, crashed): the spare takes its place, once. Not
      // when the pool shrinks on purpose.
      if (!this.#spares.includes(worker) && worker.stopReason !== 'idle') this.#promoteSpare();
    }
    if (to === 'exited' || to === 'crashed') this.#onWorkerGone(worker, to);
    else if (!worker.live) this.#refillSoon(); // draining or stopping: make room for a successor
  }

  onCallStarted(worker: PoolWorker, call: Call): void {
    this.#dispatcher.started(call, worker);
    // For the circuit breaker: from now on a death of this worker has a call to blame.
    if (worker.calls === 0) this.#givenACall.add(worker);
    if (this.#mayGoAhead(worker)) this.#dispatcher.wantAhead();
    if (this.#options.warmSpare && this.#sparePlanner.callStarted(this.#clock.precise(), this.#liveCount())) this.#refillSoon();
  }

  onCallDone(worker: PoolWorker): void {
    // With calls sent ahead a worker may never be idle between calls: its first call counts here too.
    if (worker.calls === 1) this.#breaker.survived(worker);
    // The idle path checks limits in #onIdle; a worker going straight on to its next call, here.
    const reason = worker.generation !== this.#generation ? 'reload' : this.#retireReasonOf(worker);
    if (reason) this.#retire(worker, reason);
  }

  onUnstarted(_worker: PoolWorker, call: Call): void {
    this.#dispatcher.unstarted(call);
  }

  onCallLost(_worker: PoolWorker, call: Call, error: Error): void {
    this.#dispatcher.lost(call, error);
  }

  onHealth(worker: PoolWorker, health: HealthSnapshot): void {
    if (this.listenerCount('health') > 0) this.emit('health', { pid: worker.pid, health });
    this.#checkLimits(worker);
  }

  onCallTimedOut(worker: PoolWorker, call: { method: string; timeoutMs: number }): void {
    this.#timeouts++;
    this.emit('callTimedOut', { pid: worker.pid, method: call.method, timeoutMs: call.timeoutMs });
  }

  // ─── internals ─────────────────────────────────────────────────────────────

  /**
   * Whether `worker` may be sent a call ahead: it is busy with a user's call, will not retire after
   * it, and will still be under its call limit after the one sent ahead.
   */
  #mayGoAhead(worker: PoolWorker): boolean {
    if (!worker.canTakeAhead || worker.stopReason !== undefined || worker.generation !== this.#generation) return false;
    const threshold = this.#options.processRecycleThreshold;
    if (threshold !== undefined && worker.calls + 2 > threshold) return false;
    return this.#retireReasonOf(worker) === undefined;
  }

  /** An idle worker that belongs to no lease: retire it if it is over a limit or old code, else put it to work. */
  #onIdle(worker: PoolWorker): void {
    if (worker.generation !== this.#generation) return this.#retire(worker, 'reload');
    // Checked before the worker is offered a call: it never serves past a limit.
    const reason = this.#retireReasonOf(worker);
    if (reason) return this.#retire(worker, reason);
    this.#idle.push(worker);
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
    return this.#stopping ? undefined : this.#breaker.tryStart(() => this.#spawn());
  }

  #onWorkerGone(worker: PoolWorker, to: WorkerState): void {
    this.#workers.delete(worker);
    this.#removeSpare(worker);
    const exit = { pid: worker.pid, exitCode: worker.exitCode, signal: worker.signal, reason: String(worker.stopReason ?? 'crash') };
    // A timeout kill is counted and reported as a timeout (callTimedOut), not a second time as a crash.
    const crashed = to === 'crashed' && worker.startError === undefined && worker.stopReason !== 'timeout';
    if (crashed) {
      this.#crashes++;
      this.emit('workerCrashed', { ...exit, method: worker.interruptedMethod, detail: worker.endReason });
    }
    this.emit('workerExited', exit);
    if (this.#stopping) return;
    const youngDeath = worker.generation === this.#generation ? this.#youngDeathOf(worker, crashed) : undefined;
    if (youngDeath === undefined) this.#breaker.ended(worker);
    else if (this.#breaker.youngDeath(worker, youngDeath)) this.#onCircuitOpen();
    this.#refillSoon();
  }

  /**
   * The circuit breaker judges start-up, not calls (see circuit-breaker.ts): a worker dies young if
   * it never became ready, or if it crashed after Ready without ever having been given a call. One
   * that died while a call ran in it was killed by that call (the call's WorkerCrashedError or
   * CallTimeoutError says so) and does not count; nor does one that completed a call.
   */
  #youngDeathOf(worker: PoolWorker, crashed: boolean): Error | undefined {
    if (worker.startError) return worker.startError;
    if (!crashed || this.#givenACall.has(worker)) return undefined;
    const how = worker.endReason ?? `exit code ${worker.exitCode}, signal ${worker.signal}`;
    return new Error(`worker ${worker.pid} died after it was ready, before it was given any call: ${how}`);
  }

  /** Calls waiting now would wait for the whole back-off: fail them fast; try again when it ends. */
  #onCircuitOpen(): void {
    const error = (): Error => {
      try {
        this.#breaker.check();
      } catch (open) {
        return open as Error;
      }
      return new PoolDisposedError();
    };
    this.#options.logger.error({ retryAt: this.#breaker.retryAt }, `process-sandbox: circuit open: ${error().message}`);
    this.#dispatcher.rejectQueued(error);
    this.#clock.clearTimeout(this.#breakerTimer);
    this.#breakerTimer = this.#clock.setTimeout(() => this.#refill(), Math.max(0, this.#breaker.retryAt - this.#clock.now()));
  }

  /**
   * #refill on the next turn of the event loop. Starting a process (a replacement, a spare) takes a
   * millisecond or more of synchronous work: it is never done between a reply and its caller, who
   * gets the reply first (its promise reactions run before an immediate).
   */
  #refillSoon(): void {
    if (this.#refillScheduled || this.#stopping) return;
    this.#refillScheduled = true;
    setImmediate(() => {
      this.#refillScheduled = false;
      this.#refill();
    });
  }

  /** Back up to minPoolSize, and to as many workers as the waiting calls need. */
  #refill(): void {
    if (this.#stopping) return;
    while (this.#liveCount() < this.#options.minPoolSize && this.#startIfAllowed());
    this.demand(this.#dispatcher.queued);
    this.#ensureSpare();
  }

  #onCallSettled(call: Call, error: Error | undefined): void {
    if (this.listenerCount('callSettled') === 0) return;
    this.emit('callSettled', {
      method: call.method,
      // The class's code, not the instance's: a RemoteError carries the remote error's own code.
      outcome: error === undefined ? 'success' : outcomeOf(error),
      durationMs: performance.now() - call.enqueuedAt,
      queueWaitMs: call.startedAt === undefined ? undefined : call.startedAt - call.enqueuedAt,
    });
  }

  // ─── recycling ─────────────────────────────────────────────────────────────

  /** The soft limit `worker` has reached; asked around every call, so nothing is built when no limit is set. */
  #retireReasonOf(worker: PoolWorker): RecycleReason | undefined {
    return this.#policy.recycles ? this.#policy.retireReason(this.#usage(worker)) : undefined;
  }

  #usage(worker: PoolWorker): WorkerUsage {
    return { rssBytes: worker.rssBytes, handles: worker.handles, calls: worker.calls, ageMs: this.#clock.now() - worker.startedAt };
  }

  /** Retires a worker gracefully (after its call, if busy); the spare takes its place. */
  #retire(worker: PoolWorker, reason: RecycleReason): void {
    if (worker.stopReason !== undefined) return;
    this.#recycles[reason]++;
    if (reason !== 'idle' && reason !== 'reload') this.#sparePlanner.retired(this.#clock.now(), this.#clock.now() - worker.startedAt, this.#liveCount());
    this.emit('workerRecycled', { pid: worker.pid, reason });
    this.#options.logger.debug({ pid: worker.pid, reason }, `process-sandbox: recycling worker ${worker.pid} (${reason})`);
    worker.stop(reason);
  }

  /** A spare becomes a regular worker (a ready one if there is one, else the oldest) and the spares are topped up. */
  #promoteSpare(): void {
    if (this.#spares.length === 0 || this.#stopping) return;
    const spare = this.#spares.find((w) => w.state === 'idle') ?? this.#spares[0]!;
    this.#removeSpare(spare);
    if (spare.state === 'idle') this.#onIdle(spare);
    this.#refillSoon();
  }

  #ensureSpare(): void {
    if (!this.#options.warmSpare) return;
    for (let w; this.#spares.length < this.#sparePlanner.wanted && (w = this.#startIfAllowed()); ) this.#spares.push(w);
  }

  #removeSpare(worker: PoolWorker): void {
    const i = this.#spares.indexOf(worker);
    if (i >= 0) this.#spares.splice(i, 1);
  }

  /** Emits warnings, and acts on limits outside calls: idle workers now, the hard limit always. */
  #checkLimits(worker: PoolWorker): void {
    if (!worker.live) return;
    const usage = this.#usage(worker);
    if (this.#policy.overHardLimit(usage)) return this.#killOverHardLimit(worker, usage.rssBytes ?? 0);
    let warned = this.#warned.get(worker);
    for (const warning of this.#policy.warnings(usage)) {
      if (!warned) this.#warned.set(worker, (warned = new Set()));
      if (warned.has(warning.limit)) continue;
      warned.add(warning.limit);
      this.emit('resourceWarning', { pid: worker.pid, ...warning });
    }
    if (worker.state !== 'idle' || this.#spares.includes(worker) || worker.lease) return;
    const reason = this.#policy.retireReason(usage);
    if (reason) this.#retire(worker, reason);
    else if (this.#options.idleTimeoutMs !== undefined && worker.msInState >= this.#options.idleTimeoutMs && this.#liveCount() > this.#options.minPoolSize) {
      this.#retire(worker, 'idle');
    }
  }

  #killOverHardLimit(worker: PoolWorker, rssBytes: number): void {
    if (!worker.live && worker.state !== 'draining') return;
    this.#recycles.hardMemory++;
    this.emit('workerRecycled', { pid: worker.pid, reason: 'hardMemory' });
    const detail = `resident memory ${Math.round(rssBytes / 1048576)} MiB reached hardMemoryLimitMB (${this.#options.hardMemoryLimitMB})`;
    worker.killDuringCall('hardMemory', new ResourceLimitError('hardMemory', worker.pid, worker.currentCall?.method, detail));
  }

  /** Workers running a call now (busy, or retiring with their last call): the memory watch's rounds. */
  *#running(): Iterable<PoolWorker> {
    for (const worker of this.#workers) if (worker.currentCall && (worker.state === 'busy' || worker.state === 'draining')) yield worker;
  }

  /** The host's own look at every worker: what the OS sees, even of a worker blocked in native code. */
  async #sample(): Promise<void> {
    const workers = [...this.#workers].filter((w) => w.live && w.pid > 0);
    await Promise.all(
      workers.map(async (worker) => {
        const sample = await sampleProcess(worker.pid, this.#options.healthIntervalMs);
        if (!sample || !worker.live) return;
        worker.recordHostSample(sample);
        this.#checkLimits(worker);
      }),
    );
  }

  /** Workers that count toward maxPoolSize: serving or starting, not leaving, not the spare. */
  #liveCount(): number {
    let live = 0;
    for (const w of this.#workers) if (w.live && !this.#spares.includes(w)) live++;
    return live;
  }

  #removeIdle(worker: PoolWorker): void {
    const i = this.#idle.indexOf(worker);
    if (i >= 0) this.#idle.splice(i, 1);
  }
}

/**
 * The `outcome` of a failed call: its error class's static code, looked up through the prototype
 * chain (an own `constructor` property cannot shadow it); a short `name` for an error that is not
 * the library's. Never throws, and its values are few (they label metrics).
 */
function outcomeOf(error: Error): string {
  const code = classCodeOf(error);
  if (code !== undefined) return code;
  try {
    const name: unknown = error.name;
    return typeof name === 'string' && name.length <= 64 ? name : 'Error';
  } catch {
    return 'Error';
  }
}

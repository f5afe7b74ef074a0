/**
 * The set of workers behind one proxy: starts them, keeps between minPoolSize and maxPoolSize of
 * them alive, hands idle ones to the dispatcher, replaces the ones that crash or time out, and
 * takes them all down on dispose.
 */
import { PoolDisposedError, ResourceLimitError, type HealthSnapshot, type WorkerStartError } from '@process-sandbox/abstractions';
import { Dispatcher, type WorkerSource } from './dispatcher.js';
import { guardOnExit, unguard } from './host-exit.js';
import type { ResolvedOptions } from './options.js';
import { PipeDirectory } from './pipe-endpoint.js';
import { sampleProcess, Sampler } from './health-sampler.js';
import { SafeEmitter, type PoolEvents } from './pool-events.js';
import { RECYCLE_REASONS, RecyclePolicy, type RecycleReason, type WorkerUsage } from './recycle-policy.js';
import { WorkerHandle, type WorkerObserver, type WorkerState } from './worker-handle.js';

export interface WorkerStats {
  id: number;
  pid: number;
  state: WorkerState;
  /** The warm spare: started and ready, held out of service until a worker leaves. */
  spare: boolean;
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
}

export interface DisposeOptions {
  /** Run the calls already queued before stopping (default false: they reject with PoolDisposedError). */
  drain?: boolean;
}

const LIVE_STATES: ReadonlySet<WorkerState> = new Set(['spawning', 'handshaking', 'idle', 'busy']);

/** After a replacement fails to start, wait this long before trying again to reach minPoolSize. */
const RESTART_BACKOFF_MS = 1_000;

export class ProcessPool extends SafeEmitter<PoolEvents> implements WorkerSource, WorkerObserver {
  readonly options: ResolvedOptions;
  readonly #dispatcher: Dispatcher;
  readonly #pipes: PipeDirectory;
  readonly #workers = new Set<WorkerHandle>();
  /** Idle workers, most recently used last: handing out the warmest keeps the others free to shrink. */
  readonly #idle: WorkerHandle[] = [];
  #methods: Set<string> | undefined;
  #nextWorkerId = 1;
  #crashes = 0;
  #timeouts = 0;
  #disposing: Promise<void> | undefined;
  #stopping = false;
  #backoffTimer: NodeJS.Timeout | undefined;
  readonly #policy: RecyclePolicy;
  readonly #recycles = Object.fromEntries(RECYCLE_REASONS.map((r) => [r, 0])) as Record<RecycleReason, number>;
  /** Started ahead of need, kept out of service until a worker leaves; then it takes that worker's place. */
  #spare: WorkerHandle | undefined;
  /** Limits each worker has been warned about, so that a resourceWarning is emitted once. */
  readonly #warned = new WeakMap<WorkerHandle, Set<string>>();
  #sampler: Sampler | undefined;

  constructor(options: ResolvedOptions) {
    super(options.logger);
    this.options = options;
    this.#pipes = new PipeDirectory();
    this.#dispatcher = new Dispatcher(options, this);
    this.#dispatcher.onQueueFull = (method) => this.emit('queueFull', { method, maxQueueSize: options.maxQueueSize });
    this.#dispatcher.onCallSettled = (call, error) => {
      if (this.listenerCount('callSettled') === 0) return;
      const now = performance.now();
      this.emit('callSettled', {
        method: call.method,
        // The class's code, not the instance's: a RemoteError carries the remote error's own code.
        outcome: error === undefined ? 'success' : String((error.constructor as { code?: unknown }).code ?? error.name),
        durationMs: now - call.enqueuedAt,
        queueWaitMs: call.startedAt === undefined ? undefined : call.startedAt - call.enqueuedAt,
      });
    };
    this.#policy = new RecyclePolicy(options);
    if (options.healthIntervalMs > 0) this.#sampler = new Sampler(options.healthIntervalMs, () => this.#sample());
    guardOnExit(this);
  }

  /** Starts minPoolSize workers and waits until they are ready; on failure disposes and throws. */
  async start(): Promise<void> {
    const first = Array.from({ length: this.options.minPoolSize }, () => this.#spawn());
    try {
      await Promise.all(first.map((w) => w.ready));
      this.#ensureSpare();
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

  invoke(method: string, args: unknown[]): Promise<unknown> {
    return this.#dispatcher.invoke(method, args);
  }

  stats(): PoolStats {
    const { totals } = this.#dispatcher;
    return {
      workers: [...this.#workers].map((w) => ({
        id: w.id,
        pid: w.pid,
        state: w.state,
        spare: w === this.#spare,
        calls: w.calls,
        rssBytes: w.rssBytes,
        heapUsedBytes: w.health?.heapUsed,
        handles: w.handles,
        cpuMs: w.cpuMs,
        startedAt: w.startedAt,
        lastHealthAt: w.lastHealthAt,
      })),
      totals: {
        ...totals,
        crashes: this.#crashes,
        timeouts: this.#timeouts,
        recycles: { ...this.#recycles },
        queued: this.#dispatcher.queued,
        inFlight: this.#dispatcher.inFlight,
      },
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
    this.#stopping = true;
    this.#sampler?.stop();
    clearTimeout(this.#backoffTimer);
    for (const worker of this.#workers) worker.stop('dispose', true);
    await Promise.all([...this.#workers].map((w) => w.exited));
    this.#pipes.remove();
    unguard(this);
    this.emit('disposed');
  }

  // ─── WorkerSource: what the dispatcher asks of us ──────────────────────────

  takeIdleWorker(): WorkerHandle | undefined {
    return this.#idle.pop();
  }

  demand(waiting: number): void {
    if (this.#stopping || this.#backoffTimer) return;
    const starting = [...this.#workers].filter((w) => w !== this.#spare && (w.state === 'spawning' || w.state === 'handshaking')).length;
    let live = this.#liveCount();
    for (let missing = waiting - starting; missing > 0 && live < this.options.maxPoolSize; missing--, live++) this.#spawn();
  }

  // ─── WorkerObserver: what workers tell us ──────────────────────────────────

  onStateChange(worker: WorkerHandle, from: WorkerState, to: WorkerState): void {
    const { logger } = this.options;
    logger.debug({ pid: worker.pid, from, to }, `process-sandbox: worker ${worker.pid} ${from} → ${to}`);
    if (to === 'idle') {
      if (from === 'handshaking') {
        this.#methods ??= new Set(worker.methods);
        this.emit('workerReady', { pid: worker.pid, methods: worker.methods });
      }
      if (worker === this.#spare) return; // held back until a worker leaves
      // Checked before the worker is offered a call: it never serves past a limit.
      const reason = this.#policy.retireReason(this.#usage(worker));
      if (reason) return this.#retire(worker, reason);
      if (!this.#dispatcher.offer(worker)) this.#idle.push(worker);
      return;
    }
    if (from === 'idle') this.#removeIdle(worker);
    // A worker left service (retired, timed out, crashed): the spare takes its place, once. Not when
    // the pool shrinks on purpose.
    if (LIVE_STATES.has(from) && !worker.live && worker !== this.#spare && worker.stopReason !== 'idle') this.#promoteSpare();
    if (to === 'exited' || to === 'crashed') this.#onWorkerGone(worker, from, to);
    else if (!worker.live) this.#refill(); // draining or stopping: make room for a successor
  }

  onHealth(worker: WorkerHandle, health: HealthSnapshot): void {
    this.emit('health', { pid: worker.pid, health });
    this.#checkLimits(worker);
  }

  onCallTimedOut(worker: WorkerHandle, call: { method: string; timeoutMs: number }): void {
    this.#timeouts++;
    this.emit('callTimedOut', { pid: worker.pid, method: call.method, timeoutMs: call.timeoutMs });
  }

  // ─── internals ─────────────────────────────────────────────────────────────

  #spawn(): WorkerHandle {
    const worker = new WorkerHandle(this.#nextWorkerId++, this.options, this.#pipes, this);
    this.#workers.add(worker);
    if (worker.pid) this.emit('workerStarted', { pid: worker.pid });
    return worker;
  }

  #onWorkerGone(worker: WorkerHandle, from: WorkerState, to: WorkerState): void {
    this.#workers.delete(worker);
    if (worker === this.#spare) this.#spare = undefined;
    const exit = { pid: worker.pid, exitCode: worker.exitCode, signal: worker.signal, reason: String(worker.stopReason ?? 'crash') };
    // A timeout kill is counted and reported as a timeout (callTimedOut), not a second time as a crash.
    if (to === 'crashed' && worker.startError === undefined && worker.stopReason !== 'timeout') {
      this.#crashes++;
      this.emit('workerCrashed', { ...exit, method: worker.currentCall?.method, detail: worker.endReason });
    }
    this.emit('workerExited', exit);
    if (worker.startError && !this.#stopping) this.#onStartFailed(worker.startError);
    else this.#refill();
  }

  #onStartFailed(error: WorkerStartError): void {
    this.options.logger.error({ error }, `process-sandbox: a worker failed to start: ${error.message}`);
    // With nobody left to serve them, queued calls would wait forever: fail them with the cause.
    if (this.#liveCount() === 0) this.#dispatcher.rejectQueued(() => error);
    // Never a tight respawn loop: wait before trying again.
    clearTimeout(this.#backoffTimer);
    this.#backoffTimer = setTimeout(() => {
      this.#backoffTimer = undefined;
      this.#refill();
    }, RESTART_BACKOFF_MS);
  }

  /** Back up to minPoolSize, and to as many workers as the waiting calls need. */
  #refill(): void {
    if (this.#stopping || this.#backoffTimer) return;
    while (this.#liveCount() < this.options.minPoolSize) this.#spawn();
    this.demand(this.#dispatcher.queued);
    this.#ensureSpare();
  }

  // ─── recycling ─────────────────────────────────────────────────────────────

  #usage(worker: WorkerHandle): WorkerUsage {
    return { rssBytes: worker.rssBytes, handles: worker.handles, calls: worker.calls, ageMs: Date.now() - worker.startedAt };
  }

  /** Retires a worker gracefully (after its call, if busy) and puts the spare in its place. */
  #retire(worker: WorkerHandle, reason: RecycleReason): void {
    if (worker.stopReason !== undefined) return;
    this.#recycles[reason]++;
    this.emit('workerRecycled', { pid: worker.pid, reason });
    this.options.logger.info({ pid: worker.pid, reason }, `process-sandbox: recycling worker ${worker.pid} (${reason})`);
    worker.stop(reason);
  }

  /** The spare (ready or still starting) becomes a regular worker; a new spare is started. */
  #promoteSpare(): void {
    const spare = this.#spare;
    if (!spare || this.#stopping) return;
    this.#spare = undefined;
    if (spare.state === 'idle' && !this.#dispatcher.offer(spare)) this.#idle.push(spare);
    this.#ensureSpare();
  }

  #ensureSpare(): void {
    if (!this.options.warmSpare || this.#spare || this.#stopping || this.#backoffTimer) return;
    this.#spare = this.#spawn();
  }

  /** Emits warnings, and acts on limits outside calls: idle workers now, the hard limit always. */
  #checkLimits(worker: WorkerHandle): void {
    if (!worker.live) return;
    const usage = this.#usage(worker);
    if (this.#policy.overHardLimit(usage)) {
      this.#recycles.hardMemory++;
      this.emit('workerRecycled', { pid: worker.pid, reason: 'hardMemory' });
      const detail = `resident memory ${Math.round((usage.rssBytes ?? 0) / 1048576)} MiB reached hardMemoryLimitMB (${this.options.hardMemoryLimitMB})`;
      worker.killDuringCall('hardMemory', new ResourceLimitError('hardMemory', worker.pid, worker.currentCall?.method, detail));
      return;
    }
    let warned = this.#warned.get(worker);
    for (const warning of this.#policy.warnings(usage)) {
      if (!warned) this.#warned.set(worker, (warned = new Set()));
      if (warned.has(warning.limit)) continue;
      warned.add(warning.limit);
      this.emit('resourceWarning', { pid: worker.pid, ...warning });
    }
    if (worker.state !== 'idle' || worker === this.#spare) return;
    const reason = this.#policy.retireReason(usage);
    if (reason) this.#retire(worker, reason);
    else if (this.options.idleTimeoutMs !== undefined && worker.msInState >= this.options.idleTimeoutMs && this.#liveCount() > this.options.minPoolSize) {
      this.#retire(worker, 'idle');
    }
  }

  /** The host's own look at every worker: what the OS sees, even of a worker blocked in native code. */
  async #sample(): Promise<void> {
    const workers = [...this.#workers].filter((w) => w.live && w.pid > 0);
    await Promise.all(
      workers.map(async (worker) => {
        const sample = await sampleProcess(worker.pid, this.options.healthIntervalMs);
        if (!sample || !worker.live) return;
        worker.recordHostSample(sample);
        this.#checkLimits(worker);
      }),
    );
  }

  /** Workers that count toward maxPoolSize: serving or starting, not leaving, not the spare. */
  #liveCount(): number {
    let live = 0;
    for (const w of this.#workers) if (w.live && w !== this.#spare) live++;
    return live;
  }

  #removeIdle(worker: WorkerHandle): void {
    const i = this.#idle.indexOf(worker);
    if (i >= 0) this.#idle.splice(i, 1);
  }
}

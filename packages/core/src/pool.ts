/**
 * The set of workers behind one proxy: starts them, keeps between minPoolSize and maxPoolSize of
 * them alive, hands idle ones to the dispatcher, replaces the ones that crash or time out, and
 * takes them all down on dispose.
 */
import { PoolDisposedError, type HealthSnapshot, type WorkerStartError } from '@process-sandbox/abstractions';
import { Dispatcher, type WorkerSource } from './dispatcher.js';
import { guardOnExit, unguard } from './host-exit.js';
import type { ResolvedOptions } from './options.js';
import { PipeDirectory } from './pipe-endpoint.js';
import { SafeEmitter, type PoolEvents } from './pool-events.js';
import { WorkerHandle, type WorkerObserver, type WorkerState } from './worker-handle.js';

export interface WorkerStats {
  id: number;
  pid: number;
  state: WorkerState;
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
    queued: number;
    inFlight: number;
  };
}

export interface DisposeOptions {
  /** Run the calls already queued before stopping (default false: they reject with PoolDisposedError). */
  drain?: boolean;
}

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

  constructor(options: ResolvedOptions) {
    super(options.logger);
    this.options = options;
    this.#pipes = new PipeDirectory();
    this.#dispatcher = new Dispatcher(options, this);
    this.#dispatcher.onQueueFull = (method) => this.emit('queueFull', { method, maxQueueSize: options.maxQueueSize });
    guardOnExit(this);
  }

  /** Starts minPoolSize workers and waits until they are ready; on failure disposes and throws. */
  async start(): Promise<void> {
    const first = Array.from({ length: this.options.minPoolSize }, () => this.#spawn());
    try {
      await Promise.all(first.map((w) => w.ready));
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
        calls: w.calls,
        rssBytes: w.health?.rss,
        heapUsedBytes: w.health?.heapUsed,
        handles: w.health?.handles,
        cpuMs: w.health ? w.health.cpuUserMs + w.health.cpuSystemMs : undefined,
        startedAt: w.startedAt,
        lastHealthAt: w.lastHealthAt,
      })),
      totals: {
        ...totals,
        crashes: this.#crashes,
        timeouts: this.#timeouts,
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
    const starting = [...this.#workers].filter((w) => w.state === 'spawning' || w.state === 'handshaking').length;
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
      if (!this.#dispatcher.offer(worker)) this.#idle.push(worker);
      return;
    }
    if (from === 'idle') this.#removeIdle(worker);
    if (to === 'exited' || to === 'crashed') this.#onWorkerGone(worker, from, to);
    else if (!worker.live) this.#refill(); // draining or stopping: make room for a successor
  }

  onHealth(worker: WorkerHandle, health: HealthSnapshot): void {
    this.emit('health', { pid: worker.pid, health });
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
  }

  #liveCount(): number {
    let live = 0;
    for (const w of this.#workers) if (w.live) live++;
    return live;
  }

  #removeIdle(worker: WorkerHandle): void {
    const i = this.#idle.indexOf(worker);
    if (i >= 0) this.#idle.splice(i, 1);
  }
}

/**
 * The pool's recycling: decides when a worker leaves service over a limit (calls, memory, handles,
 * lifetime, idle time, reload), retires it gracefully, kills it over the hard memory limit, warns as
 * limits come near, and keeps the host's own look at every worker (the sampler, the busy memory
 * watch). The rules themselves are RecyclePolicy's; this applies them to the pool's workers.
 */
import { ResourceLimitError } from '@process-sandbox/abstractions';
import { sampleProcess, Sampler } from './health-sampler.js';
import { BusyMemoryWatch } from './memory-watch.js';
import type { ResolvedOptions } from './options.js';
import type { PoolEvents, SafeEmitter } from './pool-events.js';
import type { Clock, PoolWorker } from './pool-worker.js';
import { RECYCLE_REASONS, RecyclePolicy, type RecycleReason, type WorkerUsage } from './recycle-policy.js';
import type { WarmSpares } from './warm-spares.js';

/** What recycling needs from its pool. */
export interface RecyclingHost {
  readonly options: ResolvedOptions;
  /** Every worker the pool has, live or not. */
  readonly workers: Iterable<PoolWorker>;
  /** The code generation new workers run (reload bumps it). */
  readonly generation: number;
  /** Workers that count toward maxPoolSize. */
  liveCount(): number;
}

export class Recycling {
  readonly #host: RecyclingHost;
  readonly #events: SafeEmitter<PoolEvents>;
  readonly #spares: WarmSpares;
  readonly #clock: Clock;
  readonly #policy: RecyclePolicy;
  /** Workers retired so far, by reason. */
  readonly counts = Object.fromEntries(RECYCLE_REASONS.map((r) => [r, 0])) as Record<RecycleReason, number>;
  /** Limits each worker has been warned about, so that a resourceWarning is emitted once. */
  readonly #warned = new WeakMap<PoolWorker, Set<string>>();
  readonly #sampler: Sampler | undefined;
  readonly #memoryWatch: BusyMemoryWatch<PoolWorker> | undefined;

  constructor(host: RecyclingHost, events: SafeEmitter<PoolEvents>, spares: WarmSpares, clock: Clock) {
    this.#host = host;
    this.#events = events;
    this.#spares = spares;
    this.#clock = clock;
    const { options } = host;
    this.#policy = new RecyclePolicy(options);
    if (options.healthIntervalMs > 0) this.#sampler = new Sampler(options.healthIntervalMs, () => this.#sample());
    if (options.hardMemoryLimitMB !== undefined) {
      this.#memoryWatch = BusyMemoryWatch.create(options.hardMemoryLimitMB * 1024 * 1024, () => this.#running(), (worker, rss) => this.#killOverHardLimit(worker, rss));
    }
  }

  stop(): void {
    this.#sampler?.stop();
    this.#memoryWatch?.stop();
  }

  /** A call started on some worker: the memory watch, if any, looks while calls run. */
  callStarted(): void {
    this.#memoryWatch?.arm();
  }

  /** A worker stopped running a call (it left busy or draining): the watch rests if no other runs one. */
  callsEnded(): void {
    this.#memoryWatch?.disarmIfIdle();
  }

  /** Why `worker`, between two calls, must leave before it takes another: old code or a soft limit. */
  reasonToRetire(worker: PoolWorker): RecycleReason | undefined {
    return worker.generation !== this.#host.generation ? 'reload' : this.#softLimitOf(worker);
  }

  /**
   * Whether `worker` may be sent a call ahead: it is busy with a user's call, will not retire after
   * it, and will still be under its call limit after the one sent ahead.
   */
  mayGoAhead(worker: PoolWorker): boolean {
    if (!worker.canTakeAhead || worker.stopReason !== undefined || worker.generation !== this.#host.generation) return false;
    const threshold = this.#host.options.processRecycleThreshold;
    if (threshold !== undefined && worker.calls + 2 > threshold) return false;
    return this.#softLimitOf(worker) === undefined;
  }

  /** Retires a worker gracefully (after its call, if busy); a spare takes its place. */
  retire(worker: PoolWorker, reason: RecycleReason): void {
    if (worker.stopReason !== undefined) return;
    this.counts[reason]++;
    const now = this.#clock.now();
    if (reason !== 'idle' && reason !== 'reload') this.#spares.retired(now, now - worker.startedAt, this.#host.liveCount());
    this.#events.emit('workerRecycled', { pid: worker.pid, reason });
    this.#host.options.logger.debug({ pid: worker.pid, reason }, `process-sandbox: recycling worker ${worker.pid} (${reason})`);
    worker.stop(reason);
  }

  /** Emits warnings, and acts on limits outside calls: idle workers now, the hard limit always. */
  checkLimits(worker: PoolWorker): void {
    if (!worker.live) return;
    const usage = this.#usage(worker);
    if (this.#policy.overHardLimit(usage)) return this.#killOverHardLimit(worker, usage.rssBytes ?? 0);
    let warned = this.#warned.get(worker);
    for (const warning of this.#policy.warnings(usage)) {
      if (!warned) this.#warned.set(worker, (warned = new Set()));
      if (warned.has(warning.limit)) continue;
      warned.add(warning.limit);
      this.#events.emit('resourceWarning', { pid: worker.pid, ...warning });
    }
    if (worker.state !== 'idle' || this.#spares.has(worker) || worker.lease) return;
    const { idleTimeoutMs, minPoolSize } = this.#host.options;
    const reason = this.#policy.retireReason(usage);
    if (reason) this.retire(worker, reason);
    else if (idleTimeoutMs !== undefined && worker.msInState >= idleTimeoutMs && this.#host.liveCount() > minPoolSize) this.retire(worker, 'idle');
  }

  /** The soft limit `worker` has reached; asked around every call, so nothing is built when no limit is set. */
  #softLimitOf(worker: PoolWorker): RecycleReason | undefined {
    return this.#policy.recycles ? this.#policy.retireReason(this.#usage(worker)) : undefined;
  }

  #usage(worker: PoolWorker): WorkerUsage {
    return { rssBytes: worker.rssBytes, handles: worker.handles, calls: worker.calls, ageMs: this.#clock.now() - worker.startedAt };
  }

  #killOverHardLimit(worker: PoolWorker, rssBytes: number): void {
    if (!worker.live && worker.state !== 'draining') return;
    this.counts.hardMemory++;
    this.#events.emit('workerRecycled', { pid: worker.pid, reason: 'hardMemory' });
    const detail = `resident memory ${Math.round(rssBytes / 1048576)} MiB reached hardMemoryLimitMB (${this.#host.options.hardMemoryLimitMB})`;
    worker.killDuringCall('hardMemory', new ResourceLimitError('hardMemory', worker.pid, worker.currentCall?.method, detail));
  }

  /** Workers running a call now (busy, or retiring with their last call): the memory watch's rounds. */
  *#running(): Iterable<PoolWorker> {
    for (const worker of this.#host.workers) if (worker.currentCall && (worker.state === 'busy' || worker.state === 'draining')) yield worker;
  }

  /** The host's own look at every worker: what the OS sees, even of a worker blocked in native code. */
  async #sample(): Promise<void> {
    const workers = [...this.#host.workers].filter((w) => w.live && w.pid > 0);
    await Promise.all(
      workers.map(async (worker) => {
        const sample = await sampleProcess(worker.runtimePid, this.#host.options.healthIntervalMs);
        if (!sample || !worker.live) return;
        worker.recordHostSample(sample);
        this.checkLimits(worker);
      }),
    );
  }
}

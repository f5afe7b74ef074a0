// Fake workers and a fake clock, for the unit tests of the pool's logic (test/unit-*.test.mjs). A
// FakeWorker plays WorkerHandle's part of the seam (packages/core/src/pool-worker.ts) with the same
// states and the same reports to the pool, but no process: the test says when it becomes ready,
// replies, crashes or exits. The integration tests (pool, pipelining, recycling ...) run the real thing.
import { WorkerCrashedError, WorkerStartError, PoolDisposedError } from '@process-sandbox/core';

const dist = (file) => new URL(`../../packages/core/dist/${file}`, import.meta.url).href;
export const { ProcessPool } = await import(dist('pool.js'));
export const { resolveOptions } = await import(dist('options.js'));

const CALCULATOR = new URL('../../samples/calculator/calculator.mjs', import.meta.url).pathname;

/** A clock that moves only when told: timers fire in order of their due time, within advance(). */
export class FakeClock {
  t = 1_700_000_000_000;
  #timers = new Set();
  now = () => this.t;
  precise = () => this.t;
  setTimeout = (callback, ms) => {
    const timer = { at: this.t + Math.max(0, ms), callback, refresh: () => ((timer.at = this.t + ms), timer), unref: () => timer };
    this.#timers.add(timer);
    return timer;
  };
  clearTimeout = (timer) => {
    this.#timers.delete(timer);
  };
  get pending() {
    return this.#timers.size;
  }
  /** Moves time on by `ms`, firing every timer that falls due (and the microtasks each one queues). */
  async advance(ms) {
    const end = this.t + ms;
    for (;;) {
      const due = [...this.#timers].filter((t) => t.at <= end).sort((a, b) => a.at - b.at)[0];
      if (!due) break;
      this.#timers.delete(due);
      this.t = Math.max(this.t, due.at);
      due.callback();
      await flush();
    }
    this.t = end;
    await flush();
  }
}

/** Lets queued microtasks and promise reactions run (and a setImmediate turn). */
export async function flush() {
  for (let i = 0; i < 3; i++) await new Promise((resolve) => setImmediate(resolve));
}

const LIVE = new Set(['spawning', 'handshaking', 'idle', 'busy']);
let nextPid = 9_000_000; // above any real pid_max: a stray kill of one finds nothing

export class FakeWorker {
  lease = undefined;
  calls = 0;
  currentCall = undefined;
  /** Calls sent ahead, first to start first. */
  aheadCalls = [];
  methods = [];
  rssBytes = undefined;
  handles = undefined;
  cpuMs = undefined;
  health = undefined;
  lastHealthAt = undefined;
  stopReason = undefined;
  exitCode = null;
  signal = null;
  interruptedMethod = undefined;
  startError = undefined;
  endReason = undefined;
  /** Calls written to it, in order (sent ahead or not), and the Cancel requests. */
  sent = [];
  cancels = [];
  #state = 'spawning';
  #since;
  #wasReady = false;

  constructor(id, options, observer, generation, clock) {
    this.id = id;
    this.pid = nextPid++;
    this.runtimePid = this.pid;
    this.options = options;
    this.observer = observer;
    this.generation = generation;
    this.clock = clock;
    this.startedAt = clock.now();
    this.#since = clock.now();
    this.ready = new Promise((resolve, reject) => ((this.readyResolve = resolve), (this.readyReject = reject)));
    this.ready.catch(() => {});
    this.exited = new Promise((resolve) => (this.exitResolve = resolve));
  }

  get state() {
    return this.#state;
  }
  get live() {
    return LIVE.has(this.#state);
  }
  get terminal() {
    return this.#state === 'exited' || this.#state === 'crashed';
  }
  get msInState() {
    return this.clock.now() - this.#since;
  }
  /** The first call sent ahead (the next to start), if any. */
  get aheadCall() {
    return this.aheadCalls[0];
  }
  get canTakeAhead() {
    return this.#state === 'busy' && this.aheadCalls.length < this.options.pipelineDepth && !this.lease && this.currentCall !== undefined && !this.currentCall.control;
  }

  // ─── the test's controls ─────────────────────────────────────────────────

  /** Hello and Ready: the worker becomes idle. */
  becomeReady(methods = ['add', 'slow', 'echo']) {
    this.#transition('handshaking');
    this.methods = methods;
    this.#wasReady = true;
    this.#transition('idle');
    this.readyResolve();
    if (this.stopReason !== undefined) this.#shutdown();
  }

  /** The running call returns `value` (or throws `error` remotely). */
  reply(value, error) {
    const call = this.currentCall;
    if (!call) throw new Error(`fake worker ${this.id}: no call to reply to`);
    const ahead = this.aheadCalls.shift();
    this.currentCall = undefined;
    if (!call.control) this.calls++;
    if (error) call.reject(error);
    else call.resolve(value);
    if (ahead) {
      this.currentCall = ahead;
      this.#started(ahead);
    }
    if (this.terminal || this.#state === 'stopping') return;
    if (ahead) {
      // Aborted too late: it had started; an abort of a running call kills (as WorkerHandle does).
      if (ahead.cancelRequested && ahead.settled && ahead.options?.onAbortRunning !== 'detach') return this.killDuringCall('abort', new Error('aborted'));
      return this.observer.onCallDone(this);
    }
    if (this.#state === 'draining') this.#shutdown();
    else this.#transition('idle');
  }

  /**
   * The worker drops a call sent ahead, as a Cancel asked (the first one a Cancel was sent for, or
   * `call`), and answers Cancelled: a recalled call (not settled) goes back to the pool.
   */
  dropAhead(call = this.aheadCalls.find((c) => c.cancelRequested)) {
    const i = this.aheadCalls.indexOf(call);
    if (i < 0 || !call.cancelRequested) throw new Error(`fake worker ${this.id}: nothing cancelled ahead`);
    this.aheadCalls.splice(i, 1);
    if (!call.settled) this.observer.onUnstarted(this, call);
  }

  /** Drops every call a Cancel was sent for, as the worker would before starting them. */
  dropCancelled() {
    for (const call of this.aheadCalls.filter((c) => c.cancelRequested)) this.dropAhead(call);
  }

  /** Reports usage, as a Health message would. */
  report(usage) {
    Object.assign(this, usage);
    this.observer.onHealth(this, { rss: usage.rssBytes ?? 0, heapUsed: 0, handles: usage.handles ?? 0 });
  }

  /** The process dies on its own (or, after a kill or Shutdown, exits). */
  exit(code = 1, signal = null) {
    if (this.terminal) return;
    this.exitCode = code;
    this.signal = signal;
    const call = this.currentCall;
    this.currentCall = undefined;
    this.interruptedMethod = call?.control ? undefined : call?.method;
    for (const unstarted of this.aheadCalls.splice(0)) this.observer.onUnstarted(this, unstarted);
    if (call && this.stopReason === 'dispose') call.reject(new PoolDisposedError(call.method, 'still running'));
    else if (call) this.observer.onCallLost(this, call, new WorkerCrashedError(this.pid, code, signal, call.method, this.endReason));
    if (!this.#wasReady) {
      this.startError = new WorkerStartError(this.endReason ?? `exit code ${code} before it was ready`, '', this.pid);
      this.readyReject(this.startError);
    }
    const asked = this.stopReason !== undefined && this.stopReason !== 'protocol' && this.stopReason !== 'timeout' && this.asked;
    this.#transition(asked ? 'exited' : 'crashed');
    this.exitResolve();
  }

  // ─── the seam, as WorkerHandle implements it ───────────────────────────

  run(call) {
    if (this.#state === 'idle') {
      this.currentCall = call;
      this.sent.push(call);
      this.#transition('busy');
      this.#started(call);
    } else if (this.canTakeAhead) {
      this.aheadCalls.push(call);
      this.sent.push(call);
    } else {
      throw new Error(`internal: run() on a ${this.#state} worker`);
    }
  }

  cancelAhead(call) {
    if (!this.aheadCalls.includes(call) || call.cancelRequested) return;
    call.cancelRequested = true;
    this.cancels.push(call);
  }

  stop(reason) {
    if (this.stopReason !== undefined || this.terminal) return;
    this.stopReason = reason;
    if (this.#state === 'spawning' || this.#state === 'handshaking') this.#kill();
    else if (this.#state === 'busy') {
      this.#transition('draining');
      if (reason !== 'dispose') for (const call of this.aheadCalls) this.cancelAhead(call);
    }
    else if (this.#state === 'idle') this.#shutdown();
  }

  killDuringCall(reason, error) {
    if (this.terminal) return;
    const call = this.currentCall;
    this.currentCall = undefined;
    this.stopReason ??= reason;
    call?.reject(error);
    this.#kill();
  }

  recordHostSample(sample) {
    Object.assign(this, sample);
  }

  #started(call) {
    call.startedAt = this.clock.precise();
    this.observer.onCallStarted(this, call);
  }

  #shutdown() {
    this.asked = true;
    this.#transition('stopping');
    queueMicrotask(() => this.exit(0)); // a well-behaved worker exits on Shutdown
  }

  #kill() {
    this.asked = true;
    if (this.#state !== 'stopping') this.#transition('stopping');
    queueMicrotask(() => this.exit(null, 'SIGKILL'));
  }

  #transition(to) {
    const from = this.#state;
    if (from === to) return;
    this.#state = to;
    this.#since = this.clock.now();
    this.observer.onStateChange(this, from, to);
  }
}

/**
 * A pool over fake workers and a fake clock. `workers` lists every worker it made, in order; with
 * `autoReady` (default) each becomes ready in a microtask after it is made.
 */
export function fakePool(options = {}, { autoReady = true } = {}) {
  const clock = new FakeClock();
  const workers = [];
  const resolved = resolveOptions({ workerModule: CALCULATOR, healthIntervalMs: 0, minPoolSize: 1, maxPoolSize: 1, ...options });
  const pool = new ProcessPool(resolved, {
    clock,
    createWorker: (id, opts, observer, generation) => {
      const worker = new FakeWorker(id, opts, observer, generation, clock);
      workers.push(worker);
      if (autoReady) queueMicrotask(() => worker.state === 'spawning' && worker.becomeReady());
      return worker;
    },
  });
  /** Live workers that are not spares, in order of creation. */
  const serving = () => workers.filter((w) => w.live && !pool.stats().workers.find((s) => s.id === w.id)?.spare);
  return { pool, clock, workers, serving };
}

/** Records how a promise settled, without awaiting it. */
export function track(promise) {
  const t = { settled: false, value: undefined, error: undefined };
  promise.then(
    (value) => Object.assign(t, { settled: true, value }),
    (error) => Object.assign(t, { settled: true, error }),
  );
  return t;
}

/** A fake pool, started: its first workers are ready (with autoReady) once this resolves. */
export async function startedPool(options, control) {
  const f = fakePool(options, control);
  await f.pool.start();
  return f;
}

/** Disposes a fake pool, answering whatever its workers still run so that the disposal can finish. */
export async function stopPool({ pool, workers }) {
  const done = pool.dispose();
  await flush();
  for (const w of workers) while (w.currentCall) w.reply(null);
  await done;
}

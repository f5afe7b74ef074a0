/**
 * The life of one worker process, as one state machine:
 *
 *   spawning ─→ handshaking ─→ idle ⇄ busy
 *      │             │          │      │
 *      │             │          │      └─→ draining ─→ stopping ─→ exited
 *      │             │          └──────────────────────→ stopping ─→ exited
 *      └─────────────┴──────────┴──────┴─────┴────────────┴─→ crashed
 *
 * spawning     the process is started; we wait for its Hello on the channel
 * handshaking  Init sent; we wait for Ready (or a start failure), then for the reply to the warm-up
 *              call (one no-op round trip, so that the first real call finds the call path warm)
 * idle / busy  serving; `busy` runs one call, and may hold up to pipelineDepth more sent ahead (not started)
 * draining     retired while busy: the current call finishes, no new one is taken
 * stopping     Shutdown sent (or a kill under way); waiting for the process to exit
 * exited       the process ended after we asked it to
 * crashed      the process ended, or broke the protocol, without being asked
 *
 * Every change of state goes through `#transition`, which clears the timers of the state left and
 * tells the observer (the pool). Every path that ends the process reaches `#onExit`, which hands the
 * call in flight, if any, to the observer exactly once (the dispatcher rejects or retries it), and
 * the calls sent ahead and not started back to it (to run elsewhere). How the worker ends is one record,
 * WorkerEnd (worker-end.ts); the process itself is WorkerProcess's (worker-process.ts); which call
 * runs and which is sent ahead, and the running call's timeout, are WorkerCalls' (worker-calls.ts);
 * the start (the `ready` promise, its timeout, the methods offered) is WorkerStart's (worker-start.ts).
 */
import {
  CallTimeoutError,
  MessageKind,
  PoolDisposedError,
  ProtocolError,
  type HealthSnapshot,
  type WorkerStartError,
  type Message,
} from '@process-sandbox/abstractions';
import type { Call } from './call.js';
import type { HostSample } from './health-sampler.js';
import { WorkerUsage } from './worker-usage.js';
import type { Lease } from './lease.js';
import { isLive, type PoolWorker, type StopReason, type WorkerObserver, type WorkerState } from './pool-worker.js';
import type { ResolvedOptions } from './options.js';
import { clip, endedAsAsked, lostCallError, newWorkerEnd, startErrorOf, type WorkerEnd } from './worker-end.js';
import { EOF_EXIT_GRACE_MS, WorkerProcess } from './worker-process.js';
import { initMessage } from './worker-command.js';
import { WorkerCalls } from './worker-calls.js';
import { WorkerStart } from './worker-start.js';
import { admitWorkerMessage, failureError, type GateHandlers } from './worker-gate.js';
import { CallTraffic, type Problem } from './call-traffic.js';
import { EventBudget } from './event-budget.js';

export type { WorkerState, StopReason, WorkerObserver } from './pool-worker.js';

/** A worker process as the pool sees it; its members are documented on PoolWorker (pool-worker.ts). */
export class WorkerHandle implements PoolWorker {
  readonly id: number;
  lease: Lease | undefined;
  readonly generation: number;
  readonly startedAt = Date.now();
  #state: WorkerState = 'spawning';
  readonly #process: WorkerProcess;
  /** The call running and the calls sent ahead. */
  readonly #calls = new WorkerCalls((call) => this.#onCallTimeout(call));
  readonly #start: WorkerStart;
  readonly #usage = new WorkerUsage();
  #stateSince = performance.now();
  /** How this worker ends, gathered as it goes (see WorkerEnd): its one record. */
  readonly #end: WorkerEnd = newWorkerEnd();
  #graceTimer: NodeJS.Timeout | undefined;
  #exitResolve!: () => void;
  /** A stream's items and callbacks of the running call (call-traffic.ts). */
  readonly #traffic: CallTraffic;
  readonly #events = new EventBudget();
  /** What each admitted message does to this worker (see worker-gate.ts). */
  readonly #gate: GateHandlers = {
    ready: (methods, health) => this.#onReady(methods, health),
    reply: (id, health, cancelled, settle) => this.#settle(id, health, cancelled, settle),
    startFailed: (error) => this.#onEndingFailure(error, error.message),
    fatal: (error) => this.#onEndingFailure(error, `fatal error: ${error.name}: ${error.message}`),
    health: (health) => this.#recordHealth(health),
    streamOpen: (id) => this.#problem(this.#traffic.streamOpen(id)),
    streamItem: (id, item) => this.#problem(this.#traffic.streamItem(id, item)),
    callback: (id, callback, slot, args) => this.#problem(this.#traffic.callback(id, callback, slot, args)),
    event: (name, payload) => this.#onEvent(name, payload),
    protocolError: (problem) => this.#protocolError(problem),
    failureError: (call, error, reason) => failureError(call, error, reason, this.#start.methods, this.pid),
    wasm: () => this.options.wasm,
  };
  readonly ready: Promise<void>;
  readonly exited: Promise<void>;

  constructor(
    id: number,
    readonly options: ResolvedOptions,
    readonly observer: WorkerObserver,
    generation = 0,
  ) {
    this.id = id;
    this.generation = generation;
    this.exited = new Promise((resolve) => (this.#exitResolve = resolve));
    this.#traffic = new CallTraffic(
      {
        running: () => (this.terminal ? undefined : this.#calls.running),
        send: (frame) => this.#process.sendFrame(frame),
        waitOnWorker: (waiting) => this.#calls.waitOnWorker(waiting),
      },
      options.maxMessageBytes,
    );
    this.#start = new WorkerStart(options.processStartTimeoutMs, () => {
      this.#end.detail = `it did not become ready within processStartTimeoutMs (${options.processStartTimeoutMs} ms)`;
      this.#kill('start timeout');
    });
    this.ready = this.#start.ready;
    this.#process = new WorkerProcess(options, {
      wantsChannel: () => this.#state === 'spawning',
      onConnected: () => this.#onConnected(),
      onMessage: (message) => this.#receive(message),
      onProtocolError: (error) => this.#protocolError(error),
      onEof: () => this.#onEof(),
      onChannelFailed: (error) => {
        this.#end.detail ??= `its channel failed before the handshake: ${error.message}`;
        if (error instanceof ProtocolError) this.#end.protocol ??= error;
        this.#kill('channel failed');
      },
      onSpawnFailed: (detail, gone) => {
        this.#end.detail ??= detail;
        if (gone) this.#onExit(null, null);
      },
      onExit: (code, signal) => this.#onExit(code, signal),
    });
  }

  get state(): WorkerState {
    return this.#state;
  }
  get pid(): number {
    return this.#process.pid;
  }
  /** The host pid of the process that runs node (see WorkerProcess.runtimePid): what is sampled. */
  get runtimePid(): number {
    return this.#process.runtimePid;
  }
  get methods(): readonly string[] {
    return this.#start.methods;
  }
  get health(): HealthSnapshot | undefined {
    return this.#usage.health;
  }
  get lastHealthAt(): number | undefined {
    return this.#usage.healthAt;
  }
  get msInState(): number {
    return performance.now() - this.#stateSince;
  }
  /** Resident memory, handles and CPU time from whichever source spoke last: the worker or the host's sampler. */
  get rssBytes(): number | undefined {
    return this.#usage.rssBytes;
  }
  get handles(): number | undefined {
    return this.#usage.handles;
  }
  get cpuMs(): number | undefined {
    return this.#usage.cpuMs;
  }

  #problem(problem: Problem): void {
    if (problem !== undefined) this.#protocolError(problem);
  }

  #onEvent(name: string, payload: unknown): void {
    if (this.#events.take()) return this.observer.onWorkerEvent(this, name, payload);
    const dropped = this.#events.dueReport();
    if (dropped !== undefined) this.options.logger.warn({ pid: this.pid, dropped }, `process-sandbox: worker ${this.pid} emits events faster than the host takes them; ${dropped} dropped so far`);
  }

  recordHostSample(sample: HostSample): void {
    if (!this.terminal) this.#usage.recordSample(sample);
  }

  get calls(): number {
    return this.#calls.finished;
  }
  get stopReason(): StopReason | undefined {
    return this.#end.requested;
  }
  get exitCode(): number | null {
    return this.#end.code;
  }
  get signal(): NodeJS.Signals | null {
    return this.#end.signal;
  }
  get interruptedMethod(): string | undefined {
    return this.#end.interrupted;
  }
  get currentCall(): Call | undefined {
    return this.#calls.running;
  }
  get aheadCalls(): readonly Call[] {
    return this.#calls.ahead;
  }
  get canTakeAhead(): boolean {
    return this.#state === 'busy' && this.lease === undefined && this.#calls.roomAhead(this.options.pipelineDepth);
  }
  get live(): boolean {
    return isLive(this.#state);
  }
  get terminal(): boolean {
    return this.#state === 'exited' || this.#state === 'crashed';
  }

  /**
   * Sends `call` to this worker: to run now if it is idle, or ahead of need if it is busy (see
   * canTakeAhead), so that it never waits for us between calls. A call's timeout starts when it
   * starts running, not when it is sent.
   */
  run(call: Call): void {
    if (this.#state === 'idle') {
      this.#calls.start(call);
      this.#transition('busy');
      this.#process.sendFrame(call.frame);
      this.observer.onCallStarted(this, call);
    } else if (this.canTakeAhead) {
      this.#calls.sendAhead(call);
      this.#process.sendFrame(call.frame);
    } else {
      throw new Error(`internal: run() on a ${this.#state} worker`);
    }
  }

  /** `call`, sent ahead, is aborted or recalled: ask the worker to drop it if it has not begun. */
  cancelAhead(call: Call): void {
    if (this.#calls.markCancelAhead(call)) this.#process.send([MessageKind.Cancel, call.id]);
  }

  /**
   * Takes the worker out of service. An idle worker is told to shut down; a busy one first finishes
   * its call (draining). Either way it is killed if it has not exited `shutdownGraceMs` after
   * `stop` (when `graceFromNow`) or after its call ends.
   */
  stop(reason: StopReason, graceFromNow = false): void {
    if (this.#end.requested !== undefined || this.terminal) return;
    this.#end.requested = reason;
    // An open stream would hold its worker as long as its consumer pleases: it ends now, and the
    // worker, told to cancel, returns its iterator and replies within the grace period.
    const streaming = this.#calls.running;
    if (reason === 'dispose' && streaming?.stream) {
      streaming.stream.abort(new PoolDisposedError(streaming.method, 'its stream was open'));
      streaming.reject(new PoolDisposedError(streaming.method, 'its stream was open'));
    }
    switch (this.#state) {
      case 'spawning':
      case 'handshaking':
        this.#kill(`stopped (${reason}) before it was ready`);
        return;
      case 'busy':
        this.#transition('draining');
        // Retired over a limit: the calls sent ahead are recalled, to run elsewhere, so that it
        // serves none past the limit that has not started yet. On dispose they are its to finish.
        if (reason !== 'dispose') for (const call of this.#calls.ahead) this.cancelAhead(call);
        if (graceFromNow) this.#startGrace();
        return;
      case 'idle':
        this.#shutdown();
        return;
      default:
        return;
    }
  }

  // ─── transitions ────────────────────────────────────────────────────────────

  #transition(to: WorkerState): void {
    const from = this.#state;
    if (from === to) return;
    this.#state = to;
    this.#stateSince = performance.now();
    if (to !== 'spawning' && to !== 'handshaking') this.#start.stopTimer();
    if (to === 'exited' || to === 'crashed' || to === 'stopping') this.#calls.stopTimer();
    if (to === 'exited' || to === 'crashed') clearTimeout(this.#graceTimer); // nothing sets it once terminal
    // With the `unref` option: an idle worker (process, output pipes, socket) does not keep the
    // host alive; a starting, busy or stopping one does, so an awaited call or start is never cut short.
    if (this.options.unref) this.#process.holdOpen(to !== 'idle');
    this.observer.onStateChange(this, from, to);
  }

  /**
   * EOF: the worker is exiting (shutdown, process.exit, fatal error) or broken. Give it a moment to
   * exit by itself, so that the exit code tells the story; then make sure it ends.
   */
  #onEof(): void {
    if (this.terminal) return;
    if (this.#state !== 'stopping') this.#transition('stopping');
    clearTimeout(this.#graceTimer);
    this.#graceTimer = setTimeout(() => {
      this.#end.detail ??= 'it closed the pipe but did not exit';
      this.#kill('pipe closed', false);
    }, Math.min(this.options.shutdownGraceMs, EOF_EXIT_GRACE_MS));
  }

  #onConnected(): void {
    this.#transition('handshaking');
    // workerOptions were checked when the options were resolved; a failure here is still contained.
    try {
      this.#process.send(initMessage(this.options));
    } catch (error) {
      this.#end.detail = `its Init message could not be encoded: ${(error as Error).message}`;
      this.#kill('init failed');
    }
  }

  /** After a protocol error nothing more from this worker is believed, not even a reply that looks right. */
  #receive(raw: Message): void {
    if (this.terminal || this.#end.protocol !== undefined) return;
    admitWorkerMessage(raw, this.#state === 'handshaking' && !this.#start.warmingUp, this.#gate);
  }

  #onReady(listed: string[], health: HealthSnapshot): void {
    this.#start.offered(listed, this.options.logger, this.pid);
    this.#recordHealth(health);
    if (this.#state !== 'handshaking') return; // its health alone ended it (hard memory limit): never ready
    // The warm-up call (worker-start.ts): the observer is not told of it (no onCallStarted).
    const warmUp = this.#start.beginWarmUp();
    this.#calls.startWarmUp(warmUp);
    this.#process.sendFrame(warmUp.frame);
  }

  /** The warm-up call was answered (a Result, or a Failure from a worker that knows no warm-up: either will do). */
  #onWarmedUp(health: HealthSnapshot | null): void {
    if (health) this.#recordHealth(health);
    if (this.#state !== 'handshaking') return; // its health alone ended it (hard memory limit): never ready
    this.#transition('idle');
    this.#start.succeed();
    if (this.#end.requested !== undefined) this.#shutdown();
  }

  /** A Failure with id 0: the process exits right after; #onExit settles whatever was in flight, with it as the cause. */
  #onEndingFailure(error: Error, detail: string): void {
    this.#end.fatal ??= error;
    this.#end.detail ??= clip(detail);
  }

  /**
   * A reply: settle the call it answers, if it answers the one running; anything else is a protocol
   * error (see WorkerCalls.match). The call sent ahead, if any, has started the moment this reply
   * was written: it becomes the running call.
   */
  #settle(id: number, health: HealthSnapshot | null, cancelled: boolean, settle: (call: Call) => void): void {
    const match = this.#calls.match(id, cancelled);
    if (match.kind === 'wrong') return this.#protocolError(match.problem);
    if (match.kind === 'dropped') {
      // Recalled (not aborted by its caller): it runs elsewhere.
      if (!match.call.settled) this.observer.onUnstarted(this, match.call);
      if (health) this.#recordHealth(health);
      return;
    }
    settle(match.call);
    if (this.#start.endWarmUp(match.call)) return this.#onWarmedUp(health);
    const ahead = this.#calls.promoteAhead();
    if (ahead) this.observer.onCallStarted(this, ahead);
    // The fresh health may itself end the worker (hard memory limit), running call and all.
    if (health) this.#recordHealth(health);
    if (this.terminal || this.#state === 'stopping') return;
    if (ahead) {
      // Aborted too late: it was already running in the worker. An abort of a running call kills.
      // (A recalled call that had already started simply runs here.)
      if (ahead.cancelRequested && ahead.settled && ahead.options?.onAbortRunning !== 'detach') return this.killDuringCall('abort', new Error('aborted'));
      return this.observer.onCallDone(this);
    }
    if (this.#state === 'draining') this.#shutdown();
    else this.#transition('idle');
  }

  #recordHealth(health: HealthSnapshot): void {
    this.#usage.recordHealth(health);
    this.observer.onHealth(this, health);
  }

  /** The worker broke the protocol: it is killed; its running call rejects with WorkerCrashedError caused by the ProtocolError. */
  #protocolError(problem: string | ProtocolError): void {
    if (this.terminal) return;
    const error = typeof problem === 'string' ? new ProtocolError(problem) : problem;
    const why = error.message;
    this.#end.protocol ??= error;
    this.options.logger.error({ pid: this.pid, why }, `process-sandbox: protocol error from worker ${this.pid}: ${why}`);
    this.#end.detail ??= `protocol error: ${why}`;
    this.#end.requested ??= 'protocol';
    this.#kill('protocol error');
  }

  #onCallTimeout(call: Call): void {
    this.killDuringCall('timeout', new CallTimeoutError(call.method, call.timeoutMs, this.pid));
    this.observer.onCallTimedOut(this, call);
  }

  /** Kills the worker now; the call in flight, if any, rejects with `error` rather than as a crash. */
  killDuringCall(reason: StopReason, error: Error): void {
    if (this.terminal) return;
    const call = this.#calls.takeRunning();
    this.#end.requested ??= reason;
    call?.reject(error);
    this.#kill(String(reason));
  }

  #shutdown(): void {
    this.#end.asked = true;
    this.#transition('stopping');
    // Written on the loop's next turn: a worker retired by the reply just read would otherwise be
    // woken to exit (its dispose, its exit: milliseconds of CPU, on a core the host may need) before
    // that reply reaches its caller, whose promise reactions run after this tick's writes. It is
    // 'stopping' already, so nothing else is sent to it meanwhile.
    setImmediate(() => {
      if (!this.terminal) this.#process.send([MessageKind.Shutdown]);
    });
    this.#startGrace();
  }

  #startGrace(): void {
    if (this.#graceTimer) return;
    this.#graceTimer = setTimeout(() => this.#kill('shutdown grace expired'), this.options.shutdownGraceMs);
  }

  /** `deliberate`: part of stopping the worker; false for the clean-up of one that already broke. */
  #kill(why: string, deliberate = true): void {
    if (this.terminal) return;
    if (deliberate) this.#end.asked = true;
    if (this.#state !== 'stopping') this.#transition('stopping');
    this.options.logger.debug({ pid: this.pid, why }, `process-sandbox: killing worker ${this.pid}: ${why}`);
    this.#process.killTree();
  }

  #onExit(code: number | null, signal: NodeJS.Signals | null): void {
    if (this.terminal) return;
    this.#end.code = code;
    this.#end.signal = signal;
    this.#process.cleanUp();

    let call = this.#calls.takeRunning();
    if (call !== undefined && this.#start.endWarmUp(call)) {
      // Not a user's: it ends with the start, which fails below.
      call.reject(new Error('the worker ended before its warm-up call returned'));
      call = undefined;
    }
    this.#end.interrupted = call?.control ? undefined : call?.method;
    for (const unstarted of this.#calls.takeAhead()) this.observer.onUnstarted(this, unstarted);
    const stderrTail = this.#process.output.stderrTail;
    if (call && this.#end.requested === 'dispose') {
      call.reject(new PoolDisposedError(call.method, `it was still running when shutdownGraceMs (${this.options.shutdownGraceMs} ms) ran out`));
    } else if (call) {
      this.observer.onCallLost(this, call, lostCallError(this.options, this.pid, this.#end, call.method, stderrTail));
    }
    if (!this.#start.succeeded) this.#start.fail(startErrorOf(this.#end, this.pid, stderrTail));
    this.#transition(endedAsAsked(this.#end) ? 'exited' : 'crashed');
    this.#exitResolve();
  }

  get startError(): WorkerStartError | undefined {
    return this.#start.error;
  }
  get endReason(): string | undefined {
    return this.#end.detail;
  }
}

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
 * WorkerFacts (worker-facts.ts), which this class extends, reads these parts out for the pool; a
 * running call's stream and callbacks and the worker's events are WorkerTraffic's (worker-traffic.ts).
 */
import { CallTimeoutError, MessageKind, PoolDisposedError, ProtocolError, type HealthSnapshot, type Message } from '@process-sandbox/abstractions';
import type { Call } from './call.js';
import type { HostSample } from './health-sampler.js';
import type { Lease } from './lease.js';
import { isLive, type PoolWorker, type StopReason, type WorkerObserver, type WorkerState } from './pool-worker.js';
import type { ResolvedOptions } from './options.js';
import { clip, endedAsAsked, lostCallError, startErrorOf } from './worker-end.js';
import { WorkerFacts } from './worker-facts.js';
import { EOF_EXIT_GRACE_MS, WorkerProcess } from './worker-process.js';
import { initMessage } from './worker-command.js';
import { WorkerCalls } from './worker-calls.js';
import { WorkerStart } from './worker-start.js';
import { admitWorkerMessage, failureError, type GateHandlers } from './worker-gate.js';
import { WorkerTraffic } from './worker-traffic.js';

export type { WorkerState, StopReason, WorkerObserver } from './pool-worker.js';

/** A worker process as the pool sees it; its members are documented on PoolWorker (pool-worker.ts). */
export class WorkerHandle extends WorkerFacts implements PoolWorker {
  readonly id: number;
  lease: Lease | undefined;
  readonly generation: number;
  readonly startedAt = Date.now();
  #state: WorkerState = 'spawning';
  readonly #process: WorkerProcess;
  #stateSince = performance.now();
  #graceTimer: NodeJS.Timeout | undefined;
  #exitResolve!: () => void;
  /** The running call's stream and callbacks, and the worker's events (worker-traffic.ts). */
  readonly #traffic: WorkerTraffic;
  /** What each admitted message does to this worker (see worker-gate.ts). */
  readonly #gate: GateHandlers = {
    ready: (methods, health) => this.#onReady(methods, health),
    reply: (id, health, cancelled, settle) => this.#settle(id, health, cancelled, settle),
    startFailed: (error) => this.#onEndingFailure(error, error.message),
    fatal: (error) => this.#onEndingFailure(error, `fatal error: ${error.name}: ${error.message}`),
    health: (health) => this.#recordHealth(health),
    streamOpen: (id) => this.#traffic.streamOpen(id),
    streamItem: (id, item) => this.#traffic.streamItem(id, item),
    callback: (id, callback, slot, args) => this.#traffic.callback(id, callback, slot, args),
    event: (name, payload) => this.#traffic.event(name, payload),
    protocolError: (problem) => this.#protocolError(problem),
    failureError: (call, error, reason) => failureError(call, error, reason, this.start.methods, this.pid),
    wasm: () => this.options.wasm,
  };
  readonly exited: Promise<void>;

  constructor(
    id: number,
    readonly options: ResolvedOptions,
    readonly observer: WorkerObserver,
    generation = 0,
  ) {
    // The parts that keep what the pool reads (worker-facts.ts): the calls held, and the start with its timeout.
    super(
      new WorkerCalls((call) => this.#onCallTimeout(call)),
      new WorkerStart(options.processStartTimeoutMs, () => {
        this.end.detail = `it did not become ready within processStartTimeoutMs (${options.processStartTimeoutMs} ms)`;
        this.#kill('start timeout');
      }),
    );
    this.id = id;
    this.generation = generation;
    this.exited = new Promise((resolve) => (this.#exitResolve = resolve));
    this.#traffic = new WorkerTraffic(
      {
        running: () => (this.terminal ? undefined : this.held.running),
        send: (frame) => this.#process.sendFrame(frame),
        waitOnWorker: (waiting) => this.held.waitOnWorker(waiting),
        pid: () => this.pid,
        protocolError: (problem) => this.#protocolError(problem),
        event: (name, payload) => this.observer.onWorkerEvent(this, name, payload),
      },
      options.maxMessageBytes,
      options.logger,
    );
    this.#process = new WorkerProcess(options, {
      wantsChannel: () => this.#state === 'spawning',
      onConnected: () => this.#onConnected(),
      onMessage: (message) => this.#receive(message),
      onProtocolError: (error) => this.#protocolError(error),
      onEof: () => this.#onEof(),
      onChannelFailed: (error) => {
        this.end.detail ??= `its channel failed before the handshake: ${error.message}`;
        if (error instanceof ProtocolError) this.end.protocol ??= error;
        this.#kill('channel failed');
      },
      onSpawnFailed: (detail, gone) => {
        this.end.detail ??= detail;
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
  get msInState(): number {
    return performance.now() - this.#stateSince;
  }

  recordHostSample(sample: HostSample): void {
    if (!this.terminal) this.usage.recordSample(sample);
  }

  get canTakeAhead(): boolean {
    return this.#state === 'busy' && this.lease === undefined && this.held.roomAhead(this.options.pipelineDepth);
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
      this.held.start(call);
      this.#transition('busy');
      this.#process.sendFrame(call.frame);
      this.observer.onCallStarted(this, call);
    } else if (this.canTakeAhead) {
      this.held.sendAhead(call);
      this.#process.sendFrame(call.frame);
    } else {
      throw new Error(`internal: run() on a ${this.#state} worker`);
    }
  }

  /** `call`, sent ahead, is aborted or recalled: ask the worker to drop it if it has not begun. */
  cancelAhead(call: Call): void {
    if (this.held.markCancelAhead(call)) this.#process.send([MessageKind.Cancel, call.id]);
  }

  /**
   * Takes the worker out of service. An idle worker is told to shut down; a busy one first finishes
   * its call (draining). Either way it is killed if it has not exited `shutdownGraceMs` after
   * `stop` (when `graceFromNow`) or after its call ends.
   */
  stop(reason: StopReason, graceFromNow = false): void {
    if (this.end.requested !== undefined || this.terminal) return;
    this.end.requested = reason;
    // An open stream would hold its worker as long as its consumer pleases: it ends now, and the
    // worker, told to cancel, returns its iterator and replies within the grace period.
    const streaming = this.held.running;
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
        if (reason !== 'dispose') for (const call of this.held.ahead) this.cancelAhead(call);
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
    if (to !== 'spawning' && to !== 'handshaking') this.start.stopTimer();
    if (to === 'exited' || to === 'crashed' || to === 'stopping') this.held.stopTimer();
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
      this.end.detail ??= 'it closed the pipe but did not exit';
      this.#kill('pipe closed', false);
    }, Math.min(this.options.shutdownGraceMs, EOF_EXIT_GRACE_MS));
  }

  #onConnected(): void {
    this.#transition('handshaking');
    // workerOptions were checked when the options were resolved; a failure here is still contained.
    try {
      this.#process.send(initMessage(this.options));
    } catch (error) {
      this.end.detail = `its Init message could not be encoded: ${(error as Error).message}`;
      this.#kill('init failed');
    }
  }

  /** After a protocol error nothing more from this worker is believed, not even a reply that looks right. */
  #receive(raw: Message): void {
    if (this.terminal || this.end.protocol !== undefined) return;
    admitWorkerMessage(raw, this.#state === 'handshaking' && !this.start.warmingUp, this.#gate);
  }

  #onReady(listed: string[], health: HealthSnapshot): void {
    this.start.offered(listed, this.options.logger, this.pid);
    this.#recordHealth(health);
    if (this.#state !== 'handshaking') return; // its health alone ended it (hard memory limit): never ready
    // The warm-up call (worker-start.ts): the observer is not told of it (no onCallStarted).
    const warmUp = this.start.beginWarmUp();
    this.held.startWarmUp(warmUp);
    this.#process.sendFrame(warmUp.frame);
  }

  /** The warm-up call was answered (a Result, or a Failure from a worker that knows no warm-up: either will do). */
  #onWarmedUp(health: HealthSnapshot | null): void {
    if (health) this.#recordHealth(health);
    if (this.#state !== 'handshaking') return; // its health alone ended it (hard memory limit): never ready
    this.#transition('idle');
    this.start.succeed();
    if (this.end.requested !== undefined) this.#shutdown();
  }

  /** A Failure with id 0: the process exits right after; #onExit settles whatever was in flight, with it as the cause. */
  #onEndingFailure(error: Error, detail: string): void {
    this.end.fatal ??= error;
    this.end.detail ??= clip(detail);
  }

  /**
   * A reply: settle the call it answers, if it answers the one running; anything else is a protocol
   * error (see WorkerCalls.match). The call sent ahead, if any, has started the moment this reply
   * was written: it becomes the running call.
   */
  #settle(id: number, health: HealthSnapshot | null, cancelled: boolean, settle: (call: Call) => void): void {
    const match = this.held.match(id, cancelled);
    if (match.kind === 'wrong') return this.#protocolError(match.problem);
    if (match.kind === 'dropped') {
      // Recalled (not aborted by its caller): it runs elsewhere.
      if (!match.call.settled) this.observer.onUnstarted(this, match.call);
      if (health) this.#recordHealth(health);
      return;
    }
    settle(match.call);
    if (this.start.endWarmUp(match.call)) return this.#onWarmedUp(health);
    const ahead = this.held.promoteAhead();
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
    this.usage.recordHealth(health);
    this.observer.onHealth(this, health);
  }

  /** The worker broke the protocol: it is killed; its running call rejects with WorkerCrashedError caused by the ProtocolError. */
  #protocolError(problem: string | ProtocolError): void {
    if (this.terminal) return;
    const error = typeof problem === 'string' ? new ProtocolError(problem) : problem;
    const why = error.message;
    this.end.protocol ??= error;
    this.options.logger.error({ pid: this.pid, why }, `process-sandbox: protocol error from worker ${this.pid}: ${why}`);
    this.end.detail ??= `protocol error: ${why}`;
    this.end.requested ??= 'protocol';
    this.#kill('protocol error');
  }

  #onCallTimeout(call: Call): void {
    this.killDuringCall('timeout', new CallTimeoutError(call.method, call.timeoutMs, this.pid));
    this.observer.onCallTimedOut(this, call);
  }

  /** Kills the worker now; the call in flight, if any, rejects with `error` rather than as a crash. */
  killDuringCall(reason: StopReason, error: Error): void {
    if (this.terminal) return;
    const call = this.held.takeRunning();
    this.end.requested ??= reason;
    call?.reject(error);
    this.#kill(String(reason));
  }

  #shutdown(): void {
    this.end.asked = true;
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
    if (deliberate) this.end.asked = true;
    if (this.#state !== 'stopping') this.#transition('stopping');
    this.options.logger.debug({ pid: this.pid, why }, `process-sandbox: killing worker ${this.pid}: ${why}`);
    this.#process.killTree();
  }

  #onExit(code: number | null, signal: NodeJS.Signals | null): void {
    if (this.terminal) return;
    this.end.code = code;
    this.end.signal = signal;
    this.#process.cleanUp();

    let call = this.held.takeRunning();
    if (call !== undefined && this.start.endWarmUp(call)) {
      // Not a user's: it ends with the start, which fails below.
      call.reject(new Error('the worker ended before its warm-up call returned'));
      call = undefined;
    }
    this.end.interrupted = call?.control ? undefined : call?.method;
    for (const unstarted of this.held.takeAhead()) this.observer.onUnstarted(this, unstarted);
    const stderrTail = this.#process.output.stderrTail;
    if (call && this.end.requested === 'dispose') {
      call.reject(new PoolDisposedError(call.method, `it was still running when shutdownGraceMs (${this.options.shutdownGraceMs} ms) ran out`));
    } else if (call) {
      this.observer.onCallLost(this, call, lostCallError(this.options, this.pid, this.end, call.method, stderrTail));
    }
    if (!this.start.succeeded) this.start.fail(startErrorOf(this.end, this.pid, stderrTail));
    this.#transition(endedAsAsked(this.end) ? 'exited' : 'crashed');
    this.#exitResolve();
  }
}

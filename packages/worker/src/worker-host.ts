/**
 * The worker side of the protocol: says hello, loads the implementation when told, then serves
 * invocations strictly one at a time in arrival order. An async method is awaited before the next
 * call starts, whatever the host sends meanwhile.
 *
 * An uncaught exception or unhandled rejection is fatal, as in plain Node: the worker reports it
 * (Failure with id 0), starts nothing more, sends nothing more, and exits with code 70. The host
 * fails the call that was running, if one was, and runs the calls sent ahead elsewhere. To blame
 * the right call, a call's reply is written only after Node has reported the rejections the call
 * left unhandled (one event-loop turn later): a rejection a method leaves behind fails that method's
 * call, never the next one.
 *
 * Writes: the frames written in one turn share one write (the Channel corks the socket for the
 * tick), and are flushed before the next call starts, which may not return. A result's large binary
 * data is not copied into its frame but written from where it is; the next call starts once those
 * bytes are written, so that an implementation reusing the buffer it returned cannot change them
 * under the write.
 */
import type { Socket } from 'node:net';
import {
  Channel,
  describePath,
  FailureReason,
  frameMessage,
  frameMessageShared,
  MessageKind,
  PROTOCOL_VERSION,
  readRemoteError,
  WARM_UP_SESSION,
  WorkerExitCode,
  type CallUsage,
  type InvokeMessage,
  type Message,
  type PathKey,
  type SessionCloseMessage,
  type SessionOpenMessage,
  type Frame,
  type WorkerSettings,
} from '@process-sandbox/abstractions';
import { healthSnapshot, readyHealth, replyHealth } from './health.js';
import { failureFrame, reportableError, resultEncodeOptions } from './reported-error.js';
import { disposeImplementation, loadImplementation, methodNames, StartupFailure, type Implementation, type ImplementationSource } from './implementation.js';
import { failureReasonOf, takeUsage } from './wasm-report.js';
import { isAsyncIterable, StreamPump } from './stream-pump.js';
import { CallbackStubs } from './callback-stubs.js';
import { workerContext, type WorkerContext } from './worker-events.js';

type Work = InvokeMessage | SessionOpenMessage | SessionCloseMessage;

/** What the host's warm-up Invoke runs (WARM_UP_SESSION): the call path, and no code of the implementation's. */
const WARM_UP_TARGET: Implementation = { warmUp: (x: unknown) => x };

export class WorkerHost {
  readonly #channel: Channel;
  #implementation: Implementation | undefined;
  #source: ImplementationSource | undefined;
  /** Instances of open sessions, by session id (the shared instance when the session asked for no fresh one). */
  readonly #sessions = new Map<number, Implementation>();
  readonly #pending: Work[] = [];
  #running = false;
  /**
   * The running work's reply is sent and its write not yet done (a frame of segments is awaited):
   * the host takes the next work for started the moment that reply is read, so until it starts here
   * no Cancel may drop it (a Cancelled for a call the host believes running is a protocol error).
   */
  #replied = false;
  /** The call being served, for the report of a fatal error. */
  #current: { id: number; method: string } | undefined;
  /** A fatal error happened: start nothing, send nothing but its report, exit. */
  #dying = false;
  #shuttingDown = false;
  #exiting = false;
  #calls = 0;
  #healthTimer: NodeJS.Timeout | undefined;
  /** How a result is encoded: within the channel's maxMessageBytes (known once Init came), paths named. */
  readonly #resultOptions = resultEncodeOptions(() => this.#channel.maxMessageBytes);

  /** Streams of the running call, callbacks into the host, and the implementation's emit(). */
  readonly #streams = new StreamPump();
  readonly #callbacks: CallbackStubs;
  readonly #context: WorkerContext;

  /** Resolves when the worker may load the implementation (its parent-death guard is armed). */
  readonly #beforeLoad: Promise<unknown>;

  /** `socket`: the channel to the host; `token`: what the Hello carries ('' on an inherited channel). */
  constructor(socket: Socket, token: string, beforeLoad: Promise<unknown> = Promise.resolve()) {
    this.#beforeLoad = beforeLoad;
    // The real limit arrives with Init; until then only Init itself is expected.
    this.#channel = new Channel(socket, 64 * 1024 * 1024, {
      onMessage: (message) => this.#onMessage(message),
      onError: (error) => this.#exit(WorkerExitCode.ProtocolError, `pipe error: ${error.message}`),
      // The host closed the pipe: it is gone or done with us.
      onClose: () => this.#exit(WorkerExitCode.Ok),
    });
    const channel = this.#channel;
    // Callbacks and events are written at once, not with the rest of the tick: the implementation
    // that calls back or emits may then block synchronously (a native call), and the host must see
    // what it said before that (a progress report, a last event) rather than at its timeout.
    const sendNow = (frame: Frame): void => {
      this.#sendFrame(frame);
      channel.flush();
    };
    this.#callbacks = new CallbackStubs(sendNow, {
      get maxBytes() {
        return channel.maxMessageBytes;
      },
      limitName: 'maxMessageBytes',
    });
    this.#context = workerContext(sendNow);
    this.#channel.send([MessageKind.Hello, PROTOCOL_VERSION, token, process.pid]);
    process.on('uncaughtException', (error) => this.#fatal(error, 'uncaught exception'));
    process.on('unhandledRejection', (reason) => this.#fatal(reason, 'unhandled rejection'));
  }

  #onMessage(message: Message): void {
    switch (message[0]) {
      case MessageKind.Init:
        void this.#init(message[1], message[2], message[3], message[4]);
        return;
      case MessageKind.Invoke:
      case MessageKind.SessionOpen:
      case MessageKind.SessionClose:
        this.#pending.push(message);
        this.#pump();
        return;
      case MessageKind.Cancel: {
        // Only a call still waiting here can be dropped; a started one answers for itself.
        const i = this.#pending.findIndex((w) => w[0] === MessageKind.Invoke && w[1] === message[1]);
        if (i >= 0 && !(i === 0 && this.#replied)) {
          this.#pending.splice(i, 1);
          this.#sendFrame(this.#failureFrame(message[1], new Error('cancelled before it started'), FailureReason.Cancelled));
        }
        return;
      }
      case MessageKind.Shutdown:
        this.#shuttingDown = true;
        this.#pump();
        return;
      case MessageKind.StreamCredit:
        return this.#streams.credit(message[1], message[2]);
      case MessageKind.StreamCancel:
        return this.#streams.cancel(message[1]);
      case MessageKind.CallbackReply:
        return this.#callbacks.answer(message[1], message[2], message[3]);
      default:
        this.#exit(WorkerExitCode.ProtocolError, `unexpected message kind ${message[0]}`);
    }
  }

  async #init(workerModule: string, workerExport: string, options: unknown, settings: WorkerSettings): Promise<void> {
    this.#channel.maxMessageBytes = settings.maxMessageBytes;
    try {
      await this.#beforeLoad;
      ({ implementation: this.#implementation, source: this.#source } = await loadImplementation(workerModule, workerExport, options, this.#context, settings));
    } catch (error) {
      const failure = error instanceof StartupFailure ? error : new StartupFailure(String(error), { cause: error });
      this.#channel.end(this.#failureFrame(0, failure, FailureReason.StartFailed), () => this.#exit(WorkerExitCode.StartFailed));
      return;
    }
    this.#send([MessageKind.Ready, methodNames(this.#implementation), readyHealth()]);
    if (settings.healthIntervalMs > 0) {
      this.#healthTimer = setInterval(() => {
        if (!this.#running) this.#send([MessageKind.Health, healthSnapshot(this.#calls)]);
      }, settings.healthIntervalMs).unref();
    }
    this.#pump();
  }

  #pump(): void {
    if (this.#running || this.#implementation === undefined || this.#dying) return;
    const next = this.#pending.shift();
    if (next !== undefined) {
      this.#running = true;
      this.#replied = false;
      // The replies written so far go out now: the call may not return for a long time.
      this.#channel.flush();
      const work = next[0] === MessageKind.Invoke ? this.#invoke(next) : next[0] === MessageKind.SessionOpen ? this.#openSession(next) : this.#closeSession(next);
      void work.finally(() => {
        this.#running = false;
        this.#pump();
      });
    } else if (this.#shuttingDown) {
      void this.#shutdown();
    }
  }

  async #openSession([, id, session, fresh]: SessionOpenMessage): Promise<void> {
    try {
      this.#sessions.set(session, fresh ? (await this.#source!.create()).instance : this.#implementation!);
      this.#send([MessageKind.Result, id, null, replyHealth(this.#calls)]);
    } catch (error) {
      this.#sendFrame(this.#failureFrame(id, error, FailureReason.Thrown));
    }
  }

  async #closeSession([, id, session]: SessionCloseMessage): Promise<void> {
    const instance = this.#sessions.get(session);
    this.#sessions.delete(session);
    try {
      if (instance !== undefined && instance !== this.#implementation) await disposeImplementation(instance);
      this.#send([MessageKind.Result, id, null, replyHealth(this.#calls)]);
    } catch (error) {
      this.#sendFrame(this.#failureFrame(id, error, FailureReason.Thrown));
    }
  }

  async #invoke([, id, method, args, session, callbacks]: InvokeMessage): Promise<void> {
    const warmUp = session === WARM_UP_SESSION;
    const implementation = warmUp ? WARM_UP_TARGET : session ? this.#sessions.get(session) : this.#implementation!;
    if (implementation === undefined) {
      this.#sendFrame(this.#failureFrame(id, new Error(`no open session ${session}`), FailureReason.Thrown));
      return;
    }
    const fn = implementation[method];
    if (typeof fn !== 'function' || method === 'constructor') {
      const error = new Error(`no method '${method}'`);
      this.#sendFrame(this.#failureFrame(id, error, FailureReason.MethodNotFound));
      return;
    }
    this.#current = { id, method };
    const endCallbacks = callbacks?.length ? this.#callbacks.install(id, method, args, callbacks) : undefined;
    let frame: Frame;
    try {
      const value = await (fn as (...a: unknown[]) => unknown).apply(implementation, args);
      if (isAsyncIterable(value)) {
        frame = await this.#stream(id, method, value);
      } else {
        if (!warmUp) this.#calls++;
        // A WebAssembly implementation reports what the call used (fuel, host calls): wasm-report.ts.
        const usage = takeUsage(implementation);
        try {
          const health = replyHealth(this.#calls);
          frame = frameMessageShared(usage ? [MessageKind.Result, id, value, health, usage] : [MessageKind.Result, id, value, health], this.#resultOptions);
        } catch (error) {
          frame = this.#failureFrame(id, error, FailureReason.Unserializable, usage);
        }
      }
    } catch (error) {
      this.#calls++;
      frame = this.#failureFrame(id, error, failureReasonOf(error), takeUsage(implementation));
    }
    await endCallbacks?.();
    await afterRejectionsReported();
    this.#current = undefined;
    if (Buffer.isBuffer(frame)) return this.#sendFrame(frame);
    this.#replied = true;
    await new Promise<void>((resolve) => this.#sendFrame(frame, resolve));
  }

  /**
   * The method returned an async iterable: StreamOpen, its items as the host grants credit, and
   * the frame that ends it (Result with null, or the Failure of the iterator or of an item).
   */
  async #stream(id: number, method: string, iterable: AsyncIterable<unknown>): Promise<Buffer> {
    this.#send([MessageKind.StreamOpen, id]);
    const options = { maxBytes: this.#channel.maxMessageBytes, limitName: 'maxMessageBytes', describePath: (path: readonly PathKey[]) => describePath(`an item of ${method}()`, path.slice(1)) };
    const outcome = await this.#streams.run(id, iterable, (item) => this.#sendFrame(frameMessage([MessageKind.StreamItem, id, item], options)));
    this.#calls++;
    if (outcome.ok) return frameMessage([MessageKind.Result, id, null, replyHealth(this.#calls)]);
    return this.#failureFrame(id, outcome.error, outcome.unserializable ? FailureReason.Unserializable : FailureReason.Thrown);
  }

  /** Sends unless a fatal error ended the conversation (its report is the last frame). */
  #send(message: Message): void {
    if (!this.#dying) this.#channel.send(message);
  }

  /** `flushed`: runs once the frame is written (or will not be). */
  #sendFrame(frame: Frame, flushed?: () => void): void {
    if (!this.#dying) this.#channel.sendFrame(frame, flushed);
    else flushed?.();
  }

  /** A failure frame that always encodes, whatever was thrown (see reported-error.ts). */
  #failureFrame(id: number, thrown: unknown, reason: FailureReason, usage?: CallUsage): Buffer {
    const health = this.#implementation ? replyHealth(this.#calls) : null;
    return failureFrame(id, thrown, reason, health, this.#channel.maxMessageBytes, usage);
  }

  async #shutdown(): Promise<void> {
    const instances = new Set([...this.#sessions.values(), this.#implementation!]);
    this.#sessions.clear();
    for (const instance of instances) {
      try {
        await disposeImplementation(instance);
      } catch (error) {
        process.stderr.write(`[process-sandbox worker] dispose() threw during shutdown: ${String(error)}\n`);
      }
    }
    this.#channel.end(undefined, () => this.#exit(WorkerExitCode.Ok));
  }

  #fatal(thrown: unknown, what: string): void {
    if (this.#exiting || this.#dying) return;
    this.#dying = true;
    if (this.#healthTimer) clearInterval(this.#healthTimer);
    const when = this.#current ? `while running ${this.#current.method}() (call ${this.#current.id})` : this.#implementation ? 'while idle' : 'while starting';
    // stderr first and synchronously: it reaches the host's logger even if the pipe write is lost.
    // Read without running the thrown value's code: this handler must not throw.
    process.stderr.write(`[process-sandbox worker] ${what} ${when}: ${describeThrown(thrown)}\n`);
    let report: Buffer | undefined;
    try {
      report = this.#failureFrame(0, thrown, FailureReason.Fatal);
    } catch {
      // the report cannot be built: the exit code and stderr say it
    }
    this.#channel.end(report, () => this.#exit(WorkerExitCode.Fatal));
    setTimeout(() => this.#exit(WorkerExitCode.Fatal), 500).unref();
  }

  #exit(code: number, why?: string): void {
    if (this.#exiting) return;
    this.#exiting = true;
    if (this.#healthTimer) clearInterval(this.#healthTimer);
    if (why) process.stderr.write(`[process-sandbox worker] exiting: ${why}\n`);
    process.exit(code);
  }
}

/**
 * Resolves after Node has reported the promise rejections left unhandled so far: it does so once
 * the microtask queue is empty, before the event loop moves on to the check phase.
 */
function afterRejectionsReported(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/** A thrown value's stack or message for stderr, bounded, never running its code. */
function describeThrown(thrown: unknown): string {
  const view = readRemoteError(thrown);
  return view.stack ?? `${view.name}: ${view.message}`;
}

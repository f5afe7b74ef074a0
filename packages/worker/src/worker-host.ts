/**
 * The worker side of the protocol: says hello, loads the implementation when told, then serves
 * invocations strictly one at a time in arrival order. An async method is awaited before the next
 * call starts, whatever the host sends meanwhile.
 */
import type { Socket } from 'node:net';
import {
  Channel,
  FailureReason,
  frameMessage,
  MessageKind,
  PROTOCOL_VERSION,

  type InvokeMessage,
  type Message,
  type SessionCloseMessage,
  type SessionOpenMessage,
  type WorkerSettings,
} from '@process-sandbox/abstractions';
import { healthSnapshot, replyHealth } from './health.js';
import { failureFrame, reportableError, resultEncodeOptions } from './reported-error.js';
import { disposeImplementation, loadImplementation, methodNames, StartupFailure, type Implementation, type ImplementationSource } from './implementation.js';

type Work = InvokeMessage | SessionOpenMessage | SessionCloseMessage;

/** Exit codes the host can tell apart. */
export const WorkerExitCode = {
  Ok: 0,
  StartFailed: 78,
  Fatal: 70,
  ProtocolError: 76,
} as const;

export class WorkerHost {
  readonly #channel: Channel;
  #implementation: Implementation | undefined;
  #source: ImplementationSource | undefined;
  /** Instances of open sessions, by session id (the shared instance when the session asked for no fresh one). */
  readonly #sessions = new Map<number, Implementation>();
  readonly #pending: Work[] = [];
  #running = false;
  #shuttingDown = false;
  #exiting = false;
  #calls = 0;
  #healthTimer: NodeJS.Timeout | undefined;
  /** How a result is encoded: within the channel's maxMessageBytes (known once Init came), paths named. */
  readonly #resultOptions = resultEncodeOptions(() => this.#channel.maxMessageBytes);

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
        if (i >= 0) {
          this.#pending.splice(i, 1);
          this.#channel.sendFrame(this.#failureFrame(message[1], new Error('cancelled before it started'), FailureReason.Cancelled));
        }
        return;
      }
      case MessageKind.Shutdown:
        this.#shuttingDown = true;
        this.#pump();
        return;
      default:
        this.#exit(WorkerExitCode.ProtocolError, `unexpected message kind ${message[0]}`);
    }
  }

  async #init(workerModule: string, workerExport: string, options: unknown, settings: WorkerSettings): Promise<void> {
    this.#channel.maxMessageBytes = settings.maxMessageBytes;
    try {
      await this.#beforeLoad;
      ({ implementation: this.#implementation, source: this.#source } = await loadImplementation(workerModule, workerExport, options));
    } catch (error) {
      const failure = error instanceof StartupFailure ? error : new StartupFailure(String(error), { cause: error });
      this.#channel.end(this.#failureFrame(0, failure, FailureReason.StartFailed), () => this.#exit(WorkerExitCode.StartFailed));
      return;
    }
    this.#channel.send([MessageKind.Ready, methodNames(this.#implementation), healthSnapshot(0)]);
    if (settings.healthIntervalMs > 0) {
      this.#healthTimer = setInterval(() => {
        if (!this.#running) this.#channel.send([MessageKind.Health, healthSnapshot(this.#calls)]);
      }, settings.healthIntervalMs).unref();
    }
    this.#pump();
  }

  #pump(): void {
    if (this.#running || this.#implementation === undefined) return;
    const next = this.#pending.shift();
    if (next !== undefined) {
      this.#running = true;
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
      this.#sessions.set(session, fresh ? await this.#source!.create() : this.#implementation!);
      this.#channel.send([MessageKind.Result, id, null, replyHealth(this.#calls)]);
    } catch (error) {
      this.#channel.sendFrame(this.#failureFrame(id, error, FailureReason.Thrown));
    }
  }

  async #closeSession([, id, session]: SessionCloseMessage): Promise<void> {
    const instance = this.#sessions.get(session);
    this.#sessions.delete(session);
    try {
      if (instance !== undefined && instance !== this.#implementation) await disposeImplementation(instance);
      this.#channel.send([MessageKind.Result, id, null, replyHealth(this.#calls)]);
    } catch (error) {
      this.#channel.sendFrame(this.#failureFrame(id, error, FailureReason.Thrown));
    }
  }

  async #invoke([, id, method, args, session]: InvokeMessage): Promise<void> {
    const implementation = session ? this.#sessions.get(session) : this.#implementation!;
    if (implementation === undefined) {
      this.#channel.sendFrame(this.#failureFrame(id, new Error(`no open session ${session}`), FailureReason.Thrown));
      return;
    }
    const fn = implementation[method];
    if (typeof fn !== 'function' || method === 'constructor') {
      const error = new Error(`no method '${method}'`);
      this.#channel.sendFrame(this.#failureFrame(id, error, FailureReason.MethodNotFound));
      return;
    }
    let value: unknown;
    try {
      value = await (fn as (...a: unknown[]) => unknown).apply(implementation, args);
    } catch (error) {
      this.#calls++;
      this.#channel.sendFrame(this.#failureFrame(id, error, FailureReason.Thrown));
      return;
    }
    this.#calls++;
    let frame: Buffer;
    try {
      frame = frameMessage([MessageKind.Result, id, value, replyHealth(this.#calls)], this.#resultOptions);
    } catch (error) {
      frame = this.#failureFrame(id, error, FailureReason.Unserializable);
    }
    this.#channel.sendFrame(frame);
  }

  /** A failure frame that always encodes, whatever was thrown (see reported-error.ts). */
  #failureFrame(id: number, thrown: unknown, reason: FailureReason): Buffer {
    const health = this.#implementation ? replyHealth(this.#calls) : null;
    return failureFrame(id, thrown, reason, health, this.#channel.maxMessageBytes);
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
    if (this.#exiting) return;
    const error = toError(thrown);
    // stderr first and synchronously: it reaches the host's logger even if the pipe write is lost.
    process.stderr.write(`[process-sandbox worker] ${what}: ${error.stack ?? error.message}\n`);
    this.#channel.end(this.#failureFrame(0, error, FailureReason.Fatal), () => this.#exit(WorkerExitCode.Fatal));
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

/** What was thrown, as an Error that can be read without running its code (see reported-error.ts). */
function toError(thrown: unknown): Error {
  return reportableError(thrown);
}

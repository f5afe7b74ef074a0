/**
 * The operating-system side of one worker: the child process, the endpoint its channel arrives on,
 * the channel, its output, and the kills. It reports what happens and decides nothing: the protocol
 * and the state machine are WorkerHandle's.
 */
import type { ChildProcess } from 'node:child_process';
import { precheckFrame, ProtocolError, type Channel, type Frame, type Message } from '@process-sandbox/abstractions';
import type { ResolvedOptions } from './options.js';
import { forkedChild } from './confinement.js';
import { killProcessGroup, killProcessTree } from './process-tree.js';
import { spawnWorker, workerCommand } from './worker-command.js';
import { workerEndpoint, type WorkerEndpoint } from './worker-endpoint.js';
import { WorkerOutput } from './worker-output.js';

/** After EOF on the pipe, or after the exit with the pipe still open, how long to wait for the other. */
export const EOF_EXIT_GRACE_MS = 1_000;

export interface WorkerProcessEvents {
  /** The worker connected: false refuses its channel (the worker is no longer waited for). */
  wantsChannel(): boolean;
  /** The channel is ours and wired, before it reads on: messages may be sent. */
  onConnected(): void;
  onMessage(message: Message): void;
  /** The worker broke the protocol: a malformed frame, or a message that made the host throw while acting on it. */
  onProtocolError(error: ProtocolError): void;
  /** EOF on the pipe, the process not (yet) seen to exit: it is exiting, or broken. */
  onEof(): void;
  /** The channel failed before the handshake. */
  onChannelFailed(error: Error): void;
  /** The process could not be started; `gone`: no 'exit' will follow, it is over. */
  onSpawnFailed(detail: string, gone: boolean): void;
  /**
   * The process exited and everything it wrote has been read: 'exit' can arrive before the last
   * 'data', so this waits for EOF (or, if it never comes, EOF_EXIT_GRACE_MS), so that a call that
   * did finish is never reported as crashed. May be called more than once.
   */
  onExit(code: number | null, signal: NodeJS.Signals | null): void;
}

export class WorkerProcess {
  #pid = 0;
  #runtimePid = 0;
  readonly #confinedPid: boolean;
  #child: ChildProcess | undefined;
  #channel: Channel | undefined;
  #exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  readonly #endpoint: WorkerEndpoint;
  readonly output: WorkerOutput;

  constructor(options: ResolvedOptions, events: WorkerProcessEvents) {
    this.#confinedPid = options.confinement?.pid === true;
    this.output = new WorkerOutput(options.logger, () => this.#pid);
    // Called back synchronously from the channel's data handler: the channel is ours before it reads on.
    this.#endpoint = workerEndpoint(options.maxMessageBytes, options.processStartTimeoutMs, options.logger, {
      onAccepted: ({ channel }) => this.#connected(channel, events, options),
      onFailed: (error) => events.onChannelFailed(error),
    });
    let child: ChildProcess;
    try {
      const command = workerCommand(options);
      this.#endpoint.prepare(command);
      child = spawnWorker(command, options);
    } catch (error) {
      const detail = `spawning ${options.execPath} failed: ${(error as Error).message}`;
      queueMicrotask(() => events.onSpawnFailed(detail, true));
      return;
    }
    this.#pid = child.pid ?? 0;
    if (child.pid !== undefined) this.#endpoint.attach(child);
    this.#child = child;
    // Spawn failure (ENOENT, EACCES): no 'exit' follows when the process never started.
    child.on('error', (error) => events.onSpawnFailed(`spawning ${options.execPath} failed: ${error.message}`, child.pid === undefined));
    child.on('exit', (code, signal) => {
      this.#exit = { code, signal };
      if (!this.#channel || this.#channel.closed) return events.onExit(code, signal);
      setTimeout(() => events.onExit(code, signal), EOF_EXIT_GRACE_MS).unref();
    });
    this.output.follow(child.stdout, 'stdout');
    this.output.follow(child.stderr, 'stderr');
  }

  #connected(channel: Channel, events: WorkerProcessEvents, options: ResolvedOptions): void {
    if (!events.wantsChannel()) {
      channel.destroy();
      return;
    }
    this.#channel = channel;
    channel.setHandlers({
      inspect: precheckFrame,
      onMessage: (message) => events.onMessage(message),
      // A ProtocolError is the worker's fault (the Channel turns a throw of the host acting on a
      // message into one). Any other error is the socket's: EPIPE or ECONNRESET from a process that
      // is dying. That is no protocol error and says nothing of why it died: the channel closes,
      // and the exit status, when it comes, tells the story.
      onError: (error) => {
        if (error instanceof ProtocolError) return events.onProtocolError(error);
        options.logger.debug({ pid: this.#pid, error: error.message }, `process-sandbox: pipe of worker ${this.#pid} failed (${error.message}); waiting for its exit status`);
      },
      onClose: () => {
        // Every byte the worker wrote has been read: if it has exited too, the story is complete.
        if (this.#exit) return events.onExit(this.#exit.code, this.#exit.signal);
        events.onEof();
      },
    });
    events.onConnected();
  }

  /** Sends to the worker; nothing if the channel is not (or no longer) open. */
  send(message: Message): void {
    this.#channel?.send(message);
  }
  sendFrame(frame: Frame): void {
    this.#channel?.sendFrame(frame);
  }

  get pid(): number {
    return this.#pid;
  }

  /**
   * The host pid of the process that runs node, which the health sampler and the memory watch read:
   * `pid` itself, but in a PID namespace (confinement.ts) `pid` is unshare and node its only child.
   * Kills still go to `pid`, which leads the process group, and whose death ends the namespace.
   */
  get runtimePid(): number {
    if (this.#runtimePid) return this.#runtimePid;
    if (!this.#confinedPid || !this.#pid) return this.#pid;
    const forked = forkedChild(this.#pid);
    if (forked) this.#runtimePid = forked;
    return forked ?? this.#pid;
  }

  /** Whether the process and its output pipes keep the host's event loop alive (the `unref` option). */
  holdOpen(hold: boolean): void {
    this.#channel?.holdProcessOpen(hold);
    const child = this.#child;
    if (!child) return;
    for (const handle of [child, child.stdout, child.stderr]) {
      if (!handle) continue;
      if (hold) (handle as { ref?: () => void }).ref?.();
      else (handle as { unref?: () => void }).unref?.();
    }
  }

  /** Ends the process and its descendants now. */
  killTree(): void {
    if (this.#pid) killProcessTree(this.#pid);
  }

  /** After its exit: the endpoint closes, and leftovers in its group (children never reaped) go with it. */
  cleanUp(): void {
    this.#channel?.destroy();
    this.#endpoint.close();
    if (this.#pid) killProcessGroup(this.#pid);
  }
}

/**
 * The operating-system side of one worker: the child process, the endpoint its channel arrives on,
 * its output, and the kills. It reports what happens and decides nothing: the protocol and the state
 * machine are WorkerHandle's.
 */
import type { ChildProcess } from 'node:child_process';
import type { Channel } from '@process-sandbox/abstractions';
import type { ResolvedOptions } from './options.js';
import { forkedChild } from './confinement.js';
import { killProcessGroup, killProcessTree } from './process-tree.js';
import { spawnWorker, workerCommand } from './worker-command.js';
import { workerEndpoint, type WorkerEndpoint } from './worker-endpoint.js';
import { WorkerOutput } from './worker-output.js';

export interface WorkerProcessEvents {
  /** The worker connected: its channel, checked and ours before it reads on. */
  onChannel(channel: Channel): void;
  /** The channel failed before the handshake. */
  onChannelFailed(error: Error): void;
  /** The process could not be started; `gone`: no 'exit' will follow, it is over. */
  onSpawnFailed(detail: string, gone: boolean): void;
  /** The process exited (its last replies may still sit unread in the channel). */
  onExit(code: number | null, signal: NodeJS.Signals | null): void;
}

export class WorkerProcess {
  #pid = 0;
  #runtimePid = 0;
  readonly #confinedPid: boolean;
  #child: ChildProcess | undefined;
  readonly #endpoint: WorkerEndpoint;
  readonly output: WorkerOutput;

  constructor(options: ResolvedOptions, events: WorkerProcessEvents) {
    this.#confinedPid = options.confinement?.pid === true;
    this.output = new WorkerOutput(options.logger, () => this.#pid);
    // Called back synchronously from the channel's data handler: the channel is ours before it reads on.
    this.#endpoint = workerEndpoint(options.maxMessageBytes, options.processStartTimeoutMs, options.logger, {
      onAccepted: ({ channel }) => events.onChannel(channel),
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
    child.on('exit', (code, signal) => events.onExit(code, signal));
    this.output.follow(child.stdout, 'stdout');
    this.output.follow(child.stderr, 'stderr');
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
    this.#endpoint.close();
    if (this.#pid) killProcessGroup(this.#pid);
  }
}

/**
 * POSIX: the worker's channel is one end of a socketpair it inherits on descriptor CHANNEL_FD (an
 * extra stdio 'pipe', which libuv makes as a Unix socketpair), the host keeps the other end. Nothing
 * listens, nothing is named: no path in the file system, no token in the environment, nothing a
 * stranger could connect to. A socket cannot be reopened through /proc/<pid>/fd/<n> (ENXIO), so
 * another process reaches it only by taking the descriptor out of the worker (pidfd_getfd, ptrace),
 * which needs the rights to do anything at all to the worker anyway (docs/reliability.md).
 *
 * The first frame must still be a Hello of this protocol version: a worker of another version is
 * refused before it is sent anything.
 */
import type { ChildProcess } from 'node:child_process';
import type { Socket } from 'node:net';
import { Channel, CHANNEL_FD, ENV_CHANNEL_FD, MAX_HELLO_BYTES, ProtocolError, type Message } from '@process-sandbox/abstractions';
import { helloProblem, type EndpointEvents, type WorkerEndpoint } from './hello.js';
import type { SpawnPlan } from './os/guard.js';

export class InheritedChannel implements WorkerEndpoint {
  readonly #events: EndpointEvents;
  readonly #maxMessageBytes: number;
  #channel: Channel | undefined;
  #done = false;

  constructor(maxMessageBytes: number, events: EndpointEvents) {
    this.#maxMessageBytes = maxMessageBytes;
    this.#events = events;
  }

  prepare(plan: SpawnPlan): void {
    const { stdio } = plan.options;
    while (stdio.length < CHANNEL_FD) stdio.push('ignore');
    stdio[CHANNEL_FD] = 'pipe';
    plan.options.env[ENV_CHANNEL_FD] = String(CHANNEL_FD);
  }

  attach(child: ChildProcess): void {
    const socket = child.stdio[CHANNEL_FD] as Socket | null | undefined;
    if (!socket) return this.#fail(new Error(`the worker was spawned without its channel (stdio ${CHANNEL_FD})`));
    const channel = new Channel(socket, MAX_HELLO_BYTES, {
      onMessage: (message: Message) => {
        // Once accepted, the owner's handlers replace these at once; once failed, nothing matters.
        if (this.#done) return;
        const why = helloProblem(message);
        if (why) return this.#fail(new ProtocolError(why));
        this.#done = true;
        channel.maxMessageBytes = this.#maxMessageBytes;
        this.#events.onAccepted({ channel });
      },
      onError: (error) => this.#fail(error),
      // Closed before the Hello: the worker is exiting, and its exit tells why.
      onClose: () => {},
    });
    this.#channel = channel;
  }

  #fail(error: Error): void {
    if (this.#done) return;
    this.#done = true;
    this.#channel?.destroy();
    this.#events.onFailed(error);
  }

  /** Before the Hello: drops the channel. After it, the channel is the owner's and is left alone. */
  close(): void {
    if (this.#done) return;
    this.#done = true;
    this.#channel?.destroy();
  }
}

/**
 * Windows: the worker connects to a named pipe, `\\.\pipe\process-sandbox-<random>`, one listener per
 * worker (POSIX needs none: inherited-channel.ts). Pipe names are not files: nothing is left behind.
 *
 * The name and a token reach the worker through its environment, which another process of the same
 * user can read; so the pipe admits strangers, and the token is what keeps them out. The first frame
 * on a connection must be a Hello carrying this worker's token; a connection that sends anything
 * else, a wrong token, or nothing before the deadline, is dropped without a single byte in reply.
 * The first good Hello closes the listener: nobody else can connect afterwards.
 *
 * Strangers are bounded, so that a flood of connections cannot hold the host's handles: at most
 * MAX_UNPROVEN connections wait for their Hello at once (any further one is destroyed as it arrives),
 * and after MAX_STRANGERS connections that failed to prove the token the listener gives up and the
 * worker's start fails (the pool starts another worker, on a new pipe, with a new token). A process
 * that can read the worker's environment can also end the worker; what it cannot do is read the Init
 * or answer a call.
 *
 * NOT EXERCISED BY CI on Windows itself (see os/windows.ts); the listener logic is the one the
 * project's tests ran on POSIX before the inherited channel replaced it there.
 */
import { randomBytes } from 'node:crypto';
import { createServer, type Server, type Socket } from 'node:net';
import { Channel, ENV_PIPE, ENV_TOKEN, MAX_HELLO_BYTES, ProtocolError, type Message } from '@process-sandbox/abstractions';
import { digest, helloProblem, type EndpointEvents, type WorkerEndpoint } from './hello.js';
import type { Logger } from './logger.js';
import type { SpawnPlan } from './os/guard.js';

/** Connections waiting for their Hello at once; a further one is destroyed as it arrives. */
export const MAX_UNPROVEN = 4;
/** Connections that failed to prove the token, per listener, before it gives up. */
export const MAX_STRANGERS = 64;
/** Drops logged one by one per listener; the rest are counted in the final line. */
const LOGGED_DROPS = 8;

let nextPipe = 0;

function newPipePath(): string {
  return `\\\\.\\pipe\\process-sandbox-${randomBytes(12).toString('hex')}-w${++nextPipe}-${randomBytes(4).toString('hex')}`;
}

/** Listens on a fresh named pipe for the one worker that knows the token. */
export class PipeListener implements WorkerEndpoint {
  readonly path: string;
  readonly #token = randomBytes(32).toString('base64url');
  readonly #tokenDigest = digest(this.#token);
  readonly #server: Server;
  readonly #strangers = new Set<Socket>();
  readonly #events: EndpointEvents;
  readonly #logger: Logger;
  #refused = 0;
  #done = false;

  /** `path`: a Unix socket path instead of a named pipe, for the tests that run this logic on POSIX. */
  constructor(maxMessageBytes: number, helloTimeoutMs: number, logger: Logger, events: EndpointEvents, path = newPipePath()) {
    this.path = path;
    this.#events = events;
    this.#logger = logger;
    this.#server = createServer();
    this.#server.on('error', (error) => this.#fail(error));
    this.#server.on('connection', (socket) => {
      if (this.#done || this.#strangers.size >= MAX_UNPROVEN) {
        socket.destroy();
        if (!this.#done) this.#stranger(`more than ${MAX_UNPROVEN} connections waiting for their Hello`);
        return;
      }
      this.#strangers.add(socket);
      socket.setTimeout(helloTimeoutMs, () => drop('no Hello before the deadline'));
      const drop = (why: string): void => {
        socket.destroy();
        this.#strangers.delete(socket);
        this.#stranger(why);
      };
      const channel = new Channel(socket, MAX_HELLO_BYTES, {
        onMessage: (message: Message) => {
          if (this.#done) return socket.destroy();
          const why = helloProblem(message, this.#tokenDigest);
          if (why) return drop(why);
          this.#strangers.delete(socket);
          socket.setTimeout(0);
          channel.maxMessageBytes = maxMessageBytes;
          this.close();
          this.#events.onAccepted({ channel });
        },
        onError: (error) => drop(error instanceof ProtocolError ? error.message : `socket error: ${error.message}`),
        onClose: () => this.#strangers.delete(socket),
      });
    });
    this.#server.listen(this.path);
  }

  prepare(plan: SpawnPlan): void {
    plan.options.env[ENV_PIPE] = this.path;
    plan.options.env[ENV_TOKEN] = this.#token;
  }

  attach(): void {}

  #stranger(why: string): void {
    this.#refused++;
    if (this.#refused <= LOGGED_DROPS) {
      this.#logger.warn({ pipe: this.path, why }, `process-sandbox: dropped a connection to a worker pipe: ${why}`);
    }
    if (this.#refused >= MAX_STRANGERS) {
      this.#fail(new Error(`${this.#refused} connections to its pipe failed to prove the token (someone is connecting to worker pipes); the last: ${why}`));
    }
  }

  #fail(error: Error): void {
    if (this.#done) return;
    this.close();
    this.#events.onFailed(error);
  }

  /** Stops listening and drops every unproven connection. Idempotent. */
  close(): void {
    if (this.#done) return;
    this.#done = true;
    this.#server.close();
    for (const socket of this.#strangers) socket.destroy();
    this.#strangers.clear();
  }
}

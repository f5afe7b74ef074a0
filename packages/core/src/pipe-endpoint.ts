/**
 * Where a worker connects: one listening pipe per worker, inside a private directory.
 *
 * POSIX: a Unix domain socket in a fresh `mkdtemp` directory (mode 0700, so no other user can even
 * reach the socket), removed when the pool is disposed. Windows: `\\.\pipe\process-sandbox-<random>`.
 *
 * The first frame on a connection must be a Hello carrying this worker's token. A connection that
 * sends anything else, a wrong token, or nothing before the deadline, is dropped without a single
 * byte in reply. The first good Hello closes the listener: nobody else can connect afterwards.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { mkdtempSync, rmSync, unlinkSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  Channel,
  MAX_HELLO_BYTES,
  MessageKind,
  PROTOCOL_VERSION,
  ProtocolError,
  type Message,
} from '@process-sandbox/abstractions';
import type { Logger } from './logger.js';

const isWindows = process.platform === 'win32';

export class PipeDirectory {
  readonly path: string | undefined;
  #next = 0;

  constructor() {
    this.path = isWindows ? undefined : mkdtempSync(join(tmpdir(), 'process-sandbox-'));
  }

  newPipePath(): string {
    const name = `w${++this.#next}-${randomBytes(4).toString('hex')}`;
    return isWindows ? `\\\\.\\pipe\\process-sandbox-${randomBytes(12).toString('hex')}-${name}` : join(this.path!, `${name}.sock`);
  }

  remove(): void {
    if (this.path) rmSync(this.path, { recursive: true, force: true });
  }
}

export interface AcceptedWorker {
  channel: Channel;
  /** The pid the worker reported in its Hello. */
  pid: number;
}

/** Listens on `path` for the one worker that knows `token`. */
export class PipeListener {
  readonly token = randomBytes(32).toString('base64url');
  readonly accepted: Promise<AcceptedWorker>;
  readonly #server: Server;
  readonly #path: string;
  readonly #strangers = new Set<Socket>();
  readonly #tokenDigest = digest(this.token);
  #closed = false;

  constructor(path: string, maxMessageBytes: number, helloTimeoutMs: number, logger: Logger) {
    this.#path = path;
    this.#server = createServer();
    this.accepted = new Promise<AcceptedWorker>((resolve, reject) => {
      this.#server.on('error', (error) => {
        this.close();
        reject(error);
      });
      this.#server.on('connection', (socket) => {
        if (this.#closed) {
          socket.destroy();
          return;
        }
        this.#strangers.add(socket);
        socket.setTimeout(helloTimeoutMs, () => socket.destroy());
        const drop = (why: string): void => {
          logger.warn({ pipe: path, why }, `process-sandbox: dropped a connection to a worker pipe: ${why}`);
          socket.destroy();
        };
        const channel = new Channel(socket, MAX_HELLO_BYTES, {
          onMessage: (message: Message) => {
            const why = this.#checkHello(message);
            if (why) return drop(why);
            this.#strangers.delete(socket);
            socket.setTimeout(0);
            channel.maxMessageBytes = maxMessageBytes;
            this.close();
            resolve({ channel, pid: message[3] as number });
          },
          onError: (error) => drop(error instanceof ProtocolError ? error.message : `socket error: ${error.message}`),
          onClose: () => this.#strangers.delete(socket),
        });
      });
    });
    this.accepted.catch(() => {}); // observed by the owner; never an unhandled rejection
    this.#server.listen(path);
  }

  #checkHello(message: Message): string | undefined {
    if (message[0] !== MessageKind.Hello) return `first message is kind ${message[0]}, not Hello`;
    if (message[1] !== PROTOCOL_VERSION) return `protocol version ${String(message[1])}, expected ${PROTOCOL_VERSION}`;
    if (typeof message[2] !== 'string' || typeof message[3] !== 'number') return 'malformed Hello';
    // Compare digests, so the comparison takes the same time whatever the length or content.
    if (!timingSafeEqual(digest(message[2]), this.#tokenDigest)) return 'wrong token';
    return undefined;
  }

  /** Stops listening and drops every unproven connection. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#server.close();
    for (const socket of this.#strangers) socket.destroy();
    this.#strangers.clear();
    if (!isWindows) {
      try {
        unlinkSync(this.#path);
      } catch {
        // already gone
      }
    }
  }
}

function digest(text: string): Buffer {
  return createHash('sha256').update(text).digest();
}

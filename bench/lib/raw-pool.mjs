/**
 * The raw baselines: forked Node children answering requests, one request in flight per child, a
 * FIFO queue on the host, and nothing else (no handshake, no health snapshot, no timers).
 *
 *   transport 'socket'  a Unix domain socket, frames of a 4-byte length prefix plus MessagePack
 *                       (the library's framing), a streaming frame reader on both ends
 *   transport 'ipc'     child_process.fork's own IPC channel (process.send), with the given
 *                       serialization ('json', Node's default, or 'advanced')
 *
 * Every reply id is checked against the request in flight, and answeredByChild() asks each child
 * how many requests it answered, to check against the host's own counts.
 */
import { fork } from 'node:child_process';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { COUNT, FrameReader, INVOKE, RESULT, decodeFrame, frame } from './framing.mjs';

const CHILD = fileURLToPath(new URL('./raw-child.mjs', import.meta.url));

export class RawPool {
  #server;
  #children = [];
  #queue = [];
  #nextId = 1;
  #closed = false;
  #onError;
  completed = 0;

  /**
   * @param size      children
   * @param options   transport ('socket' | 'ipc'), dir (for the socket), detached, serialization
   *                  (ipc only), onError(message) for replies that do not match their request
   */
  static async start(size, { transport = 'socket', dir, detached = false, serialization = 'json', onError = () => {} } = {}) {
    const pool = new RawPool();
    pool.#onError = onError;
    if (transport === 'socket') await pool.#startSocket(size, dir, detached);
    else await pool.#startIpc(size, detached, serialization);
    return pool;
  }

  async #startSocket(size, dir, detached) {
    const path = join(dir, `raw-${Math.random().toString(36).slice(2)}.sock`);
    const server = createServer();
    this.#server = server;
    await new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(path, resolve);
    });
    for (let i = 0; i < size; i++) {
      // execArgv [] so that flags given to this process (--cpu-prof, --inspect) do not reach the children.
      const proc = fork(CHILD, ['socket', path], { execArgv: [], stdio: ['ignore', 'inherit', 'inherit', 'ipc'], detached });
      const exited = new Promise((resolve) => proc.once('exit', resolve));
      // Children are started one at a time (in a private directory), so this connection is this child's.
      const socket = await new Promise((resolve, reject) => {
        const onConnection = (s) => {
          proc.off('exit', onExit);
          resolve(s);
        };
        const onExit = (code, signal) => {
          server.off('connection', onConnection);
          reject(new Error(`baseline child exited (${signal ?? code}) before connecting`));
        };
        server.once('connection', onConnection);
        proc.once('exit', onExit);
      });
      const child = { proc, exited, inFlight: null, sent: 0, replies: 0 };
      const reader = new FrameReader((bytes) => this.#onReply(child, decodeFrame(bytes)));
      child.write = (message) => socket.write(frame(message));
      child.end = () => socket.end();
      socket.on('data', (chunk) => reader.push(chunk));
      socket.on('error', () => {});
      socket.on('close', () => this.#onChildGone(child));
      proc.on('error', () => {});
      this.#children.push(child);
    }
    server.close(); // nobody else may connect
  }

  async #startIpc(size, detached, serialization) {
    for (let i = 0; i < size; i++) {
      const proc = fork(CHILD, ['ipc'], { execArgv: [], stdio: ['ignore', 'inherit', 'inherit', 'ipc'], detached, serialization });
      const exited = new Promise((resolve) => proc.once('exit', resolve));
      await new Promise((resolve, reject) => {
        const onExit = (code, signal) => reject(new Error(`baseline child exited (${signal ?? code}) before it was ready`));
        proc.once('exit', onExit);
        proc.once('message', () => {
          proc.off('exit', onExit);
          resolve();
        });
      });
      const child = { proc, exited, inFlight: null, sent: 0, replies: 0 };
      child.write = (message) => proc.send(message);
      child.end = () => proc.connected && proc.disconnect();
      proc.on('message', (message) => this.#onReply(child, message));
      proc.on('disconnect', () => this.#onChildGone(child));
      proc.on('error', () => {});
      this.#children.push(child);
    }
  }

  /** Resolves with the child's answer to method(...args). */
  invoke(method, args) {
    if (this.#closed) return Promise.reject(new Error('baseline pool is closed'));
    return new Promise((resolve, reject) => {
      this.#queue.push({ kind: INVOKE, id: this.#nextId++, method, args, resolve, reject });
      this.#pump();
    });
  }

  /** Asks each child how many requests it answered (call when idle). */
  async answeredByChild() {
    const counts = [];
    for (const child of this.#children) {
      if (child.inFlight) throw new Error('internal: answeredByChild() on a busy pool');
      counts.push(await new Promise((resolve, reject) => this.#send(child, { kind: COUNT, id: this.#nextId++, resolve, reject })));
    }
    return counts;
  }

  get pids() {
    return this.#children.map((c) => c.proc.pid);
  }
  get sentByChild() {
    return this.#children.map((c) => c.sent);
  }
  get repliesByChild() {
    return this.#children.map((c) => c.replies);
  }

  #pump() {
    for (const child of this.#children) {
      if (this.#queue.length === 0) return;
      if (child.inFlight === null) this.#send(child, this.#queue.shift());
    }
  }

  #send(child, request) {
    child.inFlight = request;
    if (request.kind === INVOKE) {
      child.sent++;
      child.write([INVOKE, request.id, request.method, request.args]);
    } else {
      child.write([request.kind, request.id]);
    }
  }

  #onReply(child, message) {
    const request = child.inFlight;
    const [kind, id, value] = message;
    if (request === null || id !== request.id || (kind !== RESULT && kind !== COUNT) || (kind === COUNT) !== (request.kind === COUNT)) {
      const error = new Error(`baseline: reply [${kind}, ${id}] does not answer ${request ? `request ${request.id}` : 'anything'}`);
      this.#onError(error.message);
      request?.reject(error);
      return;
    }
    child.inFlight = null;
    if (kind === RESULT) {
      child.replies++;
      this.completed++;
    }
    request.resolve(value);
    this.#pump();
  }

  /** A channel closed (we closed it, or the child died): nothing waiting on this pool may hang. */
  #onChildGone(child) {
    this.#closed = true;
    const error = new Error('baseline child went away');
    if (child.inFlight) child.inFlight.reject(error);
    child.inFlight = null;
    for (const request of this.#queue.splice(0)) request.reject(error);
  }

  /** Closes every channel; children exit on EOF, and are killed if they have not after 2 s. */
  async close() {
    this.#closed = true;
    this.#server?.close();
    for (const child of this.#children) child.end();
    await Promise.all(
      this.#children.map(async (child) => {
        const timer = setTimeout(() => child.proc.kill('SIGKILL'), 2000);
        await child.exited;
        clearTimeout(timer);
      }),
    );
  }

  /** Last resort (a signal or an error mid-run). */
  killAll() {
    for (const child of this.#children) if (child.proc.exitCode === null && child.proc.signalCode === null) child.proc.kill('SIGKILL');
  }

  get alive() {
    return this.#children.filter((c) => c.proc.exitCode === null && c.proc.signalCode === null).length;
  }
}

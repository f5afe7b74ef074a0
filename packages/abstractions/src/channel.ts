/**
 * A framed, message-oriented view of a socket, used by both ends of the pipe.
 *
 * Inbound: bytes → FrameDecoder → MessagePack → a message array, handed to `onMessage`. Anything
 * malformed (oversize frame, invalid MessagePack, not a message array) is a ProtocolError given to
 * `onError`, after which the channel is destroyed: a byte stream cannot be resynchronised.
 * Outbound: the frames sent in one tick share one write: the socket is corked at the first and
 * uncorked once the tick's work is done (process.nextTick runs after the promise reactions queued
 * meanwhile), so several frames, or the segments of one (framing.ts, Frame), go out in one `writev`.
 *
 * Nothing thrown on the receive path escapes into the socket's event emitter (where it would be an
 * uncaught exception, taking the whole process down for one bad peer): an exception thrown while a
 * handler acts on a message becomes a ProtocolError given to `onError`, like a malformed frame, and a
 * handler that throws in `onError` or `onClose` is reported as a process warning.
 */
import type { Socket } from 'node:net';
import { decodeValue, encodeValue, encodeValueShared, type EncodeOptions } from './codec.js';
import { ProtocolError } from './errors.js';
import { encodeFrame, encodeFrameShared, FrameDecoder, type Frame } from './framing.js';
import type { Message } from './protocol.js';

export interface ChannelHandlers {
  /** Looks at a frame before it is decoded; throws ProtocolError to refuse it (see precheckFrame). */
  inspect?(frame: Buffer): void;
  onMessage(message: Message): void;
  onError(error: Error): void;
  /** Called once, when the socket is closed for any reason (including after onError). */
  onClose(): void;
}

/**
 * Encodes a message into a ready-to-write frame. Throws SerializationError if it cannot be encoded,
 * or as soon as its body passes `options.maxBytes`.
 */
export function frameMessage(message: Message, options?: EncodeOptions): Buffer {
  return encodeFrame(encodeValue(message, options));
}

/**
 * Encodes a message into a frame as frameMessage does, except that large binary data in it
 * (SHARED_MIN_BYTES or more, a Buffer's, Uint8Array's or ArrayBuffer's own bytes) is not copied:
 * the frame is segments around it. Those bytes must not change until the frame is written.
 */
export function frameMessageShared(message: Message, options?: EncodeOptions): Frame {
  return encodeFrameShared(encodeValueShared(message, options));
}

export class Channel {
  readonly #socket: Socket;
  readonly #decoder: FrameDecoder;
  #handlers: ChannelHandlers;
  #closed = false;
  #corked = false;
  readonly #uncork = (): void => {
    if (!this.#corked) return; // flushed early
    this.#corked = false;
    this.#socket.uncork();
  };

  constructor(socket: Socket, maxMessageBytes: number, handlers: ChannelHandlers) {
    this.#socket = socket;
    this.#decoder = new FrameDecoder(maxMessageBytes);
    this.#handlers = handlers;
    socket.setNoDelay?.(true);
    socket.on('data', (chunk: Buffer) => this.#receive(chunk));
    socket.on('error', (error) => this.#fail(error));
    socket.on('close', () => {
      if (this.#closed) return;
      this.#closed = true;
      guarded('onClose', () => this.#handlers.onClose());
    });
  }

  /** Largest frame accepted from the peer; may be changed between frames. */
  get maxMessageBytes(): number {
    return this.#decoder.maxFrameBytes;
  }
  set maxMessageBytes(bytes: number) {
    this.#decoder.maxFrameBytes = bytes;
  }

  get closed(): boolean {
    return this.#closed || this.#socket.destroyed;
  }

  /** Swaps the handlers (the handshake hands the channel over to the worker's owner). */
  setHandlers(handlers: ChannelHandlers): void {
    this.#handlers = handlers;
  }

  send(message: Message): void {
    this.sendFrame(frameMessage(message));
  }

  /**
   * Writes what this tick has sent so far now, rather than at the end of the tick: before code that
   * may not return soon (a worker starting a call) runs, so that no frame waits behind it.
   */
  flush(): void {
    if (this.#corked) this.#uncork();
  }

  /** Writes a frame (with the others of this tick: see above); `flushed` runs once it is written, or could not be. */
  sendFrame(frame: Frame, flushed?: () => void): void {
    if (this.closed) return flushed?.();
    if (!this.#corked) {
      this.#corked = true;
      this.#socket.cork();
      process.nextTick(this.#uncork);
    }
    const done = flushed && ((): void => flushed());
    if (Buffer.isBuffer(frame)) this.#socket.write(frame, done);
    else for (let i = 0; i < frame.length; i++) this.#socket.write(frame[i]!, i === frame.length - 1 ? done : undefined);
  }

  /** Writes a last frame, then closes our side; `done` runs once it is flushed (or could not be). */
  end(frame?: Buffer, done?: () => void): void {
    if (this.closed) {
      done?.();
      return;
    }
    this.#socket.end(frame ?? Buffer.alloc(0), done);
  }

  destroy(): void {
    this.#socket.destroy();
  }

  /** Whether the socket keeps the process's event loop alive (Node's ref/unref); it does by default. */
  holdProcessOpen(hold: boolean): void {
    if (hold) this.#socket.ref();
    else this.#socket.unref();
  }

  #receive(chunk: Buffer): void {
    let frames: Buffer[];
    try {
      frames = this.#decoder.push(chunk);
    } catch (error) {
      this.#fail(error as Error);
      return;
    }
    for (const frame of frames) {
      if (this.#socket.destroyed) return;
      let message: unknown;
      try {
        this.#handlers.inspect?.(frame);
      } catch (error) {
        this.#fail(error instanceof ProtocolError ? error : new ProtocolError(`Inspecting a frame failed: ${errorText(error)}`, { cause: error }));
        return;
      }
      try {
        message = decodeValue(frame);
      } catch (error) {
        this.#fail(new ProtocolError(`Undecodable frame: ${errorText(error)}`, { cause: error }));
        return;
      }
      if (!Array.isArray(message) || typeof message[0] !== 'number') {
        this.#fail(new ProtocolError('Frame is not a protocol message (expected an array starting with its kind)'));
        return;
      }
      try {
        this.#handlers.onMessage(message as Message);
      } catch (error) {
        this.#fail(new ProtocolError(`Handling a message of kind ${String(message[0])} failed: ${errorText(error)}`, { cause: error }));
        return;
      }
    }
  }

  #fail(error: Error): void {
    if (this.#closed) return;
    guarded('onError', () => this.#handlers.onError(error));
    this.#socket.destroy();
  }
}

/** Runs a handler that must not throw; if it does, says so without letting it escape. */
function guarded(what: string, handler: () => void): void {
  try {
    handler();
  } catch (error) {
    process.emitWarning(`process-sandbox: a channel ${what} handler threw: ${errorText(error)}`, { code: 'PROCESS_SANDBOX_CHANNEL_HANDLER' });
  }
}

/** The message of something thrown, read without running any of its code twice or throwing again. */
function errorText(error: unknown): string {
  try {
    return error instanceof Error ? String(error.message) : String(error);
  } catch {
    return Object.prototype.toString.call(error);
  }
}

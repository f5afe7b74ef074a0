/**
 * A framed, message-oriented view of a socket, used by both ends of the pipe.
 *
 * Inbound: bytes → FrameDecoder → MessagePack → a message array, handed to `onMessage`. Anything
 * malformed (oversize frame, invalid MessagePack, not a message array) is a ProtocolError given to
 * `onError`, after which the channel is destroyed: a byte stream cannot be resynchronised.
 *
 * Frames are handled strictly in order. A frame of SLICED_DECODE_BYTES or more is decoded in slices
 * (SlicedDecode, codec-decode.ts) with the event loop turning between them: a 64 MiB frame decoded
 * at once held it for seconds, and the peer may be hostile. While one is decoded, the frames after it
 * wait behind it and the socket is paused, so that a peer cannot pile up bytes meanwhile; other
 * channels keep running. Closed or destroyed meanwhile, the channel drops the decoding and every
 * frame still waiting, and calls no handler but onClose.
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
import { decodeValue, encodeValue, encodeValueShared, SlicedDecode, type EncodeOptions } from './codec.js';
import { ProtocolError } from './errors.js';
import { encodeFrame, encodeFrameShared, FrameDecoder, type Frame } from './framing.js';
import type { Message } from './protocol.js';

/**
 * Frames of this many bytes or more are decoded in slices. Below it a frame decodes in at most a
 * few milliseconds even of the costliest content (measured: ~190 ms/MiB for maps of distinct keys
 * on a loaded 2-core machine, so ~12 ms for 64 KiB), and at once is faster. A sliced frame that
 * decodes within its first slice is handled in the same turn anyway.
 */
export const SLICED_DECODE_BYTES = 64 * 1024;

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
  /** A write failed: nothing more is written (it would only pile up), while reading goes on to EOF. */
  #writeFailed = false;
  readonly #uncork = (): void => {
    if (!this.#corked) return; // flushed early
    this.#corked = false;
    this.#socket.uncork();
  };
  /** Frames received and not yet handled, in order (from #next on), while a frame is decoded in slices. */
  #waiting: Buffer[] = [];
  #next = 0;
  /** The large frame being decoded in slices, if any. */
  #sliced: SlicedDecode | undefined;

  constructor(socket: Socket, maxMessageBytes: number, handlers: ChannelHandlers) {
    this.#socket = socket;
    this.#decoder = new FrameDecoder(maxMessageBytes);
    this.#handlers = handlers;
    socket.setNoDelay?.(true);
    // A failed write (EPIPE or ECONNRESET: the peer is gone) must not cost what the peer wrote
    // before it went. Node destroys a socket whose write fails (and an errored stream reads no
    // more), and the bytes still unread in the kernel went with it: a worker that answered three
    // calls and crashed on the fourth, while the host was writing it calls ahead, had its three
    // replies discarded, and the host blamed the crash on the first of them. So a failed write is
    // reported, nothing more is written, and reading goes on to EOF: the story told in order.
    keepReadingAfterWriteError(socket, (error) => {
      if (this.#writeFailed) return;
      this.#writeFailed = true;
      guarded('onError', () => this.#handlers.onError(error));
    });
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
    if (this.closed || this.#writeFailed) return flushed?.();
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
    if (this.closed || this.#writeFailed) {
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
    if (this.#sliced !== undefined) {
      // Bytes read before the pause took effect: their frames wait behind the one being decoded.
      for (const frame of frames) this.#waiting.push(frame);
      return;
    }
    this.#handleFrames(frames, 0);
  }

  /** Handles frames[from…] in order; stops at a frame decoded in slices, keeping the rest waiting. */
  #handleFrames(frames: Buffer[], from: number): void {
    for (let i = from; i < frames.length; i++) {
      if (this.closed) return;
      const frame = frames[i]!;
      try {
        this.#handlers.inspect?.(frame);
      } catch (error) {
        this.#fail(error instanceof ProtocolError ? error : new ProtocolError(`Inspecting a frame failed: ${errorText(error)}`, { cause: error }));
        return;
      }
      if (frame.length >= SLICED_DECODE_BYTES) {
        const sliced = new SlicedDecode(frame);
        if (!this.#step(sliced)) return;
        if (sliced.done) {
          if (!this.#deliver(sliced.value)) return;
          continue;
        }
        // Paused: the rest waits behind it, and the peer's bytes stay in the kernel meanwhile.
        this.#sliced = sliced;
        this.#waiting = frames;
        this.#next = i + 1;
        this.#socket.pause();
        setImmediate(() => this.#continueSliced());
        return;
      }
      let message: unknown;
      try {
        message = decodeValue(frame);
      } catch (error) {
        this.#fail(new ProtocolError(`Undecodable frame: ${errorText(error)}`, { cause: error }));
        return;
      }
      if (!this.#deliver(message)) return;
    }
  }

  /** One slice of the frame being decoded; false (and the channel failed) if it is malformed. */
  #step(sliced: SlicedDecode): boolean {
    try {
      sliced.step();
      return true;
    } catch (error) {
      this.#fail(new ProtocolError(`Undecodable frame: ${errorText(error)}`, { cause: error }));
      return false;
    }
  }

  #continueSliced(): void {
    const sliced = this.#sliced!;
    if (this.closed) {
      // Closed meanwhile: nothing more is handled, and the decoding is simply dropped.
      this.#sliced = undefined;
      this.#waiting = [];
      return;
    }
    if (!this.#step(sliced)) return;
    if (!sliced.done) {
      setImmediate(() => this.#continueSliced());
      return;
    }
    this.#sliced = undefined;
    const waiting = this.#waiting;
    const next = this.#next;
    this.#waiting = [];
    if (!this.#deliver(sliced.value)) return;
    this.#handleFrames(waiting, next);
    if (this.#sliced === undefined && !this.closed) this.#socket.resume();
  }

  /** Hands a decoded frame to onMessage; false if the channel failed instead. */
  #deliver(message: unknown): boolean {
    if (this.closed) return false;
    if (!Array.isArray(message) || typeof message[0] !== 'number') {
      this.#fail(new ProtocolError('Frame is not a protocol message (expected an array starting with its kind)'));
      return false;
    }
    try {
      this.#handlers.onMessage(message as Message);
    } catch (error) {
      this.#fail(new ProtocolError(`Handling a message of kind ${String(message[0])} failed: ${errorText(error)}`, { cause: error }));
      return false;
    }
    return true;
  }

  #fail(error: Error): void {
    this.#sliced = undefined;
    this.#waiting = [];
    if (this.#closed) return;
    guarded('onError', () => this.#handlers.onError(error));
    this.#socket.destroy();
  }
}

/**
 * Turns a failed write of `socket` into a call of `onWriteError` and a write that reports success
 * to the stream, which therefore stays readable (see the constructor). Writable's `_write` and
 * `_writev` are the stream's own write path; only their callbacks are wrapped.
 */
function keepReadingAfterWriteError(socket: Socket, onWriteError: (error: Error) => void): void {
  type Callback = (error?: Error | null) => void;
  const writable = socket as unknown as {
    _write: (chunk: unknown, encoding: BufferEncoding, callback: Callback) => void;
    _writev?: ((chunks: unknown[], callback: Callback) => void) | null;
  };
  const swallow =
    (callback: Callback): Callback =>
    (error) => {
      if (error) onWriteError(error);
      callback();
    };
  const write = writable._write;
  writable._write = (chunk, encoding, callback) => write.call(socket, chunk, encoding, swallow(callback));
  const writev = writable._writev;
  if (writev) writable._writev = (chunks, callback) => writev.call(socket, chunks, swallow(callback));
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

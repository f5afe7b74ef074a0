/**
 * A framed, message-oriented view of a socket, used by both ends of the pipe.
 *
 * Inbound: bytes → FrameDecoder → MessagePack → a message array, handed to `onMessage`. Anything
 * malformed (oversize frame, invalid MessagePack, not a message array) is a ProtocolError given to
 * `onError`, after which the channel is destroyed: a byte stream cannot be resynchronised.
 * Outbound: one `write` per frame.
 */
import type { Socket } from 'node:net';
import { decodeValue, encodeValue } from './codec.js';
import { ProtocolError } from './errors.js';
import { encodeFrame, FrameDecoder } from './framing.js';
import type { Message } from './protocol.js';

export interface ChannelHandlers {
  onMessage(message: Message): void;
  onError(error: Error): void;
  /** Called once, when the socket is closed for any reason (including after onError). */
  onClose(): void;
}

/** Encodes a message into a ready-to-write frame. Throws SerializationError if it cannot be encoded. */
export function frameMessage(message: Message): Buffer {
  return encodeFrame(encodeValue(message));
}

export class Channel {
  readonly #socket: Socket;
  readonly #decoder: FrameDecoder;
  #handlers: ChannelHandlers;
  #closed = false;

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
      this.#handlers.onClose();
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

  sendFrame(frame: Buffer): void {
    if (!this.closed) this.#socket.write(frame);
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
        message = decodeValue(frame);
      } catch (error) {
        this.#fail(new ProtocolError(`Undecodable frame: ${(error as Error).message}`, { cause: error }));
        return;
      }
      if (!Array.isArray(message) || typeof message[0] !== 'number') {
        this.#fail(new ProtocolError('Frame is not a protocol message (expected an array starting with its kind)'));
        return;
      }
      this.#handlers.onMessage(message as Message);
    }
  }

  #fail(error: Error): void {
    if (this.#closed) return;
    this.#handlers.onError(error);
    this.#socket.destroy();
  }
}

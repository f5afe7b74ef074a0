/**
 * Frames: a uint32 big-endian length prefix followed by that many bytes of MessagePack.
 *
 * The decoder is streaming: a socket may deliver half a frame, or three and a half at once.
 * It keeps the chunks it was given and copies only once a whole frame is there (no concat per
 * chunk), returns a frame that lies inside one chunk without copying at all, and refuses a
 * frame whose prefix exceeds the cap before allocating anything for it.
 */
import type { SharedEncoding } from './codec.js';
import { ProtocolError } from './errors.js';

export const FRAME_HEADER_BYTES = 4;
/** The length prefix is a uint32; nothing larger can ever be framed. */
export const MAX_FRAME_BYTES = 0xffff_ffff;

/** One buffer holding the prefix and the body, so the frame goes out in one write. */
export function encodeFrame(body: Uint8Array): Buffer {
  const frame = Buffer.allocUnsafe(FRAME_HEADER_BYTES + body.byteLength);
  frame.writeUInt32BE(body.byteLength, 0);
  frame.set(body, FRAME_HEADER_BYTES);
  return frame;
}

/**
 * A frame ready to write: one buffer, or segments written one after the other (the length prefix
 * and the encoded bytes around large binary data, and that data itself, not copied).
 */
export type Frame = Buffer | readonly Buffer[];

/** The frame of a value encoded with shared parts (encodeValueShared): one buffer when nothing is shared. */
export function encodeFrameShared(encoding: SharedEncoding): Frame {
  const { bytes, shared, sharedBytes } = encoding;
  if (shared.length === 0) return encodeFrame(bytes);
  // The encoded bytes around the shared parts are copied (they live in the encoder's buffer); the
  // shared parts are not.
  const own = Buffer.allocUnsafe(FRAME_HEADER_BYTES + bytes.byteLength);
  own.writeUInt32BE(bytes.byteLength + sharedBytes, 0);
  own.set(bytes, FRAME_HEADER_BYTES);
  const segments: Buffer[] = [];
  let from = 0;
  for (const part of shared) {
    const to = FRAME_HEADER_BYTES + part.at;
    if (to > from) segments.push(own.subarray(from, to));
    segments.push(Buffer.isBuffer(part.bytes) ? part.bytes : Buffer.from(part.bytes.buffer, part.bytes.byteOffset, part.bytes.byteLength));
    from = to;
  }
  if (own.length > from) segments.push(own.subarray(from));
  return segments;
}

export class FrameTooLargeError extends ProtocolError {
  constructor(
    readonly size: number,
    readonly limit: number,
  ) {
    super(`Frame of ${size} bytes exceeds the limit of ${limit} bytes (maxMessageBytes)`);
  }
}

export class FrameDecoder {
  /** Largest body accepted; checked against each length prefix as it is read. */
  maxFrameBytes: number;
  #chunks: Buffer[] = [];
  #buffered = 0;
  /** Body length of the frame being assembled, or -1 while its header is incomplete. */
  #bodyLength = -1;

  constructor(maxFrameBytes: number) {
    this.maxFrameBytes = maxFrameBytes;
  }

  /** Bytes received but not yet returned as a frame. */
  get bufferedBytes(): number {
    return this.#buffered;
  }

  /**
   * Feeds a chunk; returns the frames it completed, in order. Throws FrameTooLargeError (after
   * which the decoder is unusable: the stream cannot be resynchronised) on an oversize prefix.
   */
  push(chunk: Buffer): Buffer[] {
    const frames: Buffer[] = [];
    if (chunk.length > 0) {
      this.#chunks.push(chunk);
      this.#buffered += chunk.length;
    }
    for (;;) {
      if (this.#bodyLength < 0) {
        if (this.#buffered < FRAME_HEADER_BYTES) break;
        const size = this.#take(FRAME_HEADER_BYTES).readUInt32BE(0);
        if (size > this.maxFrameBytes) {
          this.#chunks = [];
          this.#buffered = 0;
          throw new FrameTooLargeError(size, this.maxFrameBytes);
        }
        this.#bodyLength = size;
      }
      if (this.#buffered < this.#bodyLength) break;
      frames.push(this.#take(this.#bodyLength));
      this.#bodyLength = -1;
    }
    return frames;
  }

  #take(n: number): Buffer {
    this.#buffered -= n;
    const first = this.#chunks[0];
    if (first !== undefined && first.length >= n) {
      if (first.length === n) this.#chunks.shift();
      else this.#chunks[0] = first.subarray(n);
      return first.subarray(0, n);
    }
    const out = Buffer.allocUnsafe(n);
    let offset = 0;
    // By index, dropping the used chunks with one splice: a shift() per chunk would make a frame
    // that arrives a byte at a time quadratic to assemble.
    let used = 0;
    while (offset < n) {
      const chunk = this.#chunks[used]!;
      const k = Math.min(chunk.length, n - offset);
      chunk.copy(out, offset, 0, k);
      offset += k;
      if (k === chunk.length) used++;
      else this.#chunks[used] = chunk.subarray(k);
    }
    this.#chunks.splice(0, used);
    return out;
  }
}

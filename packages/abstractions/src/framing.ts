/**
 * Frames: a uint32 big-endian length prefix followed by that many bytes of MessagePack.
 *
 * The decoder is streaming: a socket may deliver half a frame, or three and a half at once.
 * It keeps the chunks it was given and copies only once a whole frame is there (no concat per
 * chunk), returns a frame that lies inside one chunk without copying at all, and refuses a
 * frame whose prefix exceeds the cap before allocating anything for it. A large frame (1 MiB or
 * more) is copied into its buffer as it arrives, once an eighth of it is there: copied in one step
 * when complete, a 64 MiB frame held the event loop ~80 ms (a fresh 64 MiB buffer, every page of it
 * faulted in by the copy). Waiting for the eighth keeps a peer from making the host allocate more
 * than eight times what it sent.
 */
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

export class FrameTooLargeError extends ProtocolError {
  constructor(
    readonly size: number,
    readonly limit: number,
  ) {
    super(`Frame of ${size} bytes exceeds the limit of ${limit} bytes (maxMessageBytes)`);
  }
}

/** Frames at least this large are assembled as they arrive (see above). */
const ASSEMBLED_AS_THEY_ARRIVE = 1024 * 1024;

export class FrameDecoder {
  /** Largest body accepted; checked against each length prefix as it is read. */
  maxFrameBytes: number;
  #chunks: Buffer[] = [];
  #buffered = 0;
  /** Body length of the frame being assembled, or -1 while its header is incomplete. */
  #bodyLength = -1;
  /** A large frame's buffer, filled as its chunks arrive, and how much of it is filled. */
  #assembly: Buffer | undefined;
  #filled = 0;

  constructor(maxFrameBytes: number) {
    this.maxFrameBytes = maxFrameBytes;
  }

  /** Bytes received but not yet returned as a frame. */
  get bufferedBytes(): number {
    return this.#buffered + this.#filled;
  }

  /**
   * Feeds a chunk; returns the frames it completed, in order. Throws FrameTooLargeError (after
   * which the decoder is unusable: the stream cannot be resynchronised) on an oversize prefix.
   */
  push(chunk: Buffer): Buffer[] {
    const frames: Buffer[] = [];
    if (this.#assembly !== undefined) {
      const assembly = this.#assembly;
      const take = Math.min(chunk.length, assembly.length - this.#filled);
      chunk.copy(assembly, this.#filled, 0, take);
      this.#filled += take;
      if (this.#filled < assembly.length) return frames;
      frames.push(assembly);
      this.#assembly = undefined;
      this.#filled = 0;
      this.#bodyLength = -1;
      chunk = chunk.subarray(take);
    }
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
      if (this.#buffered < this.#bodyLength) {
        if (this.#bodyLength >= ASSEMBLED_AS_THEY_ARRIVE && this.#buffered >= this.#bodyLength / 8) {
          const assembly = Buffer.allocUnsafe(this.#bodyLength);
          for (const part of this.#chunks) this.#filled += part.copy(assembly, this.#filled);
          this.#assembly = assembly;
          this.#chunks = [];
          this.#buffered = 0;
        }
        break;
      }
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

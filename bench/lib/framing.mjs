/**
 * The raw baseline's framing: a uint32 big-endian length prefix, then a MessagePack body, as the
 * library frames its messages (same library, `@msgpack/msgpack`, resolved from the repository root).
 */
import { Decoder, Encoder } from '@msgpack/msgpack';

// Message shapes mirror the library's protocol: Invoke [3, id, method, args], Result [4, id, value].
export const INVOKE = 3;
export const RESULT = 4;
/** Baseline only: "how many requests did you answer?" → [COUNT, id, answered]. */
export const COUNT = 9;

const encoder = new Encoder();
const decoder = new Decoder();

/** One buffer: uint32 BE length, then the MessagePack body (one write per frame, as the library does). */
export function frame(message) {
  const body = encoder.encodeSharedRef(message);
  const out = Buffer.allocUnsafe(4 + body.byteLength);
  out.writeUInt32BE(body.byteLength, 0);
  out.set(body, 4);
  return out;
}

/** MessagePack bin comes back as a Uint8Array view of the frame (no copy). */
export function decodeFrame(bytes) {
  return decoder.decode(bytes);
}

/**
 * A streaming frame reader: a chunk may hold part of a frame, or several frames and a part.
 *
 * Frames that lie inside one chunk are handed out as views of it (no copy). A frame that spans
 * chunks is assembled once, when its last byte has arrived: the chunks are kept in a list meanwhile
 * (no Buffer.concat per chunk, which made a 16 MiB frame arriving in 64 KiB chunks quadratic).
 */
export class FrameReader {
  #chunks = [];
  #buffered = 0;
  /** Body length of the frame being assembled, or -1 while its header is incomplete. */
  #need = -1;

  constructor(onFrame) {
    this.onFrame = onFrame;
  }

  push(chunk) {
    if (this.#chunks.length === 0 && this.#need < 0) {
      // Fast path, the common case for small messages: whole frames straight out of this chunk.
      let offset = 0;
      while (chunk.length - offset >= 4) {
        const size = chunk.readUInt32BE(offset);
        if (chunk.length - offset - 4 < size) break;
        this.onFrame(chunk.subarray(offset + 4, offset + 4 + size));
        offset += 4 + size;
      }
      if (offset === chunk.length) return;
      chunk = chunk.subarray(offset);
    }
    this.#chunks.push(chunk);
    this.#buffered += chunk.length;
    for (;;) {
      if (this.#need < 0) {
        if (this.#buffered < 4) return;
        this.#need = this.#take(4).readUInt32BE(0);
      }
      if (this.#buffered < this.#need) return;
      const body = this.#take(this.#need);
      this.#need = -1;
      this.onFrame(body);
    }
  }

  #take(n) {
    this.#buffered -= n;
    const first = this.#chunks[0];
    if (first.length >= n) {
      if (first.length === n) this.#chunks.shift();
      else this.#chunks[0] = first.subarray(n);
      return first.subarray(0, n);
    }
    const out = Buffer.allocUnsafe(n);
    let offset = 0;
    let used = 0;
    while (offset < n) {
      const chunk = this.#chunks[used];
      const k = Math.min(chunk.length, n - offset);
      chunk.copy(out, offset, 0, k);
      offset += k;
      if (k === chunk.length) used++;
      else this.#chunks[used] = chunk.subarray(k);
    }
    this.#chunks.splice(0, used);
    return out;
  }

  get buffered() {
    return this.#buffered;
  }
}

/** The reader must hand out exactly the frames written, however the stream is cut. Throws if not. */
export function selfTestFrameReader() {
  const messages = Array.from({ length: 50 }, (_, i) => [INVOKE, i, 'add', [i, 'x'.repeat(i * 7)]]);
  messages.push([RESULT, 50, new Uint8Array(70_000).fill(7)]);
  const stream = Buffer.concat(messages.map(frame));
  const cuts = [[1], [3], [4], [5], [17], [65536], [stream.length], [2, 9, 1, 300, 4, 4, 64]];
  // (the holder's own value: JSON.stringify has already turned a Buffer into { type, data } by then)
  const text = (value) =>
    JSON.stringify(value, function (key, v) {
      const raw = this[key];
      return raw instanceof Uint8Array ? `bin:${raw.length}:${raw.reduce((a, b) => a + b, 0)}` : v;
    });
  for (const sizes of cuts) {
    const seen = [];
    const reader = new FrameReader((bytes) => seen.push(decodeFrame(bytes)));
    for (let offset = 0, k = 0; offset < stream.length; k++) {
      const size = sizes[k % sizes.length];
      // subarray of a copy, so the reader cannot rely on chunks sharing one buffer
      reader.push(Buffer.from(stream.subarray(offset, offset + size)));
      offset += size;
    }
    if (reader.buffered !== 0 || text(seen) !== text(messages)) {
      throw new Error(`FrameReader self-test failed for chunk sizes ${sizes}`);
    }
  }
}

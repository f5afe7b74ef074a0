/**
 * The decoding half of the value codec (see codec.ts for the format), in two forms:
 *
 *   decodeValue   all at once, for the frames that make up nearly all traffic;
 *   SlicedDecode  the same decoding in slices of bounded time, for large frames. A 64 MiB frame of
 *                 small values took seconds to decode, during which the host's event loop (every
 *                 timer, every other pool) stood still; sliced, the loop turns between slices.
 *
 * Both are @msgpack/msgpack's Decoder, driven through its private members (pinned version, checked
 * at load by codec-check.ts), with the same checks: depth counted across extensions, declared
 * lengths checked against the bytes left, containers counted. They give the same values and the
 * same errors for the same bytes (test/unit-sliced-decode.test.mjs checks it on arbitrary values).
 *
 * How a slice pauses: the library's decoder keeps its whole state (the stack of half-built arrays and
 * maps, the position, a head byte already read) in the Decoder object, and its decodeAsync already
 * resumes after running out of input. Here the decoder always has all its input, and pauses on
 * purpose: every value's first byte passes readHeadByte, which, every so many values or bytes, looks
 * at the clock and throws PAUSE when the slice is spent; the next slice calls doDecodeSync again and
 * it carries on from the same point. What a value holds inside an extension (a Map's entries, an
 * Error's fields) is decoded one level down, by another Decoder; each level keeps its progress, so a
 * pause deep inside a Set inside a Map resumes there. What no pause can split is bounded: a string
 * is decoded in pieces, filling a Map or a Set pauses too, and the other extensions are a copy at
 * most (typed arrays), a capped BigInt or a capped RegExp.
 */
import { TextDecoder } from 'node:util';
import { Decoder } from '@msgpack/msgpack';
import { extensions } from './codec-extensions.js';
import { malformed, MAX_ARRAY_ITEMS, MAX_DECODED_CONTAINERS, MAX_DEPTH, MAX_RECORD_ENTRIES } from './codec-limits.js';
import { LARGE_RECORD_KEYS, markLargeRecord } from './decoded-records.js';
import { SerializationError } from './errors.js';

/** Time one slice may take, in milliseconds (it may run over by one indivisible step, see above). */
export const DECODE_SLICE_MS = 10;
/** Values decoded between two looks at the clock… */
const VALUES_PER_CHECK = 256;
/** …or bytes, whichever comes first (a few large values cost more than many small ones). */
const BYTES_PER_CHECK = 64 * 1024;
/** Strings longer than this (in bytes) are decoded in pieces of this size when sliced. */
const TEXT_PIECE_BYTES = 256 * 1024;
/** Items of a Map or a Set added between two looks at the clock. */
const ITEMS_PER_CHECK = 2048;
/**
 * Arrays declaring more items than this are grown as they fill, not allocated at their declared
 * length at once: `new Array(n)` fills n slots in one step (~240 ms for 32 Mi on a loaded machine),
 * and past 32 Mi makes a dictionary-mode array, seconds to fill, rehashed in steps of ~1 s.
 */
const PREALLOCATED_ITEMS = 64 * 1024;
/**
 * The members of @msgpack/msgpack's Decoder that the codec replaces, calls or reads. They are
 * private in its typings, so the version is pinned exactly (package.json) and checked at load.
 */
export interface DecoderInternals {
  readHeadByte(): number;
  pushArrayState(size: number): void;
  pushMapState(size: number): void;
  decodeExtension(size: number, headOffset: number): unknown;
  decodeUtf8String(byteLength: number, headerOffset: number): string;
  doDecodeSync(): unknown;
  reinitializeState(): void;
  setBuffer(bytes: Uint8Array): void;
  hasRemaining(size: number): boolean;
  createExtraByteError(pos: number): Error;
  stack: { length: number; top(): { array?: unknown[]; map?: Record<string, unknown>; size: number } | undefined };
  pos: number;
  /** -1 when the next value's first byte is still to be read. */
  headByte: number;
  view: DataView;
  bytes: Uint8Array;
}

/** A decoder with the codec's checks, belonging to one run. */
interface LevelDecoder extends DecoderInternals {
  /** Position at which this decoder next looks at the clock (sliced runs only). */
  checkAt: number;
}

const HEAD_BYTE_REQUIRED = -1;
const IDLE = 0;
const PAUSED = 1;
const DONE = 2;

/** What one nesting level (the frame, or an extension's contents) has done so far. */
interface Level {
  decoder: LevelDecoder;
  state: typeof IDLE | typeof PAUSED | typeof DONE;
  /** Depth of this level's outermost value, counted from the outermost value of all. */
  base: number;
  /** The decoded contents, once DONE, until the extension holding them is built. */
  value: unknown;
  /** A Map or Set being filled from `value`: the next item. */
  fill: { target: unknown; next: number } | undefined;
  /** A long string being decoded in pieces. */
  text: { start: number; decoder: TextDecoder; parts: string[]; done: number } | undefined;
}

/** Thrown through the decoder when a slice is spent; never escapes this module. */
const PAUSE = Object.freeze({ pause: true });

/** One outermost value being decoded: its levels and its budgets. */
class Run {
  readonly levels: Level[] = [];
  /** Levels entered right now (the level being decoded is levels[depth - 1]). */
  depth = 0;
  /** Depth of the current level's outermost value. */
  base = 0;
  containers = 0;
  countdown = Infinity;
  sliceEnd = Infinity;

  constructor(readonly sliced: boolean) {}

  /** Called every VALUES_PER_CHECK values or BYTES_PER_CHECK bytes; pauses if the slice is spent. */
  check(decoder: LevelDecoder): void {
    this.countdown = VALUES_PER_CHECK;
    decoder.checkAt = decoder.pos + BYTES_PER_CHECK;
    if (this.timeUp()) throw PAUSE;
  }

  timeUp(): boolean {
    return this.sliced && performance.now() >= this.sliceEnd;
  }

  level(index: number): Level {
    return (this.levels[index] ??= { decoder: createDecoder(this), state: IDLE, base: 0, value: undefined, fill: undefined, text: undefined });
  }
}

/** The run whose decoder is running now (each slice runs to its end before any other code). */
let active: Run;

function createDecoder(run: Run): LevelDecoder {
  const decoder = new Decoder({ extensionCodec: extensions, useBigInt64: false }) as unknown as LevelDecoder;
  decoder.checkAt = Infinity;
  const { readHeadByte, pushArrayState, pushMapState, decodeExtension, decodeUtf8String } = decoder;
  // A container's items take at least a byte each (a map entry two): a declared length beyond the
  // bytes left is a lie, refused before `new Array(length)`. Depth is counted from the outermost
  // value, across extensions, and refused past MAX_DEPTH before anything is built for it.
  const check = (self: LevelDecoder, size: number, bytesPerItem: number): void => {
    if (run.base + self.stack.length + 1 >= MAX_DEPTH) throw malformed(`nested deeper than ${MAX_DEPTH} levels`);
    if (size * bytesPerItem > self.view.byteLength - self.pos) throw malformed(`a container declares ${size} items with ${self.view.byteLength - self.pos} bytes left`);
  };
  decoder.pushArrayState = function (this: LevelDecoder, size: number) {
    check(this, size, 1);
    if (size > MAX_ARRAY_ITEMS) throw malformed(`an array declares ${size} items, over the limit of ${MAX_ARRAY_ITEMS}`);
    if (size <= PREALLOCATED_ITEMS) return pushArrayState.call(this, size);
    // Pushed empty, then told its size: it is filled in order from index 0, so it grows as a plain
    // array (same result, no allocation of the declared length up front).
    pushArrayState.call(this, 0);
    this.stack.top()!.size = size;
  };
  decoder.pushMapState = function (this: LevelDecoder, size: number) {
    check(this, size, 2);
    if (size > MAX_RECORD_ENTRIES) throw malformed(`a record declares ${size} entries, over the limit of ${MAX_RECORD_ENTRIES}`);
    pushMapState.call(this, size);
    if (size > LARGE_RECORD_KEYS) markLargeRecord(this.stack.top()!.map!);
  };
  // Every value's first byte passes here once, before it is read: the one place where the decoder's
  // state is whole (the value before it finished, this one not begun), so the place to pause. Count
  // the containers (fixmap, fixarray, array16/32, map16/32), empty ones included, which never reach
  // push*State.
  const countContainer = (head: number): number => {
    if (((head & 0xe0) === 0x80 || (head >= 0xdc && head <= 0xdf)) && ++run.containers > MAX_DECODED_CONTAINERS) {
      throw malformed(`more than ${MAX_DECODED_CONTAINERS} arrays and maps in one value`);
    }
    return head;
  };
  // (Decoding at once never pauses, so never resumes a value: it needs neither check, and most
  // frames are decoded at once.)
  // (The same own members, in the same order, on every decoder: one hidden class for the library's
  // methods to meet, as before there were two kinds of decoder.)
  if (!run.sliced) {
    decoder.readHeadByte = function (this: LevelDecoder) {
      return countContainer(readHeadByte.call(this));
    };
    decoder.decodeExtension = decodeExtension;
    decoder.decodeUtf8String = decodeUtf8String;
    return decoder;
  }
  decoder.readHeadByte = function (this: LevelDecoder) {
    if (this.headByte !== HEAD_BYTE_REQUIRED) return readHeadByte.call(this); // resuming a value begun before a pause
    if (--run.countdown < 0 || this.pos >= this.checkAt) run.check(this);
    return countContainer(readHeadByte.call(this));
  };
  // A pause inside an extension's contents: the extension is read again on resuming (its head byte
  // is kept, its position put back), and its contents' level carries on where it paused.
  decoder.decodeExtension = function (this: LevelDecoder, size: number, headOffset: number) {
    const pos = this.pos;
    try {
      const value = decodeExtension.call(this, size, headOffset);
      const contents = run.levels[run.depth];
      if (contents !== undefined) Object.assign(contents, { state: IDLE, value: undefined, fill: undefined });
      return value;
    } catch (error) {
      if (error === PAUSE) this.pos = pos;
      throw error;
    }
  };
  // A long string in pieces: a 64 MiB string of accented letters took ~250 ms in one piece. A
  // streaming TextDecoder gives the same text as the library's one-piece TextDecoder.
  decoder.decodeUtf8String = function (this: LevelDecoder, byteLength: number, headerOffset: number) {
    if (byteLength <= TEXT_PIECE_BYTES || this.bytes.byteLength < this.pos + headerOffset + byteLength) return decodeUtf8String.call(this, byteLength, headerOffset);
    const level = run.levels[run.depth - 1]!;
    const start = this.pos + headerOffset;
    if (level.text?.start !== start) level.text = { start, decoder: new TextDecoder(), parts: [], done: 0 };
    const text = level.text;
    for (let pieces = 0; text.done < byteLength; pieces++) {
      if (pieces > 0 && run.timeUp()) throw PAUSE; // at least one piece per slice
      const end = start + Math.min(text.done + TEXT_PIECE_BYTES, byteLength);
      text.parts.push(text.decoder.decode(this.bytes.subarray(start + text.done, end), { stream: true }));
      text.done = end - start;
    }
    level.text = undefined;
    this.pos += headerOffset + byteLength;
    // Concatenated, not joined: V8 links the pieces (a rope) in constant time each, and copies them
    // into one flat string only when its characters are first read, by whoever reads them. A join
    // here copied 128 MB in one step for a 64 MiB string, and made the heap collect at once.
    let whole = '';
    for (const piece of text.parts) whole += piece;
    return whole + text.decoder.decode();
  };
  return decoder;
}

/** Decodes (or, after a pause, carries on decoding) `bytes` as the next level of the active run. */
function decodeLevel(bytes: Uint8Array, base: number): unknown {
  const run = active;
  const index = run.depth;
  if (index >= MAX_DEPTH || base >= MAX_DEPTH) throw malformed(`nested deeper than ${MAX_DEPTH} levels`);
  const level = run.level(index);
  if (level.state === DONE) return level.value; // decoded before a pause in what the extension builds from it
  const decoder = level.decoder;
  if (level.state === IDLE) {
    decoder.reinitializeState();
    decoder.setBuffer(bytes);
    decoder.checkAt = run.sliced ? BYTES_PER_CHECK : Infinity;
    level.base = base;
  }
  const savedBase = run.base;
  run.base = level.base;
  run.depth++;
  try {
    const value = decoder.doDecodeSync();
    if (decoder.hasRemaining(1)) throw decoder.createExtraByteError(decoder.pos);
    if (run.sliced && index > 0) {
      level.state = DONE;
      level.value = value;
    }
    return value;
  } catch (error) {
    level.state = error === PAUSE ? PAUSED : IDLE;
    throw error;
  } finally {
    run.depth--;
    run.base = savedBase;
  }
}

/** An extension's contents (a Map's entries, an Error's fields), one level down. */
export function decodeNested(data: Uint8Array): unknown {
  const run = active;
  const outer = run.levels[run.depth - 1]!;
  return decodeLevel(data, run.base + outer.decoder.stack.length + 1);
}

/**
 * Makes a Map or a Set and adds `count` items to it (`add(target, i)` for i = 0, stride, 2 × stride…);
 * in a sliced run, pausing when the slice is spent and carrying on from the same item after. Called
 * by an extension right after decodeNested, whose level holds the progress.
 */
export function fillInSlices<T>(make: () => T, count: number, stride: number, add: (target: T, i: number) => void): T {
  const run = active;
  if (!run.sliced) {
    const target = make();
    for (let i = 0; i < count; i += stride) add(target, i);
    return target;
  }
  return fillSliced(run, make, count, stride, add);
}

/** Whether the decoding under way is sliced (an extension may then build what it makes faster at once). */
export function decodingInSlices(): boolean {
  return active.sliced;
}

function fillSliced<T>(run: Run, make: () => T, count: number, stride: number, add: (target: T, i: number) => void): T {
  const level = run.levels[run.depth]!;
  const fill = (level.fill ??= { target: make(), next: 0 });
  const target = fill.target as T;
  for (let i = fill.next, n = 0; i < count; i += stride) {
    if (++n % ITEMS_PER_CHECK === 0 && run.timeUp()) {
      fill.next = i;
      throw PAUSE;
    }
    add(target, i);
  }
  return target;
}

/** A plain Uint8Array view, so that MessagePack bin decodes as Uint8Array even when the frame is a Buffer. */
function plainView(bytes: Uint8Array): Uint8Array {
  return bytes.constructor === Uint8Array ? bytes : new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

function decodingError(error: unknown): SerializationError {
  if (error instanceof SerializationError) return error;
  return malformed(error instanceof Error ? error.message : 'unknown error');
}

/** The run of decodeValue, reused: it never pauses, so it is always whole between calls. */
const syncRun = new Run(false);

/**
 * Decodes one value. Binary data in the result shares memory with `bytes`. Throws SerializationError
 * ("Cannot decode value: …") for anything malformed, over a limit, or nested too deep.
 */
export function decodeValue(bytes: Uint8Array): unknown {
  const saved = active;
  active = syncRun;
  syncRun.containers = 0; // one budget per outermost value, extensions included
  syncRun.depth = 0;
  syncRun.base = 0;
  try {
    return decodeLevel(plainView(bytes), 0);
  } catch (error) {
    throw decodingError(error);
  } finally {
    active = saved;
  }
}

/**
 * One value decoded in slices: each step() decodes for about `sliceMs` and returns; the caller lets
 * its event loop turn between steps. Same value and same errors as decodeValue. Drop the object to
 * abandon the decoding: it holds no timer and no callback.
 */
export class SlicedDecode {
  readonly #bytes: Uint8Array;
  readonly #run = new Run(true);
  readonly #sliceMs: number;
  #value: unknown;
  #error: SerializationError | undefined;
  #done = false;
  /** Slices run so far. */
  slices = 0;

  constructor(bytes: Uint8Array, sliceMs = DECODE_SLICE_MS) {
    this.#bytes = plainView(bytes);
    this.#sliceMs = sliceMs;
  }

  get done(): boolean {
    return this.#done;
  }

  /** The decoded value, once done. */
  get value(): unknown {
    return this.#value;
  }

  /** Decodes for one slice. True when the value is decoded; throws SerializationError like decodeValue. */
  step(): boolean {
    if (this.#error !== undefined) throw this.#error;
    if (this.#done) return true;
    const saved = active;
    active = this.#run;
    this.slices++;
    this.#run.sliceEnd = performance.now() + this.#sliceMs;
    this.#run.countdown = VALUES_PER_CHECK;
    try {
      this.#value = decodeLevel(this.#bytes, 0);
      this.#done = true;
      return true;
    } catch (error) {
      if (error === PAUSE) return false;
      this.#error = decodingError(error); // a failed decoding does not resume
      throw this.#error;
    } finally {
      active = saved;
    }
  }
}

/** Decodes in slices, letting the event loop turn (setImmediate) between them. For tests and benchmarks. */
export async function decodeValueInSlices(bytes: Uint8Array, sliceMs = DECODE_SLICE_MS): Promise<unknown> {
  const decode = new SlicedDecode(bytes, sliceMs);
  while (!decode.step()) await new Promise((resolve) => setImmediate(resolve));
  return decode.value;
}

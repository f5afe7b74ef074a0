/**
 * The value codec: MessagePack plus extension types for what JSON (and plain MessagePack) loses.
 *
 *   ext 0  undefined          (inside objects and arrays too, where MessagePack would give null)
 *   ext 1  BigInt             (a sign byte, 0 or 1, then the magnitude's bytes, big-endian, no leading zero)
 *   ext 2  Map                (array of alternating keys and values)
 *   ext 3  Set                (array of values)
 *   ext 4  Error              (see wire-error.ts)
 *   ext 5  Buffer             (raw bytes; decoded as a Buffer that shares the frame's memory)
 *   ext 6  other typed arrays (one byte naming the type, then the raw bytes) and DataView
 *   ext 7  ArrayBuffer
 *   ext 8  RegExp             ([source, flags])
 *   ext 9  Invalid Date       (empty)
 *   ext -1 Date               (MessagePack's own timestamp)
 *   bin    Uint8Array         (decoded as a Uint8Array that shares the frame's memory)
 *
 * Both directions are bounded, because the other side may be hostile: nesting (MAX_DEPTH, counted
 * across extensions), BigInt size (MAX_BIGINT_BYTES, and its encoding is linear: decimal text took
 * 10–17 s to parse at tens of millions of digits), declared lengths (never more items than bytes
 * left), and, when asked, the encoded size (refused as soon as it is passed, not after).
 *
 * What cannot cross raises SerializationError naming where it is; anything malformed on decoding
 * raises SerializationError too ("Cannot decode value: …"), which the channel turns into a
 * ProtocolError.
 */
import { decodeTimestampExtension, Decoder, encodeTimestampExtension, Encoder, ExtensionCodec } from '@msgpack/msgpack';
import { bigIntBytes, decodeBigInt, encodeBigInt, MAX_BIGINT_BYTES } from './bigint-ext.js';
import { SerializationError } from './errors.js';
import { describePath, findCycle, findRefused, formatPath, type PathKey } from './value-paths.js';
import { fromWireError, isError, toWireError } from './wire-error.js';

export { describePath, formatPath, PathSlot, type PathKey } from './value-paths.js';
export { MAX_BIGINT_BYTES } from './bigint-ext.js';

/** Deepest nesting of a value, counted across Maps, Sets, Errors and the rest (cycles show up as this). */
export const MAX_DEPTH = 100;
/**
 * Arrays and maps one decoded value may hold, nested ones included. A container costs one byte on
 * the wire and 40–64 bytes of heap: a frame of empty maps multiplied the host's memory 64 times (a
 * 64 MiB frame: 4 GiB, and ~7 s of decoding). Scalars cost at most 8 times their bytes, like honest
 * data. 2 Mi containers (a result of two million rows) is at most ~128 MiB of heap.
 */
export const MAX_DECODED_CONTAINERS = 2 * 1024 * 1024;

export interface EncodeOptions {
  /** Refuse the value as soon as its encoding passes this many bytes. */
  maxBytes?: number;
  /** How the limit is called in the error message (e.g. 'maxMessageBytes'). */
  limitName?: string;
  /** Names a place in the value for error messages; `root` is the value given to encodeValue. Default `<value>[0].key`. */
  describePath?: (path: readonly PathKey[], root: unknown) => string;
}

const EXT_UNDEFINED = 0;
const EXT_BIGINT = 1;
const EXT_MAP = 2;
const EXT_SET = 3;
const EXT_ERROR = 4;
const EXT_BUFFER = 5;
const EXT_TYPED_ARRAY = 6;
const EXT_ARRAY_BUFFER = 7;
const EXT_REGEXP = 8;
const EXT_INVALID_DATE = 9;
const EXT_TIMESTAMP = -1;

const TYPED_ARRAYS = [
  Int8Array,
  Uint8ClampedArray,
  Int16Array,
  Uint16Array,
  Int32Array,
  Uint32Array,
  Float32Array,
  Float64Array,
  BigInt64Array,
  BigUint64Array,
  DataView,
  Uint8Array,
] as const;

/** Thrown inside the encoder when the output passes EncodeOptions.maxBytes. */
class SizeLimitReached extends Error {}

/** Module state of the encoding under way (extension encoders encode their contents one level down). */
const encoding = {
  maxBytes: Infinity,
  /** Depth, counted from the outermost value, of the last object the encoder met: an extension's own depth. */
  objectDepth: 0,
  /** Errors being encoded around the current point, outermost first (to cut a cause chain that loops). */
  errors: [] as object[],
};

function malformed(what: string): SerializationError {
  return new SerializationError(`Cannot decode value: ${what}`);
}

function decodedArray(data: Uint8Array, what: string): unknown[] {
  const items = decodeNested(data);
  if (!Array.isArray(items)) throw malformed(`${what} extension does not hold an array`);
  return items;
}

/**
 * Plain arrays and plain objects are most of what crosses and are never an extension: answering
 * them before the extension encoders are each asked saves a measurable share of a small call.
 */
class SandboxExtensions extends ExtensionCodec {
  override tryToEncode(object: unknown, context: undefined): ReturnType<ExtensionCodec['tryToEncode']> {
    if (Array.isArray(object) || Object.getPrototypeOf(object) === Object.prototype) return null;
    return super.tryToEncode(object, context);
  }

  /** An extension type nobody registered is malformed input, not a value (MessagePack would hand back an ExtData). */
  override decode(data: Uint8Array, type: number, context: undefined): unknown {
    if (!KNOWN_EXTENSIONS.has(type)) throw malformed(`unknown extension type ${type}`);
    return super.decode(data, type, context);
  }
}

const KNOWN_EXTENSIONS = new Set([EXT_TIMESTAMP, EXT_UNDEFINED, EXT_BIGINT, EXT_MAP, EXT_SET, EXT_ERROR, EXT_BUFFER, EXT_TYPED_ARRAY, EXT_ARRAY_BUFFER, EXT_REGEXP, EXT_INVALID_DATE]);

const extensions = new SandboxExtensions();

extensions.register({
  type: EXT_TIMESTAMP,
  // MessagePack's timestamp cannot say "invalid" (it would decode as 1970-01-01): EXT_INVALID_DATE does.
  encode: (v) => (v instanceof Date && !Number.isNaN(v.getTime()) ? encodeTimestampExtension(v) : null),
  decode: (data) => decodeTimestampExtension(data),
});
extensions.register({
  type: EXT_INVALID_DATE,
  encode: (v) => (v instanceof Date ? new Uint8Array(0) : null), // reached only by invalid ones: ext -1 takes the valid
  decode: (data) => {
    if (data.byteLength !== 0) throw malformed('Invalid Date extension is not empty');
    return new Date(NaN);
  },
});
extensions.register({ type: EXT_BIGINT, encode: (v) => (typeof v === 'bigint' ? encodeBigInt(v) : null), decode: decodeBigInt });
extensions.register({
  type: EXT_BUFFER,
  encode: (v) => (Buffer.isBuffer(v) ? v : null),
  decode: (data) => Buffer.from(data.buffer, data.byteOffset, data.byteLength),
});
extensions.register({
  type: EXT_TYPED_ARRAY,
  encode: (v) => {
    if (!ArrayBuffer.isView(v) || v.constructor === Uint8Array) return null;
    const index = TYPED_ARRAYS.findIndex((T) => v instanceof T);
    if (index < 0 || index === TYPED_ARRAYS.length - 1) return null; // a Uint8Array subclass: plain bin
    const out = new Uint8Array(1 + v.byteLength);
    out[0] = index;
    out.set(new Uint8Array(v.buffer, v.byteOffset, v.byteLength), 1);
    return out;
  },
  decode: (data) => {
    if (data.byteLength === 0) throw malformed('empty typed array extension');
    const T = TYPED_ARRAYS[data[0]!];
    if (T === undefined) throw malformed(`unknown typed array tag ${data[0]}`);
    // Copy: the frame offset is not aligned for 2-, 4- and 8-byte elements.
    const bytes = Uint8Array.prototype.slice.call(data, 1);
    if (T === DataView) return new DataView(bytes.buffer);
    const E = T as unknown as { new (b: ArrayBuffer): ArrayBufferView; BYTES_PER_ELEMENT: number };
    if (bytes.byteLength % E.BYTES_PER_ELEMENT !== 0) throw malformed('truncated typed array');
    return new E(bytes.buffer);
  },
});
extensions.register({
  type: EXT_MAP,
  encode: (v) => (v instanceof Map ? encodeNested([...v].flat()) : null),
  decode: (data) => {
    const flat = decodedArray(data, 'Map');
    if (flat.length % 2 !== 0) throw malformed('Map extension holds an odd number of items');
    const map = new Map();
    for (let i = 0; i < flat.length; i += 2) map.set(flat[i], flat[i + 1]);
    return map;
  },
});
extensions.register({
  type: EXT_SET,
  encode: (v) => (v instanceof Set ? encodeNested([...v]) : null),
  decode: (data) => new Set(decodedArray(data, 'Set')),
});
extensions.register({
  type: EXT_ERROR,
  encode: (v) => (isError(v) ? encodeError(v) : null),
  decode: (data) => fromWireError(decodeNested(data)),
});
extensions.register({
  type: EXT_ARRAY_BUFFER,
  encode: (v) => (v instanceof ArrayBuffer ? new Uint8Array(v) : null),
  decode: (data) => Uint8Array.prototype.slice.call(data).buffer,
});
extensions.register({
  type: EXT_REGEXP,
  encode: (v) => (v instanceof RegExp ? encodeNested([v.source, v.flags]) : null),
  decode: (data) => {
    const parts = decodedArray(data, 'RegExp');
    if (parts.length !== 2 || typeof parts[0] !== 'string' || typeof parts[1] !== 'string') throw malformed('RegExp extension is not [source, flags]');
    return new RegExp(parts[0], parts[1]);
  },
});
extensions.register({
  type: EXT_UNDEFINED,
  encode: () => null, // reached only through the encoder's doEncode, below
  decode: (data) => {
    if (data.byteLength !== 0) throw malformed('undefined extension is not empty');
    return undefined;
  },
});

function encodeError(error: Error): Uint8Array {
  encoding.errors.push(error);
  try {
    return encodeNested(toWireError(error, encoding.errors));
  } finally {
    encoding.errors.pop();
  }
}

// ─── The encoder ────────────────────────────────────────────────────────────────────────────────

const UNDEFINED_EXT = { type: EXT_UNDEFINED, data: new Uint8Array(0) };
const UNRECOGNIZED_PROTO_KEY = "Unrecognized object: own key '__proto__'";

/**
 * The members of @msgpack/msgpack's Encoder that the codec replaces or reads. They are private in
 * its typings, so the version is pinned exactly (package.json) and checked at load (codec-check.ts).
 */
export interface EncoderInternals {
  doEncode(value: unknown, depth: number): void;
  encodeExtension(ext: typeof UNDEFINED_EXT): void;
  ensureBufferSizeToWrite(size: number): void;
  resizeBuffer(size: number): void;
  writeU8a(values: Uint8Array): void;
  bytes: Uint8Array;
  pos: number;
  maxDepth: number;
  view: DataView;
  /** Depth of this encoder's outermost value, counted from the outermost value of all. */
  depthBase: number;
}

/** Binary data (Buffer, Uint8Array, ArrayBuffer) this large or larger is shared by encodeValueShared, not copied. */
export const SHARED_MIN_BYTES = 64 * 1024;

/** A value encoded with its large binary data left where it is: `bytes` with `shared[i].bytes` to be inserted at `shared[i].at`. */
export interface SharedEncoding {
  bytes: Uint8Array;
  shared: readonly { at: number; bytes: Uint8Array }[];
  /** Sum of the shared parts' lengths: the encoding is `bytes.byteLength` plus this. */
  sharedBytes: number;
}

/** The shared parts of the encoding under way (encodeValueShared), or undefined when everything is copied. */
let sharing: { parts: { at: number; bytes: Uint8Array }[]; bytes: number } | undefined;

export interface DecoderInternals {
  readHeadByte(): number;
  pushArrayState(size: number): void;
  pushMapState(size: number): void;
  stack: { length: number };
  pos: number;
  view: DataView;
}

function createEncoder(): Encoder {
  const encoder = new Encoder({ extensionCodec: extensions, maxDepth: MAX_DEPTH });
  const internals = encoder as unknown as EncoderInternals;
  const base = internals.doEncode;
  internals.depthBase = 0;
  // MessagePack turns `undefined` into nil before consulting extensions, so `{ a: undefined }` would
  // come back as `{ a: null }`: intercept it at the one method every value passes through.
  internals.doEncode = function (this: EncoderInternals, value: unknown, depth: number) {
    if (value === undefined) this.encodeExtension(UNDEFINED_EXT);
    else if (typeof value === 'object' && value !== null) {
      // MessagePack decoders refuse the map key '__proto__': an object with an own '__proto__' key
      // (JSON.parse makes them) is refused here, by the sender, not by the other side's decoder.
      if (Object.hasOwn(value, '__proto__')) throw new Error(UNRECOGNIZED_PROTO_KEY);
      encoding.objectDepth = this.depthBase + depth;
      base.call(this, value, depth);
    } else base.call(this, value, depth);
  };
  // Every write passes here: the limit is checked as the output grows, so an oversized value is
  // refused after maxBytes of work, not after all of it.
  internals.ensureBufferSizeToWrite = function (this: EncoderInternals, size: number) {
    const required = this.pos + size;
    if (required + (sharing !== undefined && this === outermost() ? sharing.bytes : 0) > encoding.maxBytes) throw new SizeLimitReached();
    if (this.view.byteLength < required) this.resizeBuffer(Math.max(required, Math.min(required * 2, encoding.maxBytes)));
  };
  // Raw bytes (a bin's, a Buffer's or an ArrayBuffer's contents) are written here. When sharing, a
  // large run of the caller's own bytes written by the outermost encoder is noted, not copied. Not
  // what an inner encoder made (a Map's contents): its buffer is reused by the next encoding.
  const writeU8a = internals.writeU8a;
  internals.writeU8a = function (this: EncoderInternals, values: Uint8Array) {
    if (sharing === undefined || values.byteLength < SHARED_MIN_BYTES || this !== outermost() || encoders.some((e) => (e as unknown as EncoderInternals).bytes.buffer === values.buffer)) {
      return writeU8a.call(this, values);
    }
    if (this.pos + sharing.bytes + values.byteLength > encoding.maxBytes) throw new SizeLimitReached();
    sharing.parts.push({ at: this.pos, bytes: values });
    sharing.bytes += values.byteLength;
  };
  return encoder;
}

const outermost = (): EncoderInternals | undefined => encoders[0] as unknown as EncoderInternals | undefined;

/**
 * One encoder per nesting level: extension encoders (Map, Set, Error, RegExp) encode their contents
 * while the outer encoder is mid-value. Each level's shared buffer is copied into the level above
 * before that level encodes again, so handing out shared references is safe.
 */
const encoders: Encoder[] = [];
let level = 0;

/** An extension's contents, one level down; its depth continues from the extension's own. */
function encodeNested(value: unknown): Uint8Array {
  return encodeAt(value, encoding.objectDepth);
}

function encodeAt(value: unknown, depthBase: number): Uint8Array {
  // The depth is counted from the outermost value (each level's maxDepth is what is left), so a
  // cycle through a Map or an Error is caught like any other, not by a stack overflow.
  if (level >= MAX_DEPTH || depthBase >= MAX_DEPTH) throw new Error(`Too deep objects in depth ${depthBase}`);
  const encoder = (encoders[level] ??= createEncoder());
  const internals = encoder as unknown as EncoderInternals;
  internals.depthBase = depthBase;
  internals.maxDepth = MAX_DEPTH - depthBase;
  level++;
  try {
    return encoder.encodeSharedRef(value);
  } finally {
    level--;
  }
}

/**
 * Encodes a value. The returned bytes may be a view of the encoder's shared buffer, valid only until
 * the next call: copy or write them before encoding anything else (encodeFrame copies).
 * Throws SerializationError, saying where, for what cannot cross.
 */
export function encodeValue(value: unknown, options?: EncodeOptions): Uint8Array {
  // Called again while a value is being encoded (from a getter or a Proxy trap in it) without
  // options: that value's limit and errors carry on, and the outermost call explains.
  if (level > 0 && options === undefined) return encodeAt(value, 0);
  const savedMaxBytes = encoding.maxBytes;
  const savedErrors = encoding.errors;
  encoding.maxBytes = options?.maxBytes ?? Infinity;
  if (level > 0) encoding.errors = [];
  try {
    return encodeAt(value, 0);
  } catch (error) {
    throw toSerializationError(value, error, options);
  } finally {
    encoding.maxBytes = savedMaxBytes;
    encoding.errors = savedErrors;
  }
}

/**
 * Encodes a value as encodeValue does, except that large binary data (SHARED_MIN_BYTES or more) of
 * the value itself is not copied: the result names where each such part goes. The caller must not
 * change those bytes until they are written. `bytes` is valid until the next encoding, as with encodeValue.
 */
export function encodeValueShared(value: unknown, options?: EncodeOptions): SharedEncoding {
  if (level > 0) return { bytes: encodeValue(value, options), shared: [], sharedBytes: 0 };
  const parts: { at: number; bytes: Uint8Array }[] = [];
  sharing = { parts, bytes: 0 };
  try {
    const bytes = encodeValue(value, options);
    return { bytes, shared: parts, sharedBytes: sharing.bytes };
  } finally {
    sharing = undefined;
  }
}

function refusal(value: unknown): string | undefined {
  switch (typeof value) {
    case 'function':
    case 'symbol':
      return `is a ${typeof value}, which cannot be sent to another process`;
    case 'bigint': {
      const bytes = bigIntBytes(value);
      return bytes > MAX_BIGINT_BYTES ? `is a BigInt of ${bytes} bytes, over the limit of ${MAX_BIGINT_BYTES} bytes` : undefined;
    }
    case 'object':
      return value !== null && Object.hasOwn(value, '__proto__') ? "is a record with an own '__proto__' key, which cannot be sent to another process" : undefined;
    default:
      return undefined;
  }
}

function toSerializationError(value: unknown, error: unknown, options: EncodeOptions | undefined): SerializationError {
  if (error instanceof SerializationError) return error;
  try {
    const where = (path: readonly PathKey[]): string => (options?.describePath ? options.describePath(path, value) : `<value>${formatPath(path)}`);
    const text = error instanceof Error ? error.message : String(error);
    let reason: string;
    if (error instanceof SizeLimitReached) {
      const limit = options?.maxBytes ?? encoding.maxBytes;
      reason = `${where([])} encodes to more than ${limit} bytes, over ${options?.limitName ?? 'the limit'} (${limit})`;
    } else if (text.startsWith('Too deep objects')) {
      const path = findCycle(value, MAX_DEPTH + 2);
      reason = path ? `it contains a circular reference at ${where(path)}` : `it is nested deeper than ${MAX_DEPTH} levels`;
    } else {
      const found = findRefused(value, MAX_DEPTH + 2, refusal);
      reason = found ? `${where(found.path)} ${found.reason}` : text;
    }
    return new SerializationError(`Value cannot cross the process boundary: ${reason}`, { cause: error });
  } catch {
    // Explaining must not fail in its turn (a Proxy in the value, a throwing describePath).
    return new SerializationError('Value cannot cross the process boundary', { cause: error });
  }
}

// ─── The decoder ────────────────────────────────────────────────────────────────────────────────

function createDecoder(): Decoder {
  const decoder = new Decoder({ extensionCodec: extensions, useBigInt64: false });
  const internals = decoder as unknown as DecoderInternals;
  const pushArray = internals.pushArrayState;
  const pushMap = internals.pushMapState;
  // A container's items take at least a byte each (a map entry two): a declared length beyond the
  // bytes left is a lie, refused before `new Array(length)`. Depth is counted from the outermost
  // value, across extensions, and refused past MAX_DEPTH before anything is built for it.
  const check = (self: DecoderInternals, size: number, bytesPerItem: number): void => {
    if (decoding.base + self.stack.length + 1 >= MAX_DEPTH) throw malformed(`nested deeper than ${MAX_DEPTH} levels`);
    if (size * bytesPerItem > self.view.byteLength - self.pos) throw malformed(`a container declares ${size} items with ${self.view.byteLength - self.pos} bytes left`);
  };
  // Every value's first byte passes here once: count the containers (fixmap, fixarray, array16/32,
  // map16/32), empty ones included, which never reach push*State.
  const readHeadByte = internals.readHeadByte;
  internals.readHeadByte = function (this: DecoderInternals) {
    const head = readHeadByte.call(this);
    if (((head & 0xe0) === 0x80 || (head >= 0xdc && head <= 0xdf)) && ++decoding.containers > MAX_DECODED_CONTAINERS) {
      throw malformed(`more than ${MAX_DECODED_CONTAINERS} arrays and maps in one value`);
    }
    return head;
  };
  internals.pushArrayState = function (this: DecoderInternals, size: number) {
    check(this, size, 1);
    pushArray.call(this, size);
  };
  internals.pushMapState = function (this: DecoderInternals, size: number) {
    check(this, size, 2);
    pushMap.call(this, size);
  };
  return decoder;
}

const decoders: Decoder[] = [];
const decoding = { level: 0, base: 0, containers: 0 };

function decodeNested(data: Uint8Array): unknown {
  const outer = decoders[decoding.level - 1] as unknown as DecoderInternals;
  return decodeAt(data, decoding.base + outer.stack.length + 1);
}

function decodeAt(bytes: Uint8Array, base: number): unknown {
  if (decoding.level >= MAX_DEPTH || base >= MAX_DEPTH) throw malformed(`nested deeper than ${MAX_DEPTH} levels`);
  const decoder = (decoders[decoding.level] ??= createDecoder());
  if (decoding.level === 0) decoding.containers = 0; // one budget per outermost value, extensions included
  const savedBase = decoding.base;
  decoding.base = base;
  decoding.level++;
  try {
    return decoder.decode(bytes);
  } finally {
    decoding.level--;
    decoding.base = savedBase;
  }
}

/**
 * Decodes one value. Binary data in the result shares memory with `bytes`. Throws SerializationError
 * ("Cannot decode value: …") for anything malformed, over a limit, or nested too deep.
 */
export function decodeValue(bytes: Uint8Array): unknown {
  // A plain Uint8Array view, so that MessagePack bin decodes as Uint8Array even when the frame is a Buffer.
  const view = bytes.constructor === Uint8Array ? bytes : new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  try {
    return decodeAt(view, 0);
  } catch (error) {
    if (error instanceof SerializationError) throw error;
    throw malformed(error instanceof Error ? error.message : 'unknown error');
  }
}

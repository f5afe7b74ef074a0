/**
 * The extension types of the value codec (the table is in codec.ts): how each JavaScript type
 * MessagePack lacks is written and read back. In a module of its own because both halves of the
 * codec use it: the encoder asks it to write a Map, the decoder to rebuild one, and the container
 * types (Map, Set, Error, RegExp) call back into the encoder or the decoder for their contents.
 *
 * Every decoder here treats its bytes as hostile: exact forms only, anything else is malformed.
 * The contents of Map and Set are filled through fillInSlices, so that a frame decoded in slices
 * (codec-decode.ts) can pause in the middle of a Set of millions of items, not only between them.
 */
import { decodeTimestampExtension, encodeTimestampExtension, ExtensionCodec } from '@msgpack/msgpack';
import { decodeBigInt, encodeBigInt } from './bigint-ext.js';
import { decodeNested, decodingInSlices, fillInSlices } from './codec-decode.js';
import { encodeError, encodeNested } from './codec-encode.js';
import { EXT_UNDEFINED, malformed, MAX_RECORD_ENTRIES, MAX_REGEXP_SOURCE } from './codec-limits.js';
import { fromWireError, isError } from './wire-error.js';

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

/** Thrown by the RegExp encoder for a source over MAX_REGEXP_SOURCE; the encoder explains it with the value's path. */
export class RegExpTooLarge extends Error {}

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

export const extensions = new SandboxExtensions();

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
    if (flat.length / 2 > MAX_RECORD_ENTRIES) throw malformed(`a Map of ${flat.length / 2} entries, over the limit of ${MAX_RECORD_ENTRIES}`);
    return fillInSlices(() => new Map(), flat.length, 2, (map, i) => map.set(flat[i], flat[i + 1]));
  },
});
extensions.register({
  type: EXT_SET,
  encode: (v) => (v instanceof Set ? encodeNested([...v]) : null),
  decode: (data) => {
    const items = decodedArray(data, 'Set');
    if (items.length > MAX_RECORD_ENTRIES) throw malformed(`a Set of ${items.length} entries, over the limit of ${MAX_RECORD_ENTRIES}`);
    if (!decodingInSlices()) return new Set(items); // at once: the native constructor is faster
    return fillInSlices(() => new Set(), items.length, 1, (set, i) => set.add(items[i]));
  },
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
  encode: (v) => {
    if (!(v instanceof RegExp)) return null;
    if (v.source.length > MAX_REGEXP_SOURCE) throw new RegExpTooLarge();
    return encodeNested([v.source, v.flags]);
  },
  decode: (data) => {
    const parts = decodedArray(data, 'RegExp');
    if (parts.length !== 2 || typeof parts[0] !== 'string' || typeof parts[1] !== 'string') throw malformed('RegExp extension is not [source, flags]');
    if (parts[0].length > MAX_REGEXP_SOURCE) throw malformed(`RegExp source of ${parts[0].length} characters, over the limit of ${MAX_REGEXP_SOURCE}`);
    return new RegExp(parts[0], parts[1]);
  },
});
extensions.register({
  type: EXT_UNDEFINED,
  encode: () => null, // reached only through the encoder's doEncode (codec-encode.ts)
  decode: (data) => {
    if (data.byteLength !== 0) throw malformed('undefined extension is not empty');
    return undefined;
  },
});

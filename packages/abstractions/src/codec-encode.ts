/**
 * The encoding half of the value codec (see codec.ts for the format): @msgpack/msgpack's Encoder,
 * with `undefined` kept, depth counted across extensions, and the size limit checked as the output
 * grows. Apart from the decoder because nothing is shared but the extension types and the limits,
 * and each half patches different private members of the library.
 */
import { Encoder } from '@msgpack/msgpack';
import { bigIntBytes, MAX_BIGINT_BYTES } from './bigint-ext.js';
import { extensions } from './codec-extensions.js';
import { EXT_UNDEFINED, MAX_ARRAY_ITEMS, MAX_DEPTH, MAX_RECORD_ENTRIES, MAX_REGEXP_SOURCE } from './codec-limits.js';
import { SerializationError } from './errors.js';
import { findCycle, findRefused, formatPath, type PathKey } from './value-paths.js';
import { toWireError } from './wire-error.js';

export interface EncodeOptions {
  /** Refuse the value as soon as its encoding passes this many bytes. */
  maxBytes?: number;
  /** How the limit is called in the error message (e.g. 'maxMessageBytes'). */
  limitName?: string;
  /** Names a place in the value for error messages; `root` is the value given to encodeValue. Default `<value>[0].key`. */
  describePath?: (path: readonly PathKey[], root: unknown) => string;
}

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

export function encodeError(error: Error): Uint8Array {
  encoding.errors.push(error);
  try {
    return encodeNested(toWireError(error, encoding.errors));
  } finally {
    encoding.errors.pop();
  }
}

const UNDEFINED_EXT = { type: EXT_UNDEFINED, data: new Uint8Array(0) };
const UNRECOGNIZED_PROTO_KEY = "Unrecognized object: own key '__proto__'";
const TOO_LARGE = 'a container over MAX_ARRAY_ITEMS or MAX_RECORD_ENTRIES';

/**
 * The members of @msgpack/msgpack's Encoder that the codec replaces or reads. They are private in
 * its typings, so the version is pinned exactly (package.json) and checked at load (codec-check.ts).
 */
export interface EncoderInternals {
  doEncode(value: unknown, depth: number): void;
  encodeMap(object: object, depth: number): void;
  encodeExtension(ext: typeof UNDEFINED_EXT): void;
  ensureBufferSizeToWrite(size: number): void;
  resizeBuffer(size: number): void;
  pos: number;
  bytes: Uint8Array;
  maxDepth: number;
  view: DataView;
  /** Depth of this encoder's outermost value, counted from the outermost value of all. */
  depthBase: number;
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
      // The other side refuses containers past these (codec-limits.ts): refused here, by the sender,
      // with a SerializationError naming the place, not as a protocol error that ends the worker.
      if (Array.isArray(value) ? value.length > MAX_ARRAY_ITEMS : (value instanceof Map || value instanceof Set) && value.size > MAX_RECORD_ENTRIES) throw new Error(TOO_LARGE);
      encoding.objectDepth = this.depthBase + depth;
      base.call(this, value, depth);
    } else base.call(this, value, depth);
  };
  // A record's size is known only once the library has listed its keys: its map header (0xdf and a
  // 32-bit count for 64 Ki keys or more) is read back after it is written, so counting costs nothing.
  const encodeMap = internals.encodeMap;
  internals.encodeMap = function (this: EncoderInternals, object: object, depth: number) {
    const start = this.pos;
    encodeMap.call(this, object, depth);
    if (this.bytes[start] === 0xdf && new DataView(this.bytes.buffer, this.bytes.byteOffset + start + 1, 4).getUint32(0) > MAX_RECORD_ENTRIES) throw new Error(TOO_LARGE);
  };
  // Every write passes here: the limit is checked as the output grows, so an oversized value is
  // refused after maxBytes of work, not after all of it.
  internals.ensureBufferSizeToWrite = function (this: EncoderInternals, size: number) {
    const required = this.pos + size;
    if (required > encoding.maxBytes) throw new SizeLimitReached();
    if (this.view.byteLength < required) this.resizeBuffer(Math.max(required, Math.min(required * 2, encoding.maxBytes)));
  };
  return encoder;
}

/**
 * One encoder per nesting level: extension encoders (Map, Set, Error, RegExp) encode their contents
 * while the outer encoder is mid-value. Each level's shared buffer is copied into the level above
 * before that level encodes again, so handing out shared references is safe.
 */
const encoders: Encoder[] = [];
let level = 0;

/** An extension's contents, one level down; its depth continues from the extension's own. */
export function encodeNested(value: unknown): Uint8Array {
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
      if (value instanceof RegExp && value.source.length > MAX_REGEXP_SOURCE) return `is a RegExp of ${value.source.length} characters, over the limit of ${MAX_REGEXP_SOURCE}`;
      if (Array.isArray(value) && value.length > MAX_ARRAY_ITEMS) return `is an array of ${value.length} items, over the limit of ${MAX_ARRAY_ITEMS} (MAX_ARRAY_ITEMS): send a typed array, a Buffer, or stream the items`;
      if ((value instanceof Map || value instanceof Set) && value.size > MAX_RECORD_ENTRIES) return `is a ${value instanceof Map ? 'Map' : 'Set'} of ${value.size} entries, over the limit of ${MAX_RECORD_ENTRIES} (MAX_RECORD_ENTRIES): split it or stream it`;
      if (value !== null && !Array.isArray(value) && !(value instanceof Map) && !(value instanceof Set) && Object.keys(value).length > MAX_RECORD_ENTRIES) return `is a record of ${Object.keys(value).length} keys, over the limit of ${MAX_RECORD_ENTRIES} (MAX_RECORD_ENTRIES): split it in parts, or stream it`;
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

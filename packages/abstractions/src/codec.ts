/**
 * The value codec: MessagePack plus extension types for what JSON (and plain MessagePack) loses.
 *
 *   ext 0  undefined          (inside objects and arrays too, where MessagePack would give null)
 *   ext 1  BigInt             (decimal text)
 *   ext 2  Map                (array of alternating keys and values)
 *   ext 3  Set                (array of values)
 *   ext 4  Error              (name, message, stack, code, cause chain, own enumerable properties)
 *   ext 5  Buffer             (raw bytes; decoded as a Buffer that shares the frame's memory)
 *   ext 6  other typed arrays (one byte naming the type, then the raw bytes) and DataView
 *   ext 7  ArrayBuffer
 *   ext 8  RegExp             ([source, flags])
 *   ext -1 Date               (MessagePack's own timestamp)
 *   bin    Uint8Array         (decoded as a Uint8Array that shares the frame's memory)
 *
 * Functions and symbols cannot cross; nor can structures nested deeper than 100 levels, which is
 * how circular references show up. Both raise SerializationError with a message that says which.
 */
import { Decoder, Encoder, ExtensionCodec } from '@msgpack/msgpack';
import { SerializationError } from './errors.js';

const EXT_UNDEFINED = 0;
const EXT_BIGINT = 1;
const EXT_MAP = 2;
const EXT_SET = 3;
const EXT_ERROR = 4;
const EXT_BUFFER = 5;
const EXT_TYPED_ARRAY = 6;
const EXT_ARRAY_BUFFER = 7;
const EXT_REGEXP = 8;

const MAX_DEPTH = 100;

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

/** Error constructors we can rebuild as themselves so `instanceof TypeError` still holds. */
const ERROR_TYPES: Record<string, ErrorConstructor> = {
  Error,
  TypeError,
  RangeError,
  SyntaxError,
  ReferenceError,
  EvalError,
  URIError,
};

interface WireError {
  name: string;
  message: string;
  stack: string | undefined;
  cause?: unknown;
  props: Record<string, unknown>;
}

/**
 * Plain arrays and plain objects are most of what crosses and are never an extension: answering
 * them before the nine extension encoders are each asked saves a measurable share of a small call.
 */
class SandboxExtensions extends ExtensionCodec {
  override tryToEncode(object: unknown, context: undefined): ReturnType<ExtensionCodec['tryToEncode']> {
    if (Array.isArray(object) || Object.getPrototypeOf(object) === Object.prototype) return null;
    return super.tryToEncode(object, context);
  }
}

const extensions = new SandboxExtensions();

extensions.register({
  type: EXT_BIGINT,
  encode: (v) => (typeof v === 'bigint' ? new TextEncoder().encode(v.toString()) : null),
  decode: (data) => BigInt(new TextDecoder().decode(data)),
});
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
    const T = TYPED_ARRAYS[data[0]!];
    if (T === undefined) throw new SerializationError(`Unknown typed array tag ${data[0]}`);
    // Copy: the frame offset is not aligned for 2-, 4- and 8-byte elements.
    const bytes = Uint8Array.prototype.slice.call(data, 1);
    if (T === DataView) return new DataView(bytes.buffer);
    const E = T as unknown as { new (b: ArrayBuffer): ArrayBufferView; BYTES_PER_ELEMENT: number };
    if (bytes.byteLength % E.BYTES_PER_ELEMENT !== 0) throw new SerializationError('Truncated typed array');
    return new E(bytes.buffer);
  },
});
extensions.register({
  type: EXT_MAP,
  encode: (v) => (v instanceof Map ? encodeValue([...v].flat()) : null),
  decode: (data) => {
    const flat = decodeValue(data) as unknown[];
    const map = new Map();
    for (let i = 0; i < flat.length; i += 2) map.set(flat[i], flat[i + 1]);
    return map;
  },
});
extensions.register({
  type: EXT_SET,
  encode: (v) => (v instanceof Set ? encodeValue([...v]) : null),
  decode: (data) => new Set(decodeValue(data) as unknown[]),
});
extensions.register({
  type: EXT_ERROR,
  encode: (v) => (v instanceof Error ? encodeValue(toWireError(v)) : null),
  decode: (data) => fromWireError(decodeValue(data) as WireError),
});
extensions.register({
  type: EXT_ARRAY_BUFFER,
  encode: (v) => (v instanceof ArrayBuffer ? new Uint8Array(v) : null),
  decode: (data) => Uint8Array.prototype.slice.call(data).buffer,
});
extensions.register({
  type: EXT_REGEXP,
  encode: (v) => (v instanceof RegExp ? encodeValue([v.source, v.flags]) : null),
  decode: (data) => {
    const [source, flags] = decodeValue(data) as [string, string];
    return new RegExp(source, flags);
  },
});
extensions.register({
  type: EXT_UNDEFINED,
  encode: () => null, // reached only through SandboxEncoder.doEncode below
  decode: () => undefined,
});

const UNDEFINED_EXT = { type: EXT_UNDEFINED, data: new Uint8Array(0) };
const UNRECOGNIZED_PROTO_KEY = "Unrecognized object: own key '__proto__'";

/**
 * MessagePack turns `undefined` into nil before consulting extensions, so `{ a: undefined }` would
 * come back as `{ a: null }`. We intercept undefined at the one method every value passes through
 * (`doEncode`, private in the typings, a plain method at runtime).
 */
function createEncoder(): Encoder {
  const encoder = new Encoder({ extensionCodec: extensions, maxDepth: MAX_DEPTH });
  type Internals = { doEncode(value: unknown, depth: number): void; encodeExtension(ext: typeof UNDEFINED_EXT): void };
  const internals = encoder as unknown as Internals;
  const base = internals.doEncode;
  internals.doEncode = function (this: Internals, value: unknown, depth: number) {
    if (value === undefined) this.encodeExtension(UNDEFINED_EXT);
    // MessagePack decoders refuse the map key '__proto__', so an object with an own '__proto__' key
    // (JSON.parse makes them) encoded fine, then failed to decode on the other side, destroying the
    // channel. Refuse it here instead; toSerializationError names the path.
    else if (typeof value === 'object' && value !== null && Object.hasOwn(value, '__proto__')) throw new Error(UNRECOGNIZED_PROTO_KEY);
    else base.call(this, value, depth);
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
const decoder = new Decoder({ extensionCodec: extensions, useBigInt64: false });

function toWireError(error: Error): WireError {
  const props: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(error)) {
    if (key !== 'cause' && key !== 'stack' && key !== 'message' && key !== 'name') props[key] = value;
  }
  const wire: WireError = { name: error.name, message: error.message, stack: error.stack, props };
  if ('cause' in error) wire.cause = error.cause;
  return wire;
}

function fromWireError(wire: WireError): Error {
  // Own keys only: a plain lookup found Object.prototype's members, so an error named 'toString',
  // 'valueOf', '__proto__' … failed to decode (TypeError: Ctor is not a constructor) and one named
  // 'constructor' came back as a String object.
  const Ctor = Object.hasOwn(ERROR_TYPES, wire.name) ? ERROR_TYPES[wire.name]! : Error;
  const error = new Ctor(wire.message, 'cause' in wire ? { cause: wire.cause } : undefined);
  Object.assign(error, wire.props);
  if (error.name !== wire.name) Object.defineProperty(error, 'name', { value: wire.name, writable: true, configurable: true });
  Object.defineProperty(error, 'stack', { value: wire.stack, writable: true, configurable: true });
  return error;
}

/**
 * Encodes a value. The returned bytes may be a view of the encoder's shared buffer, valid only until
 * the next call: copy or write them before encoding anything else (encodeFrame copies).
 */
export function encodeValue(value: unknown): Uint8Array {
  // Map, Set, Error and RegExp encode their contents one level down, with an encoder whose depth
  // count starts again, so MessagePack's maxDepth never stopped a cycle through one of them: it
  // overflowed the stack instead (creating an encoder per level on the way), and the error could
  // not say where the cycle was. Bound the levels too, with MessagePack's message, so that it is
  // explained (by findCycle) like any other cycle.
  if (level >= MAX_DEPTH) throw new Error(`Too deep objects in depth ${level}`);
  const encoder = (encoders[level] ??= createEncoder());
  level++;
  try {
    return encoder.encodeSharedRef(value);
  } catch (error) {
    // Only the outermost level explains; inner levels pass the error up unchanged.
    throw level === 1 ? toSerializationError(value, error) : error;
  } finally {
    level--;
  }
}

/** Decodes one value. Binary data in the result shares memory with `bytes`. */
export function decodeValue(bytes: Uint8Array): unknown {
  // A plain Uint8Array view, so that MessagePack bin decodes as Uint8Array even when the frame is a Buffer.
  return decoder.decode(bytes.constructor === Uint8Array ? bytes : new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength));
}

function toSerializationError(value: unknown, error: unknown): SerializationError {
  if (error instanceof SerializationError) return error;
  const text = error instanceof Error ? error.message : String(error);
  let reason: string;
  if (text.startsWith('Too deep objects')) {
    const path = findCycle(value);
    reason = path ? `it contains a circular reference at ${path}` : `it is nested deeper than ${MAX_DEPTH} levels`;
  } else if (text.startsWith('Unrecognized object')) {
    const path = findUnsupported(value);
    reason = path ? `${path.path} is a ${path.type}, which cannot be sent to another process` : text;
  } else {
    reason = text;
  }
  return new SerializationError(`Value cannot cross the process boundary: ${reason}`, { cause: error });
}

function children(value: object): Iterable<[string, unknown]> {
  if (value instanceof Map) return [...value].flatMap(([k, v], i) => [[`<map key ${i}>`, k], [`<map value ${i}>`, v]] as [string, unknown][]);
  if (value instanceof Set) return [...value].map((v, i) => [`<set item ${i}>`, v] as [string, unknown]);
  if (ArrayBuffer.isView(value) || value instanceof ArrayBuffer || value instanceof Date || value instanceof RegExp) return [];
  const entries: [string, unknown][] = Object.entries(value);
  if (value instanceof Error && 'cause' in value) entries.push(['cause', value.cause]);
  return entries;
}

function findCycle(root: unknown): string | undefined {
  const onPath = new Set<object>();
  const walk = (value: unknown, path: string): string | undefined => {
    if (typeof value !== 'object' || value === null) return undefined;
    if (onPath.has(value)) return path;
    onPath.add(value);
    for (const [key, child] of children(value)) {
      const found = walk(child, `${path}.${key}`);
      if (found) return found;
    }
    onPath.delete(value);
    return undefined;
  };
  return walk(root, '<value>');
}

function findUnsupported(root: unknown): { path: string; type: string } | undefined {
  const seen = new Set<object>();
  const walk = (value: unknown, path: string): { path: string; type: string } | undefined => {
    if (typeof value === 'function' || typeof value === 'symbol') return { path, type: typeof value };
    if (typeof value !== 'object' || value === null || seen.has(value)) return undefined;
    if (Object.hasOwn(value, '__proto__')) return { path, type: "record with an own '__proto__' key" }; // see createEncoder
    seen.add(value);
    for (const [key, child] of children(value)) {
      const found = walk(child, `${path}.${key}`);
      if (found) return found;
    }
    return undefined;
  };
  return walk(root, '<value>');
}

/**
 * The gate for what a worker sends: every worker → host message is checked field by field against
 * protocol.ts before the host acts on any of it. A worker is untrusted code, and its frames are input
 * like a network peer's: a wrong type, a missing or extra field, an unknown kind or reason is a
 * ProtocolError, never a TypeError somewhere further in. The checks are shape checks only, and each
 * costs O(size of the field) with a cap checked before the walk; which message is *expected* (the
 * state of the worker, the id of the call in flight) is the worker handle's half of the gate.
 */
import { ProtocolError } from './errors.js';
import {
  FailureReason,
  MAX_CALLBACK_SLOTS,
  MAX_EVENT_BYTES,
  MAX_EVENT_NAME_LENGTH,
  MAX_HOST_CALL_ARGS,
  MAX_HOST_CALL_RECORDS,
  MAX_HOST_CALL_TEXT,
  MessageKind,
  type CallbackMessage,
  type CallUsage,
  type EventMessage,
  type StreamItemMessage,
  type StreamOpenMessage,
  type FailureMessage,
  type HealthMessage,
  type HealthSnapshot,
  type HelloMessage,
  type ReadyMessage,
  type ResultMessage,
  type WorkerToHost,
} from './protocol.js';

/** A Ready may list at most this many methods… */
export const MAX_METHODS = 10_000;
/** …each a non-empty name of at most this many UTF-16 units. */
export const MAX_METHOD_NAME_LENGTH = 256;
/** A Hello's token is 43 characters today; anything much longer is not a token. */
export const MAX_TOKEN_LENGTH = 1024;

/**
 * Names a worker may list but the host never exposes as remote methods. `then` would make the proxy
 * (and every object holding it) a thenable: `await` would call into the worker. It is filtered, not
 * refused: an implementation may legitimately have a then() method, and refusing it would stop that
 * implementation from starting at all.
 */
export const RESERVED_METHOD_NAMES: ReadonlySet<string> = new Set(['then']);

const HEALTH_FIELDS = ['rss', 'heapUsed', 'external', 'arrayBuffers', 'handles', 'cpuUserMs', 'cpuSystemMs', 'calls', 'uptimeMs'] as const;
const FAILURE_REASONS: ReadonlySet<unknown> = new Set(Object.values(FailureReason));
const KIND_NAMES: Record<number, string> = Object.fromEntries(Object.entries(MessageKind).map(([name, kind]) => [kind, name]));

/** A short, safe description of a value from a worker for an error message: never calls its methods. */
export function describeValue(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return `an array of ${value.length}`;
  switch (typeof value) {
    case 'string':
      return value.length > 40 ? `a string of ${value.length} characters` : JSON.stringify(value);
    case 'number':
    case 'boolean':
    case 'undefined':
      return String(value);
    case 'bigint':
      return 'a BigInt';
    case 'object':
      return value instanceof Error ? 'an Error' : `an object (${Object.prototype.toString.call(value)})`;
    default:
      return typeof value;
  }
}

function fail(what: string): never {
  throw new ProtocolError(what);
}

function expectLength(message: readonly unknown[], length: number, name: string): void {
  if (message.length !== length) fail(`${name} has ${message.length} fields, expected ${length}`);
}

/** A correlation id: a safe integer (negative ids are the host's control messages; 0 means "no call"). */
function checkId(id: unknown, name: string): number {
  if (typeof id !== 'number' || !Number.isSafeInteger(id)) fail(`${name} id is ${describeValue(id)}, expected a safe integer`);
  return id;
}

/** The id of a user's call (positive: a lease's session messages, negative, never stream or call back). */
function checkCallId(id: unknown, name: string): number {
  if (checkId(id, name) <= 0) fail(`${name} id is ${String(id)}, expected the id of a call (positive)`);
  return id as number;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

/** A health snapshot: a plain object of exactly the documented fields, each a finite number ≥ 0 (handles may be -1). */
export function checkHealth(value: unknown, name: string): HealthSnapshot {
  if (!isPlainObject(value)) fail(`${name} health is ${describeValue(value)}, expected a plain object`);
  const keys = Object.keys(value);
  if (keys.length !== HEALTH_FIELDS.length) fail(`${name} health has ${keys.length} fields, expected ${HEALTH_FIELDS.length} (${HEALTH_FIELDS.join(', ')})`);
  for (const field of HEALTH_FIELDS) {
    if (!Object.hasOwn(value, field)) fail(`${name} health lacks '${field}'`);
    const n = value[field];
    if (typeof n !== 'number' || !Number.isFinite(n)) fail(`${name} health.${field} is ${describeValue(n)}, expected a finite number`);
    if (field === 'handles' ? n < -1 || (n < 0 && n !== -1) : n < 0) fail(`${name} health.${field} is ${n}, expected ≥ 0${field === 'handles' ? ' (or -1: unknown)' : ''}`);
  }
  return value as unknown as HealthSnapshot;
}

const USAGE_FIELDS: ReadonlySet<string> = new Set(['fuel', 'hostCalls', 'hostCallsDropped']);
const RECORD_FIELDS: ReadonlySet<string> = new Set(['fn', 'args', 'result', 'error']);

function isWasmValue(value: unknown): boolean {
  return typeof value === 'number' || typeof value === 'bigint';
}

function checkCount(value: unknown, what: string): void {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) fail(`${what} is ${describeValue(value)}, expected a whole number ≥ 0`);
}

/**
 * What a WebAssembly call used (fuel, the audit of its host calls): a plain object of the known
 * fields only, every count a safe whole number, at most MAX_HOST_CALL_RECORDS records of bounded
 * size. The record count is checked before a single record is looked at.
 */
export function checkUsage(value: unknown, name: string): CallUsage {
  if (!isPlainObject(value)) fail(`${name} usage is ${describeValue(value)}, expected a plain object`);
  for (const key of Object.keys(value)) if (!USAGE_FIELDS.has(key)) fail(`${name} usage has an unknown field ${describeValue(key)}`);
  if (value.fuel !== undefined) checkCount(value.fuel, `${name} usage.fuel`);
  if (value.hostCallsDropped !== undefined) checkCount(value.hostCallsDropped, `${name} usage.hostCallsDropped`);
  const records = value.hostCalls;
  if (records !== undefined) {
    if (!Array.isArray(records)) fail(`${name} usage.hostCalls is ${describeValue(records)}, expected an array`);
    if (records.length > MAX_HOST_CALL_RECORDS) fail(`${name} usage.hostCalls has ${records.length} records, more than the ${MAX_HOST_CALL_RECORDS} allowed`);
    for (const record of records as unknown[]) {
      if (!isPlainObject(record)) fail(`${name} usage.hostCalls has a record that is ${describeValue(record)}, expected a plain object`);
      for (const key of Object.keys(record)) if (!RECORD_FIELDS.has(key)) fail(`${name} usage.hostCalls record has an unknown field ${describeValue(key)}`);
      const { fn, args, result, error } = record;
      if (typeof fn !== 'string' || fn.length === 0 || fn.length > MAX_HOST_CALL_TEXT) fail(`${name} usage.hostCalls record fn is ${describeValue(fn)}, expected a name of at most ${MAX_HOST_CALL_TEXT} characters`);
      if (!Array.isArray(args) || args.length > MAX_HOST_CALL_ARGS || !args.every(isWasmValue)) {
        fail(`${name} usage.hostCalls record args is ${describeValue(args)}, expected at most ${MAX_HOST_CALL_ARGS} numbers or BigInts`);
      }
      if (result !== undefined && !isWasmValue(result)) fail(`${name} usage.hostCalls record result is ${describeValue(result)}, expected a number or BigInt`);
      if (error !== undefined && (typeof error !== 'string' || error.length > MAX_HOST_CALL_TEXT)) fail(`${name} usage.hostCalls record error is ${describeValue(error)}, expected a string of at most ${MAX_HOST_CALL_TEXT} characters`);
    }
  }
  return value as CallUsage;
}

function checkOptionalUsage(message: readonly unknown[], index: number, name: string): void {
  if (message.length > index) checkUsage(message[index], name);
}

function expectLengths(message: readonly unknown[], min: number, max: number, name: string): void {
  if (message.length < min || message.length > max) fail(`${name} has ${message.length} fields, expected ${min} or ${max}`);
}

function checkOptionalHealth(value: unknown, name: string): HealthSnapshot | null {
  return value === null ? null : checkHealth(value, name);
}

/** Ready's method list: an array of at most MAX_METHODS unique non-empty names of bounded length. */
export function checkMethodNames(value: unknown): string[] {
  if (!Array.isArray(value)) fail(`Ready methods is ${describeValue(value)}, expected an array of names`);
  // The count first: a list of a million names is refused before a single one is looked at.
  if (value.length === 0) fail('Ready lists no methods');
  if (value.length > MAX_METHODS) fail(`Ready lists ${value.length} methods, more than the ${MAX_METHODS} allowed`);
  const seen = new Set<string>();
  for (const name of value) {
    if (typeof name !== 'string' || name.length === 0 || name.length > MAX_METHOD_NAME_LENGTH) {
      fail(`Ready lists a method name that is ${describeValue(name)}, expected a non-empty string of at most ${MAX_METHOD_NAME_LENGTH} characters`);
    }
    if (seen.has(name)) fail(`Ready lists the method '${name}' twice`);
    seen.add(name);
  }
  return value as string[];
}

/** The names of `methods` the host may call: the list without RESERVED_METHOD_NAMES. */
export function callableMethods(methods: readonly string[]): string[] {
  return methods.filter((name) => !RESERVED_METHOD_NAMES.has(name));
}

/** The thrown value of a Failure: a decoded Error (extension 4) whose name and message are strings. */
function checkError(value: unknown): Error {
  if (!(value instanceof Error)) fail(`Failure error is ${describeValue(value)}, expected an Error`);
  // Own data properties only: reading through a getter or the prototype chain could run code.
  // Own properties are read by descriptor: an accessor is refused rather than run. Without an own
  // name the prototype's (a built-in Error class the decoder chose) is used.
  const own = (key: string): { value: unknown } | undefined => {
    const descriptor = Object.getOwnPropertyDescriptor(value, key);
    if (descriptor && !('value' in descriptor)) fail(`Failure error ${key} is an accessor, expected a string`);
    return descriptor as { value: unknown } | undefined;
  };
  const name = own('name') ? own('name')!.value : value.name;
  const message = own('message')?.value ?? '';
  const stack = own('stack')?.value;
  if (typeof name !== 'string') fail(`Failure error name is ${describeValue(name)}, expected a string`);
  if (typeof message !== 'string') fail(`Failure error message is ${describeValue(message)}, expected a string`);
  if (stack !== undefined && typeof stack !== 'string') fail(`Failure error stack is ${describeValue(stack)}, expected a string`);
  return value;
}

/** Checks the shape of a Hello (the first frame on a channel), field by field; throws ProtocolError saying what is wrong. */
export function checkHello(message: readonly unknown[]): HelloMessage {
  expectLength(message, 4, 'Hello');
  const [, version, token, pid] = message;
  if (typeof version !== 'number' || !Number.isSafeInteger(version)) fail(`Hello version is ${describeValue(version)}, expected an integer`);
  if (typeof token !== 'string' || token.length > MAX_TOKEN_LENGTH) fail(`Hello token is ${describeValue(token)}, expected a string of at most ${MAX_TOKEN_LENGTH} characters`);
  if (typeof pid !== 'number' || !Number.isSafeInteger(pid) || pid <= 0) fail(`Hello pid is ${describeValue(pid)}, expected a positive integer`);
  return message as HelloMessage;
}

/**
 * Checks one decoded message from a worker; returns it typed, or throws ProtocolError saying what is
 * wrong. Hello is checked by checkHello where connections are accepted; here it is unexpected.
 */
export function checkWorkerMessage(message: unknown): WorkerToHost {
  if (!Array.isArray(message) || message.length === 0) fail(`message is ${describeValue(message)}, expected an array starting with its kind`);
  const kind: unknown = message[0];
  switch (kind) {
    case MessageKind.Ready: {
      expectLength(message, 3, 'Ready');
      checkMethodNames(message[1]);
      checkHealth(message[2], 'Ready');
      return message as ReadyMessage;
    }
    case MessageKind.Result: {
      expectLengths(message, 4, 5, 'Result');
      if (checkId(message[1], 'Result') === 0) fail('Result id is 0, which answers no call');
      checkOptionalHealth(message[3], 'Result');
      checkOptionalUsage(message, 4, 'Result');
      return message as ResultMessage;
    }
    case MessageKind.Failure: {
      expectLengths(message, 5, 6, 'Failure');
      checkId(message[1], 'Failure');
      checkError(message[2]);
      if (!FAILURE_REASONS.has(message[3])) fail(`Failure reason is ${describeValue(message[3])}, not a known FailureReason`);
      checkOptionalHealth(message[4], 'Failure');
      checkOptionalUsage(message, 5, 'Failure');
      return message as FailureMessage;
    }
    case MessageKind.Health: {
      expectLength(message, 2, 'Health');
      checkHealth(message[1], 'Health');
      return message as HealthMessage;
    }
    case MessageKind.StreamOpen: {
      expectLength(message, 2, 'StreamOpen');
      checkCallId(message[1], 'StreamOpen');
      return message as StreamOpenMessage;
    }
    case MessageKind.StreamItem: {
      expectLength(message, 3, 'StreamItem');
      checkCallId(message[1], 'StreamItem');
      return message as StreamItemMessage;
    }
    case MessageKind.Callback: {
      expectLength(message, 5, 'Callback');
      checkCallId(message[1], 'Callback');
      const [, , callback, slot, args] = message;
      if (typeof callback !== 'number' || !Number.isSafeInteger(callback) || callback <= 0) fail(`Callback number is ${describeValue(callback)}, expected a positive safe integer`);
      if (typeof slot !== 'number' || !Number.isInteger(slot) || slot < 0 || slot >= MAX_CALLBACK_SLOTS) fail(`Callback slot is ${describeValue(slot)}, expected an argument index from 0 to ${MAX_CALLBACK_SLOTS - 1}`);
      if (!Array.isArray(args)) fail(`Callback args is ${describeValue(args)}, expected an array`);
      return message as CallbackMessage;
    }
    case MessageKind.Event: {
      expectLength(message, 3, 'Event');
      const name = message[1];
      if (typeof name !== 'string' || name.length === 0 || name.length > MAX_EVENT_NAME_LENGTH) fail(`Event name is ${describeValue(name)}, expected a non-empty string of at most ${MAX_EVENT_NAME_LENGTH} characters`);
      return message as EventMessage;
    }
    default: {
      const known = typeof kind === 'number' ? KIND_NAMES[kind] : undefined;
      fail(known ? `unexpected message kind ${String(kind)} (${known}) from the worker` : `unexpected message kind ${describeValue(kind)} from the worker`);
    }
  }
}

/** The element count of the MessagePack array or map header at `offset`, or undefined if there is none. */
function headerCount(bytes: Uint8Array, offset: number, kind: 'array' | 'map'): number | undefined {
  const b = bytes[offset];
  if (b === undefined) return undefined;
  const [fix, fixMask, len16, len32] = kind === 'array' ? [0x90, 0xf0, 0xdc, 0xdd] : [0x80, 0xf0, 0xde, 0xdf];
  if ((b & fixMask) === fix) return b & 0x0f;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (b === len16 && offset + 3 <= bytes.length) return view.getUint16(offset + 1);
  if (b === len32 && offset + 5 <= bytes.length) return view.getUint32(offset + 1);
  return undefined;
}

/**
 * A look at a frame's first bytes before it is decoded, for the two messages whose size the
 * protocol fixes: a Ready listing more than MAX_METHODS names, or a Health that is not a map of its
 * nine fields, is refused before the decoder spends time on it (a Ready of a million names took
 * ~150 ms to decode); so is an Event over MAX_EVENT_BYTES. Anything else passes here and is checked
 * in full once decoded.
 */
export function precheckFrame(frame: Uint8Array): void {
  const length = headerCount(frame, 0, 'array');
  if (length === undefined || length < 2) return;
  const headerBytes = frame[0]! <= 0x9f ? 1 : frame[0] === 0xdc ? 3 : 5;
  const kind = frame[headerBytes];
  if (kind === MessageKind.Ready) {
    const names = headerCount(frame, headerBytes + 1, 'array');
    if (names !== undefined && names > MAX_METHODS) fail(`Ready lists ${names} methods, more than the ${MAX_METHODS} allowed`);
  } else if (kind === MessageKind.Event) {
    if (frame.length > MAX_EVENT_BYTES) fail(`Event of ${frame.length} bytes, more than the ${MAX_EVENT_BYTES} allowed`);
  } else if (kind === MessageKind.Health) {
    const fields = headerCount(frame, headerBytes + 1, 'map');
    if (fields !== HEALTH_FIELDS.length) fail(`Health health is not a map of ${HEALTH_FIELDS.length} fields`);
  }
}

/**
 * Errors on the wire (ext 4): a record `{ name, message, stack, props, cause?, errors? }`.
 *
 * Encoding reads the error defensively (it may be a thrown value from untrusted code: getters that
 * throw, a Proxy, a 70 MB stack): every read is guarded, strings are bounded, accessors are not
 * invoked, at most MAX_ERROR_PROPS own properties travel, and a cause chain that loops or runs
 * deeper than MAX_CAUSE_DEPTH is cut with a marker error instead of failing the whole value.
 *
 * Decoding checks every field (it may come from a hostile worker) and never lets a remote property
 * shadow a member of the error's prototype: such keys are kept apart, in `remoteProps`.
 */
import { SerializationError } from './errors.js';
import { boundText, guarded, MAX_ERROR_NAME, MAX_ERROR_TEXT, safeText } from './safe-read.js';

/** Most own properties of one error that travel (the first ones, in key order). */
export const MAX_ERROR_PROPS = 64;
/** Most errors in one chain of causes (and AggregateError members) before the rest is cut. */
export const MAX_CAUSE_DEPTH = 32;

export interface WireError {
  name: string;
  message: string;
  stack: string | undefined;
  props: Record<string, unknown>;
  cause?: unknown;
  errors?: unknown[];
}

/** Error constructors rebuilt as themselves, so that `instanceof TypeError` still holds. */
const ERROR_TYPES: Record<string, ErrorConstructor> = {
  Error,
  TypeError,
  RangeError,
  SyntaxError,
  ReferenceError,
  EvalError,
  URIError,
};

/** Keys that travel in their own field of the record, not as properties. */
const OWN_FIELDS = new Set(['name', 'message', 'stack', 'cause', 'errors']);
const WIRE_FIELDS = new Set(['name', 'message', 'stack', 'props', 'cause', 'errors']);
/**
 * Keys that would change how the decoded error behaves if they became own properties. Anything
 * found on the error's prototype chain (Error.prototype, Object.prototype) is refused as well.
 */
const SHADOWING = new Set(['constructor', 'toString', 'valueOf', 'toJSON', 'then', '__proto__', 'name', 'message', 'stack', 'cause', 'errors', 'remoteProps']);

export function isError(value: unknown): value is Error {
  return guarded(() => value instanceof Error, false);
}

/** A stand-in for a cause that could not be sent as it is. */
function markerError(name: string, message: string): Error {
  const marker = new Error(message);
  marker.name = name;
  marker.stack = `${name}: ${message}`; // where the codec made it is of no interest to anyone
  return marker;
}

function describeError(error: unknown): string {
  const name = safeText(guarded(() => (error as Error).name, 'Error'), 100);
  const message = safeText(guarded(() => (error as Error).message, ''), 200);
  return `${name}: ${message}`;
}

/** The cause (or AggregateError member) to send in place of `cause`, given the errors being encoded around it. */
function chainMember(cause: unknown, active: readonly object[]): unknown {
  if (!isError(cause)) return cause;
  if (active.includes(cause)) {
    return markerError('CircularCause', `the cause chain loops back to an error already in it (${describeError(cause)}); the loop was cut here`);
  }
  if (active.length >= MAX_CAUSE_DEPTH) {
    return markerError('TruncatedCause', `the cause chain is deeper than ${MAX_CAUSE_DEPTH} errors; it was cut here (next: ${describeError(cause)})`);
  }
  return cause;
}

/**
 * The record sent for `error`. `active` is the errors being encoded around it, itself last
 * (its causes, and errors whose properties contain it), to detect a chain that loops.
 */
export function toWireError(error: Error, active: readonly object[]): WireError {
  const name = safeText(guarded(() => error.name, 'Error'), MAX_ERROR_NAME);
  const message = safeText(guarded(() => error.message, ''), MAX_ERROR_TEXT);
  const rawStack = guarded(() => error.stack, undefined);
  const stack = rawStack === undefined ? undefined : safeText(rawStack, MAX_ERROR_TEXT);
  const wire: WireError = { name, message, stack, props: ownProps(error) };
  const hasCause = guarded(() => 'cause' in error, false);
  if (hasCause) {
    wire.cause = guarded(
      () => chainMember(error.cause, active),
      markerError('UnreadableCause', 'reading the cause threw'),
    );
  }
  if (guarded(() => error instanceof AggregateError, false)) {
    const errors = guarded(() => (error as AggregateError).errors, undefined);
    if (Array.isArray(errors)) wire.errors = errors.map((member) => chainMember(member, active));
  }
  return wire;
}

/** Own enumerable data properties (accessors are not invoked), at most MAX_ERROR_PROPS of them. */
function ownProps(error: Error): Record<string, unknown> {
  const props: Record<string, unknown> = {};
  const keys = guarded(() => Object.keys(error), [] as string[]);
  let count = 0;
  const aggregate = guarded(() => error instanceof AggregateError, false);
  for (const key of keys) {
    // `errors` travels in a field of its own only for an AggregateError; elsewhere it is a property like any.
    if (OWN_FIELDS.has(key) && (key !== 'errors' || aggregate)) continue;
    if (count >= MAX_ERROR_PROPS) break;
    const descriptor = guarded(() => Object.getOwnPropertyDescriptor(error, key), undefined);
    if (descriptor === undefined || !('value' in descriptor)) continue;
    // defineProperty: a key such as '__proto__' must stay an own data property here.
    Object.defineProperty(props, key, { value: descriptor.value, writable: true, enumerable: true, configurable: true });
    count++;
  }
  return props;
}

function malformed(what: string): SerializationError {
  return new SerializationError(`Cannot decode value: malformed Error extension: ${what}`);
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && Object.getPrototypeOf(value) === Object.prototype;
}

function checkText(value: unknown, field: string, max: number): string {
  if (typeof value !== 'string') {
    const kind = value === null ? 'null' : typeof value === 'object' ? 'an object' : typeof value === 'undefined' ? 'undefined' : `a ${typeof value}`;
    throw malformed(`'${field}' is ${kind}, expected a string`);
  }
  // The encoder bounds these (with a marker); a longer one was not made by this codec.
  if (value.length > max + 64) throw malformed(`'${field}' is ${value.length} characters long, over the limit of ${max}`);
  return value;
}

/** Rebuilds an error from its record, checking every field. Throws SerializationError if malformed. */
export function fromWireError(wire: unknown): Error {
  if (!isRecord(wire)) throw malformed('expected a record');
  for (const key of Object.keys(wire)) if (!WIRE_FIELDS.has(key)) throw malformed(`unknown field '${boundText(key, 64)}'`);
  const name = checkText(wire.name, 'name', MAX_ERROR_NAME);
  const message = checkText(wire.message, 'message', MAX_ERROR_TEXT);
  const stack = wire.stack === undefined ? undefined : checkText(wire.stack, 'stack', MAX_ERROR_TEXT);
  const props = wire.props;
  if (!isRecord(props)) throw malformed("'props' is not a record");
  const keys = Object.keys(props);
  if (keys.length > MAX_ERROR_PROPS) throw malformed(`${keys.length} properties, over the limit of ${MAX_ERROR_PROPS}`);
  const errors = wire.errors;
  if (errors !== undefined && !Array.isArray(errors)) throw malformed("'errors' is not an array");

  const options = 'cause' in wire ? { cause: wire.cause } : undefined;
  // Own keys only: a plain lookup found Object.prototype's members ('constructor', 'toString' …).
  const Ctor = Object.hasOwn(ERROR_TYPES, name) ? ERROR_TYPES[name]! : Error;
  // An empty list, not `errors`: the constructor copies its argument item by item (seconds for a
  // forged list of millions), and the decoded array is set as `errors` below anyway.
  // Without capturing a stack trace (the remote stack replaces it below): capturing one was most of
  // the ~25 µs each of 400 000 forged AggregateError members cost to decode.
  const traceLimit = Error.stackTraceLimit;
  Error.stackTraceLimit = 0;
  let error: Error;
  try {
    error = errors !== undefined ? new AggregateError([], message, options) : new Ctor(message, options);
  } finally {
    Error.stackTraceLimit = traceLimit;
  }
  const define = (target: object, key: string, value: unknown): void => {
    Object.defineProperty(target, key, { value, writable: true, enumerable: true, configurable: true });
  };
  let apart: Record<string, unknown> | undefined;
  for (const key of keys) {
    if (SHADOWING.has(key) || key in error) define((apart ??= Object.create(null) as Record<string, unknown>), key, props[key]);
    else define(error, key, props[key]);
  }
  if (apart !== undefined) define(error, 'remoteProps', apart);
  // Enumerable, unlike AggregateError's own: whoever copies the error's own properties (RemoteError
  // does) keeps the members too.
  if (errors !== undefined) define(error, 'errors', errors);
  if (error.name !== name) Object.defineProperty(error, 'name', { value: name, writable: true, configurable: true });
  Object.defineProperty(error, 'stack', { value: stack, writable: true, configurable: true });
  return error;
}

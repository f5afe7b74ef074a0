/**
 * Reading an error that came from a worker without trusting it. Whatever the object is — a decoded
 * Error whose `stack` is an object, whose own `toString` is a string, a Proxy, an object whose
 * getters throw — nothing here runs its code (no getter, no trap, no toString) and nothing here
 * throws: every field comes out as plain data, every string bounded.
 *
 * Why so careful: a RemoteError is built inside the host's receive path, and is then handed to the
 * caller, loggers, `util.inspect`, `JSON.stringify` and metrics listeners. A single remote field
 * that makes any of those throw crashes or wedges the host.
 */
import { types } from 'node:util';
import { isLargeDecodedRecord } from './decoded-records.js';

/** How much of a remote error is kept. Longer strings are cut with a marker that says how much went. */
export const REMOTE_ERROR_LIMITS = Object.freeze({
  nameChars: 256,
  messageChars: 64 * 1024,
  stackChars: 256 * 1024,
  codeChars: 64,
  /** Own properties kept per error; the rest are left out. */
  props: 64,
  propKeyChars: 256,
  /** Errors nested in a cause chain (and in properties) rebuilt below the top one. */
  depth: 32,
  /** Values visited per error when looking for nested errors in properties. */
  nodes: 2000,
});

/** An error read from untrusted data: every field plain and bounded. */
export interface RemoteErrorView {
  name: string;
  message: string;
  /** The remote stack when it was a string, bounded. */
  stack: string | undefined;
  /** The remote `code` when it was a short string or a finite number, as a string. */
  code: string | undefined;
  hasCause: boolean;
  cause: unknown;
  /** Own enumerable data properties other than name, message, stack and cause, by key. */
  props: [key: string, value: unknown][];
}

/** The fields of an error that are read on their own, never copied as properties. */
const STRUCTURAL = new Set(['name', 'message', 'stack', 'cause']);

export function readRemoteError(remote: unknown, depth = 0): RemoteErrorView {
  const view: RemoteErrorView = { name: 'Error', message: '', stack: undefined, code: undefined, hasCause: false, cause: undefined, props: [] };
  if (typeof remote !== 'object' || remote === null || isProxy(remote)) {
    // Not an error at all (a forged frame, or a Proxy): say what it was, keep nothing of it.
    view.name = 'NonErrorThrown';
    view.message = typeof remote === 'string' ? bound(remote, REMOTE_ERROR_LIMITS.messageChars) : `non-Error value: ${describeValue(remote)}`;
    return view;
  }
  const name = dataProperty(remote, 'name', true);
  view.name = name === undefined ? 'Error' : boundedText(name, REMOTE_ERROR_LIMITS.nameChars);
  const message = dataProperty(remote, 'message', true);
  view.message = message === undefined ? '' : boundedText(message, REMOTE_ERROR_LIMITS.messageChars);
  const stack = dataProperty(remote, 'stack', false);
  if (typeof stack === 'string') view.stack = bound(stack, REMOTE_ERROR_LIMITS.stackChars);
  view.code = boundedCode(dataProperty(remote, 'code', false));
  if (hasOwn(remote, 'cause')) {
    view.hasCause = true;
    const cause = dataProperty(remote, 'cause', false);
    view.cause = depth < REMOTE_ERROR_LIMITS.depth ? safeValue(cause, depth + 1) : '[cause chain cut: deeper than 32 errors]';
  }
  const budget = { nodes: REMOTE_ERROR_LIMITS.nodes };
  for (const key of ownEnumerableKeys(remote)) {
    if (STRUCTURAL.has(key)) continue;
    if (view.props.length >= REMOTE_ERROR_LIMITS.props) break;
    if (key.length > REMOTE_ERROR_LIMITS.propKeyChars) continue;
    const descriptor = ownDescriptor(remote, key);
    if (descriptor === undefined || !('value' in descriptor)) continue; // an accessor is never run
    const value: unknown = descriptor.value;
    // The decoder (wire-error.ts) already set aside, in a prototype-less `remoteProps`, the remote
    // properties that would shadow an error's members: they are remote properties like the others,
    // under their own names, not one property called `remoteProps`.
    if (key === 'remoteProps' && typeof value === 'object' && value !== null && !isProxy(value) && Object.getPrototypeOf(value) === null) {
      for (const inner of ownEnumerableKeys(value)) {
        if (view.props.length >= REMOTE_ERROR_LIMITS.props) break;
        const d = ownDescriptor(value, inner);
        if (d !== undefined && 'value' in d && inner.length <= REMOTE_ERROR_LIMITS.propKeyChars) view.props.push([inner, safeValue(d.value, depth + 1, budget)]);
      }
      continue;
    }
    view.props.push([key, safeValue(value, depth + 1, budget)]);
  }
  return view;
}

/**
 * `value` with every Error in it (cause, an array such as AggregateError's `errors`, a plain object)
 * replaced by a safe copy, so that printing or inspecting it cannot throw. Other values are passed
 * as they are: they are plain data once decoded. Containers are copied only where something changed.
 */
export function safeValue(value: unknown, depth: number, budget = { nodes: REMOTE_ERROR_LIMITS.nodes }): unknown {
  if (typeof value !== 'object' || value === null) return value;
  if (--budget.nodes < 0 || depth > REMOTE_ERROR_LIMITS.depth) return value;
  if (isProxy(value)) return '[Proxy]';
  if (types.isNativeError(value) || isErrorLike(value)) return safeErrorCopy(value, depth);
  // Every item looked at counts, and a container larger than what is left is passed as it is, not
  // walked: a forged error carrying an array of millions of items, or a record of a million keys,
  // held the host's receive path 0.5–0.7 s here. (Errors in it stay the decoded errors they are.)
  if (Array.isArray(value)) {
    let copy: unknown[] | undefined;
    const length = value.length;
    if (length > budget.nodes) return value;
    for (let i = 0; i < length && --budget.nodes >= 0; i++) {
      const element = ownDescriptor(value, String(i));
      if (element === undefined || !('value' in element)) continue;
      const safe = safeValue(element.value, depth + 1, budget);
      if (safe !== element.value) (copy ??= copyArray(value))[i] = safe;
    }
    return copy ?? value;
  }
  if (!isPlainObject(value) || isLargeDecodedRecord(value)) return value;
  let copy: Record<string, unknown> | undefined;
  const keys = ownEnumerableKeys(value);
  if (keys.length > budget.nodes) return value;
  for (const key of keys) {
    if (--budget.nodes < 0) break;
    const descriptor = ownDescriptor(value, key);
    if (descriptor === undefined || !('value' in descriptor)) continue;
    const safe = safeValue(descriptor.value, depth + 1, budget);
    if (safe !== descriptor.value) {
      copy ??= copyObject(value);
      Object.defineProperty(copy, key, { value: safe, writable: true, enumerable: true, configurable: true });
    }
  }
  return copy ?? value;
}

/** Copies of containers, through descriptors: an accessor is left out, never run. */
function copyArray(array: unknown[]): unknown[] {
  const copy: unknown[] = [];
  for (let i = 0; i < array.length; i++) {
    const descriptor = ownDescriptor(array, String(i));
    copy.push(descriptor !== undefined && 'value' in descriptor ? descriptor.value : undefined);
  }
  return copy;
}

function copyObject(object: object): Record<string, unknown> {
  const copy = Object.create(Object.getPrototypeOf(object) as object | null) as Record<string, unknown>;
  for (const key of ownEnumerableKeys(object)) {
    const descriptor = ownDescriptor(object, key);
    if (descriptor !== undefined && 'value' in descriptor) Object.defineProperty(copy, key, { value: descriptor.value, writable: true, enumerable: true, configurable: true });
  }
  return copy;
}

/** The standard error classes a copy may keep (so `instanceof TypeError` still holds). */
const BUILTIN_ERRORS: readonly ErrorConstructor[] = [Error, TypeError, RangeError, SyntaxError, ReferenceError, EvalError, URIError];

/** An Error with the remote's fields as plain data: its class if it is a standard one, else Error. */
function safeErrorCopy(remote: object, depth: number): Error {
  const view = readRemoteError(remote, depth);
  let Ctor: ErrorConstructor = Error;
  try {
    const proto = Object.getPrototypeOf(remote) as object | null;
    Ctor = BUILTIN_ERRORS.find((C) => C.prototype === proto) ?? Error;
  } catch {
    // a revoked or hostile prototype chain: a plain Error
  }
  const copy = new Ctor(view.message, view.hasCause ? { cause: view.cause } : undefined);
  if (copy.name !== view.name) Object.defineProperty(copy, 'name', { value: view.name, writable: true, configurable: true });
  Object.defineProperty(copy, 'stack', { value: view.stack ?? `${view.name}: ${view.message}`, writable: true, configurable: true });
  if (view.code !== undefined) Object.defineProperty(copy, 'code', { value: view.code, writable: true, enumerable: true, configurable: true });
  for (const [key, value] of view.props) {
    if (key === 'code' || key in copy || PROTOCOL_KEYS.has(key)) continue; // never shadow what printing it relies on
    Object.defineProperty(copy, key, { value, writable: true, enumerable: true, configurable: true });
  }
  return copy;
}

/** Keys that make an object behave as something else when they are there at all. */
export const PROTOCOL_KEYS: ReadonlySet<string> = new Set(['then', 'catch', 'finally', 'inspect', 'toJSON', 'constructor', '__proto__']);

/**
 * A string for any value, never running its code: strings are bounded, other primitives written
 * out, objects described by their kind only.
 */
export function boundedText(value: unknown, max: number): string {
  return typeof value === 'string' ? bound(value, max) : bound(describeValue(value), max);
}

export function bound(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max)}… [${text.length - max} more characters cut]`;
}

/** A remote `code` worth keeping: a short string without control characters, or a finite number. */
function boundedCode(code: unknown): string | undefined {
  if (typeof code === 'number') return Number.isFinite(code) ? String(code) : undefined;
  if (typeof code !== 'string' || code.length === 0 || code.length > REMOTE_ERROR_LIMITS.codeChars) return undefined;
  // eslint-disable-next-line no-control-regex
  return /[\u0000-\u001f\u007f]/.test(code) ? undefined : code;
}

function describeValue(value: unknown): string {
  switch (typeof value) {
    case 'string':
      return value;
    case 'bigint':
      // A huge BigInt's decimal form costs time quadratic in its length; its size says enough.
      return value > -(10n ** 100n) && value < 10n ** 100n ? `${value}n` : '[a BigInt of more than 100 digits]';
    case 'symbol':
      return '[a symbol]';
    case 'function':
      return '[a function]';
    case 'object':
      if (value === null) return 'null';
      if (isProxy(value)) return '[a Proxy]';
      return Array.isArray(value) ? '[an array]' : '[an object]';
    default:
      return String(value); // number, boolean, undefined
  }
}

function isProxy(value: object): boolean {
  return types.isProxy(value);
}

/** An object whose prototype chain holds Error.prototype (decoded errors are real Errors; this catches copies from other realms too). */
function isErrorLike(value: object): boolean {
  try {
    return value instanceof Error;
  } catch {
    return false;
  }
}

function isPlainObject(value: object): boolean {
  try {
    const proto = Object.getPrototypeOf(value) as object | null;
    return proto === Object.prototype || proto === null;
  } catch {
    return false;
  }
}

function ownDescriptor(target: object, key: string): PropertyDescriptor | undefined {
  try {
    return Object.getOwnPropertyDescriptor(target, key);
  } catch {
    return undefined;
  }
}

function hasOwn(target: object, key: string): boolean {
  return ownDescriptor(target, key) !== undefined;
}

function ownEnumerableKeys(target: object): string[] {
  try {
    return Object.keys(target);
  } catch {
    return [];
  }
}

/**
 * The value of a data property, own or (with `inherited`) up the prototype chain; undefined for an
 * accessor, which is never run.
 */
function dataProperty(target: object, key: string, inherited: boolean): unknown {
  try {
    for (let o: object | null = target, hops = 0; o !== null && hops < 32; hops++) {
      if (isProxy(o)) return undefined;
      const descriptor = Object.getOwnPropertyDescriptor(o, key);
      if (descriptor !== undefined) return 'value' in descriptor ? descriptor.value : undefined;
      if (!inherited) return undefined;
      o = Object.getPrototypeOf(o) as object | null;
    }
  } catch {
    // fall through: nothing readable
  }
  return undefined;
}

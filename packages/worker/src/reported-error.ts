/**
 * Turning whatever the implementation throws into a Failure frame, without ever throwing.
 *
 * A thrown value is untrusted: its `name` may be an object, its `message` a getter that throws, its
 * `stack` 70 MB, it may be a (revoked) Proxy or not an Error at all. Before, any of these made
 * encoding the Failure throw, and the worker exited 70 instead of reporting. Now the thrown value is
 * first copied into a fresh Error holding only what could be read safely and bounded (reportableError),
 * then encoded with the frame size limit; if that still fails, the copy goes without its properties
 * and causes; if even that fails, a fixed error says so.
 */
import { inspect, types } from 'node:util';
import {
  boundText,
  describePath,
  encodeValue,
  FailureReason,
  frameMessage,
  guarded,
  MAX_CAUSE_DEPTH,
  MAX_ERROR_NAME,
  MAX_ERROR_PROPS,
  MAX_ERROR_TEXT,
  MessageKind,
  safeText,
  type CallUsage,
  type EncodeOptions,
  type FailureMessage,
  type PathKey,
} from '@process-sandbox/abstractions';

/** Total encoded size of the own properties (and non-Error causes) kept on one reported error. */
export const MAX_REPORTED_PROPS_BYTES = 256 * 1024;
/** Most AggregateError members reported. */
const MAX_REPORTED_MEMBERS = 64;

const OWN_FIELDS = new Set(['name', 'message', 'stack', 'cause', 'errors']);

function isError(value: unknown): value is Error {
  return guarded(() => value instanceof Error, false);
}

function defineHidden(target: object, key: string, value: unknown): void {
  Object.defineProperty(target, key, { value, writable: true, enumerable: false, configurable: true });
}

/** A short description of any value, running none of its code (util.inspect without custom inspectors or getters). */
function describeValue(value: unknown): string {
  if (typeof value !== 'object' && typeof value !== 'function') return safeText(value, 1024);
  return boundText(
    guarded(() => inspect(value, { depth: 1, customInspect: false, getters: false, showProxy: false, maxArrayLength: 10, maxStringLength: 200, breakLength: Infinity }), safeText(value, 1024)),
    1024,
  );
}

class Copier {
  /** Budget left for property values, in encoded bytes. */
  #budget = MAX_REPORTED_PROPS_BYTES;
  /** Copies made so far, by original: a cause chain that loops comes out looping (the codec marks it). */
  readonly #copies = new Map<object, Error>();

  /** `value` if it encodes within the budget, else undefined and why. */
  keep(value: unknown): { ok: true; value: unknown } | { ok: false; why: string } {
    try {
      const bytes = encodeValue(value, { maxBytes: this.#budget, limitName: 'the budget for reported error properties' });
      this.#budget -= bytes.byteLength;
      return { ok: true, value };
    } catch (error) {
      const text = guarded(() => String((error as Error).message), 'cannot be encoded');
      return { ok: false, why: boundText(text.replace(/^Value cannot cross the process boundary: (<value> )?/, ''), 300) };
    }
  }

  copy(thrown: unknown, depth: number): Error {
    if (types.isProxy(thrown)) return this.#proxy(thrown);
    if (!isError(thrown)) return this.#nonError(thrown);
    const seen = this.#copies.get(thrown);
    if (seen !== undefined) return seen;
    const message = safeText(guarded(() => thrown.message, ''), MAX_ERROR_TEXT);
    const members = guarded(() => (thrown instanceof AggregateError && Array.isArray(thrown.errors) ? (thrown.errors as unknown[]) : undefined), undefined);
    const copy = members !== undefined ? new AggregateError([], message) : new Error(message);
    this.#copies.set(thrown, copy);
    defineHidden(copy, 'name', safeText(guarded(() => thrown.name, 'Error'), MAX_ERROR_NAME));
    const stack = guarded(() => thrown.stack, undefined);
    // A stack that is not a string says nothing about where the error came from: left out.
    defineHidden(copy, 'stack', typeof stack === 'string' ? safeText(stack, MAX_ERROR_TEXT) : undefined);
    const notes: string[] = [];
    if (guarded(() => 'cause' in thrown, false)) {
      const cause = guarded(() => ({ value: thrown.cause }), undefined);
      if (cause === undefined) notes.push('cause: reading it threw');
      else defineHidden(copy, 'cause', this.#member(cause.value, depth, 'cause', notes));
    }
    if (members !== undefined) {
      const kept = members.slice(0, MAX_REPORTED_MEMBERS).map((member, i) => this.#member(member, depth, `errors[${i}]`, notes));
      if (members.length > kept.length) notes.push(`errors: ${members.length - kept.length} more not reported`);
      defineHidden(copy, 'errors', kept);
    }
    this.#props(thrown, copy, notes);
    if (notes.length > 0) (copy as { unserializableProps?: string }).unserializableProps = boundText(notes.join('; '), 4096);
    return copy;
  }

  /** A cause or an AggregateError member: errors copied (down to where the codec cuts the chain), other values kept if they encode. */
  #member(value: unknown, depth: number, where: string, notes: string[]): unknown {
    if (types.isProxy(value) || isError(value)) return depth < MAX_CAUSE_DEPTH ? this.copy(value, depth + 1) : new Error('(cut)');
    const kept = this.keep(value);
    if (kept.ok) return kept.value;
    notes.push(`${where}: ${kept.why}`);
    return describeValue(value);
  }

  #props(thrown: Error, copy: Error, notes: string[]): void {
    const keys = guarded(() => Object.keys(thrown), undefined);
    if (keys === undefined) return void notes.push('its own properties could not be listed');
    let count = 0;
    for (const key of keys) {
      // `errors` is a field of its own only on an AggregateError; on another error it is a property like any.
      if (OWN_FIELDS.has(key) && (key !== 'errors' || copy instanceof AggregateError)) continue;
      // One place is kept for unserializableProps.
      if (count >= MAX_ERROR_PROPS - 1) {
        notes.push(`only the first ${MAX_ERROR_PROPS - 1} own properties are reported`);
        break;
      }
      const descriptor = guarded(() => Object.getOwnPropertyDescriptor(thrown, key), undefined);
      if (descriptor === undefined) continue;
      if (!('value' in descriptor)) {
        notes.push(`${boundText(key, 100)}: a getter (not invoked)`);
        continue;
      }
      const kept = this.keep(descriptor.value);
      if (!kept.ok) {
        notes.push(`${boundText(key, 100)}: ${kept.why}`);
        continue;
      }
      Object.defineProperty(copy, key, { value: kept.value, writable: true, enumerable: true, configurable: true });
      count++;
    }
  }

  #proxy(thrown: unknown): Error {
    // Reading through a Proxy runs its traps (a revoked one throws): guarded, and only strings kept.
    const inner = guarded(() => {
      const target = thrown as Error;
      const name = target.name;
      const message = target.message;
      return typeof name === 'string' && typeof message === 'string' ? ` (reads as ${boundText(name, 200)}: ${boundText(message, 2000)})` : '';
    }, ' (revoked, or its traps threw)');
    return nonErrorThrown(`non-Error value thrown: a Proxy${inner}`);
  }

  #nonError(thrown: unknown): Error {
    if (typeof thrown === 'string') {
      const text = boundText(thrown, MAX_ERROR_TEXT);
      return Object.assign(nonErrorThrown(text), { thrown: text });
    }
    const error = nonErrorThrown(`non-Error value thrown: ${describeValue(thrown)}`);
    if (typeof thrown !== 'symbol' && typeof thrown !== 'function') {
      const kept = this.keep(thrown);
      if (kept.ok) (error as { thrown?: unknown }).thrown = kept.value;
    }
    return error;
  }
}

function nonErrorThrown(message: string): Error {
  const error = new Error(message);
  error.name = 'NonErrorThrown';
  return error;
}

/** A fresh Error carrying what could be read of `thrown`, bounded, that the codec can always encode. Never throws. */
export function reportableError(thrown: unknown): Error {
  try {
    return new Copier().copy(thrown, 1);
  } catch {
    return nonErrorThrown('the thrown value could not be read');
  }
}

/** Names a place in a Result message for error messages: `the result: items[2]`. */
function describeResultPath(path: readonly PathKey[]): string {
  return path[0] === 2 ? describePath('the result', path.slice(1)) : describePath('the reply', path);
}

/** Options for encoding a Result, made once: `maxBytes()` is read at each encoding (it changes at Init). */
export function resultEncodeOptions(maxBytes: () => number): EncodeOptions {
  return {
    get maxBytes() {
      return maxBytes();
    },
    limitName: 'maxMessageBytes',
    describePath: describeResultPath,
  };
}

/**
 * A Failure frame for `thrown` that always encodes within `maxBytes` (as long as that leaves room
 * for a short error): the full report, else the error without its properties and causes (with
 * `unserializableProps` saying why), else a fixed error.
 */
export function failureFrame(id: number, thrown: unknown, reason: FailureReason, health: FailureMessage[4], maxBytes: number, usage?: CallUsage): Buffer {
  const options: EncodeOptions = { maxBytes, limitName: 'maxMessageBytes', describePath: (path) => describePath('the error', path) };
  const error = reportableError(thrown);
  // The host says "The result of m() cannot cross the process boundary: " itself.
  if (reason === FailureReason.Unserializable) error.message = error.message.replace(/^Value cannot cross the process boundary: /, '');
  let why: string;
  try {
    return frameMessage(usage ? [MessageKind.Failure, id, error, reason, health, usage] : [MessageKind.Failure, id, error, reason, health], options);
  } catch (encodeError) {
    why = boundText(guarded(() => (encodeError as Error).message, 'it could not be encoded'), 1000);
  }
  // Each of message and stack gets a share of the frame (3 bytes per UTF-16 unit at worst).
  const share = Math.max(64, Math.min(MAX_ERROR_TEXT, Math.floor((maxBytes - 1024) / 6)));
  const plain = new Error(boundText(error.message, share));
  defineHidden(plain, 'name', error.name);
  defineHidden(plain, 'stack', error.stack === undefined ? undefined : boundText(error.stack, share));
  (plain as { unserializableProps?: string }).unserializableProps = why;
  // A limit's reason stays: the host's error class depends on it, not on the thrown value.
  const fallbackReason = reason === FailureReason.Thrown || reason === FailureReason.FuelExhausted || reason === FailureReason.WasmMemoryLimit ? reason : FailureReason.Unserializable;
  try {
    return frameMessage([MessageKind.Failure, id, plain, fallbackReason, health], options);
  } catch {
    const last = new Error('the thrown value could not be reported within maxMessageBytes');
    last.name = 'UnreportableError';
    last.stack = `${last.name}: ${last.message}`;
    return frameMessage([MessageKind.Failure, id, last, fallbackReason, health]);
  }
}

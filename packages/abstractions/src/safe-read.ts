/**
 * Reading values that may be hostile (a thrown value, an error from another process) without
 * running their code unguarded: getters, Proxy traps, toString, valueOf and Symbol.toPrimitive are
 * only ever reached inside a try, and every string that comes out is bounded.
 */

/** Longest `message` or `stack` kept, in UTF-16 code units; longer ones are cut with a marker. */
export const MAX_ERROR_TEXT = 64 * 1024;
/** Longest error `name` kept. */
export const MAX_ERROR_NAME = 1024;

/** Runs `read`; returns `fallback` if it throws (whatever it throws is not looked at: it may be hostile too). */
export function guarded<T, F>(read: () => T, fallback: F): T | F {
  try {
    return read();
  } catch {
    return fallback;
  }
}

/** `text` cut to `max` code units, with a marker saying how much was dropped. */
export function boundText(text: string, max: number): string {
  if (text.length <= max) return text;
  // Do not cut a surrogate pair in half: the half would not survive UTF-8.
  let end = max;
  const last = text.charCodeAt(end - 1);
  if (last >= 0xd800 && last <= 0xdbff) end--;
  return `${text.slice(0, end)}… [truncated: ${text.length - end} more characters]`;
}

/**
 * A bounded string for any value, without calling its own conversions: strings as they are,
 * other primitives as String() gives them (which runs no user code for primitives), objects and
 * functions as their [object Tag] (read guarded: a Proxy or a Symbol.toStringTag getter may throw).
 */
export function safeText(value: unknown, max: number): string {
  switch (typeof value) {
    case 'string':
      return boundText(value, max);
    case 'object':
    case 'function':
      if (value === null) return 'null';
      return boundText(guarded(() => Object.prototype.toString.call(value), '[object Unknown]'), max);
    case 'symbol':
      return boundText(guarded(() => value.toString(), 'Symbol()'), max);
    default:
      return boundText(String(value), max);
  }
}

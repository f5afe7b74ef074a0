/**
 * The limits both halves of the codec enforce, and the one error every decoding problem becomes.
 * Kept apart from the encoder and the decoder so that each (and the extension types between them)
 * can import them without importing each other.
 */
import { SerializationError } from './errors.js';

/** Deepest nesting of a value, counted across Maps, Sets, Errors and the rest (cycles show up as this). */
export const MAX_DEPTH = 100;
/**
 * Arrays and maps one decoded value may hold, nested ones included. A container costs one byte on
 * the wire and 40–64 bytes of heap: a frame of empty maps multiplied the host's memory 64 times (a
 * 64 MiB frame: 4 GiB, and ~7 s of decoding). Scalars cost at most 8 times their bytes, like honest
 * data. 2 Mi containers (a result of two million rows) is at most ~128 MiB of heap.
 */
export const MAX_DECODED_CONTAINERS = 2 * 1024 * 1024;
/**
 * Longest RegExp source that crosses (UTF-16 units). Compiling a pattern is one step nothing can
 * interrupt: a 64 MiB source held the event loop ~0.5 s. No honest pattern comes near 1 Mi units.
 */
export const MAX_REGEXP_SOURCE = 1024 * 1024;

/**
 * Items one array may hold, and entries one record (an object, a MessagePack map), Map or Set may
 * hold. V8 grows one container's storage in single steps proportional to its size, which nothing
 * can interrupt: measured on a loaded 2-core machine, an array's longest step was ~6 ms at 1 Mi items
 * and ~30 ms at 4–8 Mi, while an object's or a Map's rehash took ~65 ms at 1 Mi keys and 200–470 ms
 * at 2–4 Mi. A 64 MiB frame can declare 12 Mi keys. Honest data that large crosses as typed arrays,
 * Buffers, or a stream of items.
 */
export const MAX_ARRAY_ITEMS = 8 * 1024 * 1024;
export const MAX_RECORD_ENTRIES = 1024 * 1024;

/** The extension type of `undefined`: the encoder writes it itself, before any extension is asked (codec-encode.ts). */
export const EXT_UNDEFINED = 0;

export function malformed(what: string): SerializationError {
  return new SerializationError(`Cannot decode value: ${what}`);
}

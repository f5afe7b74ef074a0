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
 *   ext 8  RegExp             ([source, flags]; the source at most MAX_REGEXP_SOURCE units)
 *   ext 9  Invalid Date       (empty)
 *   ext -1 Date               (MessagePack's own timestamp)
 *   bin    Uint8Array         (decoded as a Uint8Array that shares the frame's memory)
 *
 * Both directions are bounded, because the other side may be hostile: nesting (MAX_DEPTH, counted
 * across extensions), BigInt size (MAX_BIGINT_BYTES, and its encoding is linear: decimal text took
 * 10–17 s to parse at tens of millions of digits), declared lengths (never more items than bytes
 * left), containers (MAX_DECODED_CONTAINERS), items per array and entries per record, Map or Set
 * (MAX_ARRAY_ITEMS, MAX_RECORD_ENTRIES), and, when asked, the encoded size (refused as soon as
 * it is passed, not after). Large frames can be decoded in slices of bounded time (SlicedDecode),
 * so that no frame holds the event loop.
 *
 * What cannot cross raises SerializationError naming where it is; anything malformed on decoding
 * raises SerializationError too ("Cannot decode value: …"), which the channel turns into a
 * ProtocolError.
 *
 * This module is the codec's face; the work is in codec-encode.ts, codec-decode.ts and the
 * extension types in codec-extensions.ts, with the limits in codec-limits.ts.
 */
export { describePath, formatPath, PathSlot, type PathKey } from './value-paths.js';
export { MAX_BIGINT_BYTES } from './bigint-ext.js';
export { MAX_ARRAY_ITEMS, MAX_DECODED_CONTAINERS, MAX_DEPTH, MAX_RECORD_ENTRIES, MAX_REGEXP_SOURCE } from './codec-limits.js';
export { encodeValue, type EncodeOptions, type EncoderInternals } from './codec-encode.js';
export { DECODE_SLICE_MS, decodeValue, decodeValueInSlices, SlicedDecode, type DecoderInternals } from './codec-decode.js';

/**
 * BigInt on the wire (ext 1): a sign byte (0 positive or zero, 1 negative), then the magnitude,
 * big-endian, with no leading zero byte; zero is the sign byte alone.
 *
 * Why not the decimal text it used to be: parsing decimal is quadratic in V8, and a forged Result
 * carrying tens of millions of digits held the host's event loop for 10–17 s. Hex conversion is
 * linear both ways (the largest allowed BigInt decodes in a few ms), and the size is capped.
 */
import { SerializationError } from './errors.js';

/** Largest BigInt magnitude that crosses: 1 MiB (about 2.5 million decimal digits). */
export const MAX_BIGINT_BYTES = 1024 * 1024;

/** Thrown by encodeBigInt for a BigInt over the cap; the codec explains it with the value's path. */
export class BigIntTooLarge extends Error {}

/** Bytes of the magnitude of `value`. */
export function bigIntBytes(value: bigint): number {
  return value === 0n ? 0 : Math.ceil((value < 0n ? -value : value).toString(16).length / 2);
}

export function encodeBigInt(value: bigint): Uint8Array {
  const negative = value < 0n;
  let hex = value === 0n ? '' : (negative ? -value : value).toString(16);
  if (hex.length % 2 === 1) hex = `0${hex}`;
  if (hex.length / 2 > MAX_BIGINT_BYTES) throw new BigIntTooLarge();
  const out = Buffer.allocUnsafe(1 + hex.length / 2);
  out[0] = negative ? 1 : 0;
  out.write(hex, 1, 'hex');
  return out;
}

/** Checks the form strictly (canonical bytes only) and the cap before any parsing. */
export function decodeBigInt(data: Uint8Array): bigint {
  const malformed = (what: string): SerializationError => new SerializationError(`Cannot decode value: ${what}`);
  if (data.byteLength === 0) throw malformed('empty BigInt extension');
  const sign = data[0]!;
  const length = data.byteLength - 1;
  if (sign > 1) throw malformed(`BigInt sign byte ${sign}, expected 0 or 1`);
  if (length > MAX_BIGINT_BYTES) throw malformed(`BigInt of ${length} bytes, over the limit of ${MAX_BIGINT_BYTES}`);
  if (length === 0) {
    if (sign === 1) throw malformed('BigInt negative zero');
    return 0n;
  }
  if (data[1] === 0) throw malformed('BigInt magnitude with a leading zero byte');
  const magnitude = BigInt(`0x${Buffer.from(data.buffer, data.byteOffset + 1, length).toString('hex')}`);
  return sign === 1 ? -magnitude : magnitude;
}

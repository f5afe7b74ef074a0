/**
 * The codec replaces and reads private members of @msgpack/msgpack's Encoder and Decoder (see
 * codec.ts). The version is pinned exactly in package.json; this check, run when the package is
 * imported (index.ts), fails loudly and clearly if the installed copy is not what the codec was
 * written for, rather than letting it misbehave (an `undefined` turning into `null`, limits not
 * enforced).
 *
 * The behaviour half (round trips through the codec) costs 10-45 ms of cold code at every import,
 * which in a worker is a tenth of its start (docs/benchmarks.md, "Worker start"). The worker's
 * bundle (packages/worker/scripts/bundle.mjs) runs it once when it is built, against the very copy
 * of @msgpack/msgpack it bundles, and defines the constant below as true: the bundled copy cannot
 * change after that, so its workers check only the members at start.
 */
import { Decoder, Encoder } from '@msgpack/msgpack';
import { decodeValue, encodeValue, MAX_DEPTH, SlicedDecode, type DecoderInternals } from './codec.js';
import { SerializationError } from './errors.js';

/** Replaced by `true` (esbuild's define) in a bundle whose build ran this check; undeclared elsewhere. */
declare const PROCESS_SANDBOX_CODEC_CHECKED_AT_BUILD: boolean | undefined;

/**
 * Throws a clear error if @msgpack/msgpack's Encoder or Decoder no longer has the private members
 * the codec replaces, or if the codec built on them no longer behaves (undefined kept, size limit
 * and depth limit enforced). Run once at import; exported for the test that proves it can fail.
 */
export function checkCodecInternals(EncoderClass: unknown = Encoder, DecoderClass: unknown = Decoder): void {
  const fail = (what: string): never => {
    throw new Error(`process-sandbox: @msgpack/msgpack is not the version the codec was written for (3.1.3, pinned in @process-sandbox/abstractions): ${what}. Reinstall the pinned version.`);
  };
  const encoderProto = (EncoderClass as { prototype?: Record<string, unknown> }).prototype ?? {};
  for (const name of ['doEncode', 'encodeMap', 'encodeExtension', 'ensureBufferSizeToWrite', 'resizeBuffer', 'encodeSharedRef', 'writeU8a']) {
    if (typeof encoderProto[name] !== 'function') fail(`Encoder has no method ${name}()`);
  }
  const decoderProto = (DecoderClass as { prototype?: Record<string, unknown> }).prototype ?? {};
  const decoderMethods = ['readHeadByte', 'pushArrayState', 'pushMapState', 'decodeExtension', 'decodeUtf8String', 'doDecodeSync', 'reinitializeState', 'setBuffer', 'hasRemaining', 'createExtraByteError'];
  for (const name of decoderMethods) {
    if (typeof decoderProto[name] !== 'function') fail(`Decoder has no method ${name}()`);
  }
  if (EncoderClass !== Encoder || DecoderClass !== Decoder) return; // a stand-in under test: the members were the point
  if (typeof PROCESS_SANDBOX_CODEC_CHECKED_AT_BUILD !== 'undefined' && PROCESS_SANDBOX_CODEC_CHECKED_AT_BUILD) return;
  const probe = new Decoder() as unknown as DecoderInternals;
  if (typeof probe.stack?.length !== 'number' || typeof probe.stack.top !== 'function') fail('Decoder has no stack.length or stack.top()');
  if (probe.headByte !== -1) fail('Decoder has no headByte of -1 (meaning: none read)');
  const back = decodeValue(Buffer.from(encodeValue({ u: undefined }))) as Record<string, unknown>;
  if (!Object.hasOwn(back, 'u') || back.u !== undefined) fail('undefined did not survive a round trip');
  const refused = (run: () => unknown): boolean => {
    try {
      run();
      return false;
    } catch (error) {
      return error instanceof SerializationError;
    }
  };
  if (!refused(() => encodeValue(new Array(64).fill(1), { maxBytes: 16 }))) fail('the encode size limit is not enforced');
  let deep: unknown = 1;
  for (let i = 0; i < MAX_DEPTH + 1; i++) deep = [deep];
  if (!refused(() => decodeValue(new Uint8Array(MAX_DEPTH + 2).fill(0x91)))) fail('the decode depth limit is not enforced');
  if (!refused(() => encodeValue(deep))) fail('the encode depth limit is not enforced');
  // The sliced decoder pauses and resumes inside the library's decoder: a value that needs several
  // slices (a zero-length slice pauses at every check) must come back whole.
  const many = Array.from({ length: 300 }, (_, i) => [i, `s${i}`, new Map([[i, new Set([i])]])]);
  const sliced = new SlicedDecode(Buffer.from(encodeValue(many)), 0);
  let slices = 0;
  while (!sliced.step()) slices++;
  if (slices === 0 || JSON.stringify(sliced.value, (_, v: unknown) => (v instanceof Map || v instanceof Set ? [...v] : v)) !== JSON.stringify(many, (_, v: unknown) => (v instanceof Map || v instanceof Set ? [...v] : v))) {
    fail('a value decoded in slices did not come back whole');
  }
}

// The sliced decoder (SlicedDecode, packages/abstractions/src/codec-decode.ts) against decodeValue:
// for the same bytes, the same value or the same SerializationError, on arbitrary values, on
// arbitrarily damaged encodings, and on the shapes that make it pause where only it pauses (inside
// a long string, while filling a Map or a Set, inside an extension inside an extension). A slice of
// 0 ms pauses at every chance it has, so each of these is decoded across many slices.
import { expect } from 'chai';
import fc from 'fast-check';
// All from the same files: under Wine, the workspace link and the relative path load two copies of
// the module, and an error of one is no instance of the other's SerializationError.
import { decodeValue, encodeValue, MAX_DECODED_CONTAINERS, SerializationError } from '../packages/abstractions/dist/index.js';
import { decodeValueInSlices, SlicedDecode } from '../packages/abstractions/dist/codec.js';

/**
 * Exact structural equality of two decoded values: types, prototypes, key order, Map and Set order,
 * bytes of binary data, Invalid Dates (which isDeepStrictEqual finds unequal to themselves).
 */
function same(a, b) {
  if (typeof a !== typeof b) return false;
  if (typeof a !== 'object' || a === null || b === null) return Object.is(a, b);
  if (Object.getPrototypeOf(a) !== Object.getPrototypeOf(b)) return false;
  if (a instanceof Date) return Object.is(a.getTime(), b.getTime());
  if (a instanceof RegExp) return a.source === b.source && a.flags === b.flags;
  if (a instanceof ArrayBuffer) return Buffer.from(a).equals(Buffer.from(b));
  if (ArrayBuffer.isView(a)) return Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
  if (a instanceof Map || a instanceof Set) return same([...a], [...b]);
  if (a instanceof Error && !(a.name === b.name && a.message === b.message && a.stack === b.stack && same(a.cause, b.cause) && 'cause' in a === 'cause' in b)) return false;
  if (Array.isArray(a)) {
    if (a.length !== b.length) return false;
    for (let i = 0; i < a.length; i++) if (!same(a[i], b[i])) return false;
  }
  const keys = Object.keys(a);
  const otherKeys = Object.keys(b);
  if (keys.length !== otherKeys.length || keys.some((key, i) => key !== otherKeys[i])) return false;
  return keys.every((key) => same(a[key], b[key]));
}

/** Decodes in slices of `sliceMs` (0: pause at every check); returns { value, slices } or { error }. */
function sliced(bytes, sliceMs = 0) {
  const decode = new SlicedDecode(bytes, sliceMs);
  try {
    while (!decode.step()) if (decode.slices > 100_000) throw new Error(`no end after ${decode.slices} slices`);
    return { value: decode.value, slices: decode.slices };
  } catch (error) {
    return { error, slices: decode.slices };
  }
}

function atOnce(bytes) {
  try {
    return { value: decodeValue(bytes) };
  } catch (error) {
    return { error };
  }
}

/** Both decoders agree on `bytes`: equal values, or SerializationErrors with the same message. */
function expectSameOutcome(bytes, label = '') {
  const a = atOnce(bytes);
  const b = sliced(bytes);
  if (a.error !== undefined || b.error !== undefined) {
    expect(b.error, `${label}: the sliced decoder fails too`).to.be.an.instanceOf(SerializationError);
    expect(a.error, `${label}: decodeValue fails too`).to.be.an.instanceOf(SerializationError);
    expect(b.error.message, label).to.equal(a.error.message);
    return { error: a.error, slices: b.slices };
  }
  expect(same(b.value, a.value), `${label}: the same value`).to.equal(true);
  return { value: a.value, slices: b.slices };
}

const encoded = (value) => Buffer.from(encodeValue(value));

/** Values of every kind the codec carries (what fails to encode is skipped by the properties). */
const anyValue = fc.anything({
  maxDepth: 4,
  withBigInt: true,
  withDate: true,
  withMap: true,
  withSet: true,
  withTypedArray: true,
  withSparseArray: true,
  withNullPrototype: false,
  withObjectString: true,
  withBoxedValues: false,
});
const withSpecials = fc.oneof(
  { arbitrary: anyValue, weight: 4 },
  fc.tuple(fc.string(), fc.string(), anyValue).map(([name, message, cause]) => Object.assign(new Error(message, { cause }), { name, code: 'E1' })),
  // Members' messages are strings: String() of an arbitrary value can throw (an own `toString: 0`).
  fc.array(fc.string()).map((messages) => new AggregateError(messages.map((m) => new TypeError(m)), 'many')),
  fc.constantFrom(/a+b/giu, new Date(NaN), Buffer.from('buffer'), new DataView(new ArrayBuffer(8)), new ArrayBuffer(3), undefined, -0, 2n ** 300n),
  fc.array(anyValue, { maxLength: 3 }).map((items) => new Map(items.map((v, i) => [i, new Set([v])]))),
);

function encodable(value) {
  try {
    return encoded(value);
  } catch {
    return undefined;
  }
}

describe('unit: the sliced decoder gives what decodeValue gives', function () {
  this.timeout(120_000);

  it('on 1000 arbitrary values: the same value', () => {
    let checked = 0;
    fc.assert(
      fc.property(withSpecials, (value) => {
        const bytes = encodable(value);
        if (bytes === undefined) return;
        const outcome = expectSameOutcome(bytes, 'arbitrary value');
        expect(outcome.error, 'an encodable value decodes').to.equal(undefined);
        checked++;
      }),
      { numRuns: 1000 },
    );
    expect(checked).to.be.above(500);
  });

  it('on 2000 damaged encodings (bytes changed, cut, or added): the same value or the same SerializationError', () => {
    let errors = 0;
    fc.assert(
      fc.property(withSpecials, fc.array(fc.tuple(fc.nat(), fc.nat({ max: 255 })), { minLength: 1, maxLength: 4 }), fc.nat({ max: 3 }), (value, edits, how) => {
        const original = encodable(value);
        if (original === undefined || original.length === 0) return;
        let bytes = Buffer.from(original);
        for (const [at, byte] of edits) bytes[at % bytes.length] = byte;
        if (how === 1) bytes = bytes.subarray(0, edits[0][0] % bytes.length);
        if (how === 2) bytes = Buffer.concat([bytes, Buffer.from([edits[0][1]])]);
        if (expectSameOutcome(bytes, 'damaged').error !== undefined) errors++;
      }),
      { numRuns: 2000 },
    );
    expect(errors, 'damaged encodings that fail').to.be.above(100);
  });

  it('where only the sliced decoder pauses: long strings in pieces, Map and Set fills, extensions in extensions, long arrays; across many slices', () => {
    const text = `${'é'.repeat(200_000)}😀${'a'.repeat(100_001)}${'😀'.repeat(70_000)}`; // pieces split multi-byte characters
    const cases = {
      'a long string': text,
      'a long string as a map key and value': { [text.slice(0, 300_000)]: text },
      'a Map of 20 000 entries': new Map(Array.from({ length: 20_000 }, (_, i) => [i, `v${i}`])),
      'a Set of 20 000 items': new Set(Array.from({ length: 20_000 }, (_, i) => `s${i}`)),
      'Sets in a Map in an Error in an array': [Object.assign(new Error('e'), { data: new Map([[1, new Set(Array.from({ length: 5000 }, (_, i) => [i])) ]]) })],
      'an array of 200 000 items (grown, not preallocated)': Array.from({ length: 200_000 }, (_, i) => i % 7),
      'an AggregateError of 3000 errors': new AggregateError(Array.from({ length: 3000 }, (_, i) => new RangeError(`r${i}`)), 'all'),
    };
    for (const [label, value] of Object.entries(cases)) {
      const { slices } = expectSameOutcome(encoded(value), label);
      expect(slices, `${label}: decoded in several slices`).to.be.above(1);
      // (An AggregateError comes back with `errors` enumerable, by design: not compared with itself.)
      if (!(value instanceof AggregateError)) expect(same(decodeValue(encoded(value)), value), `${label}: the value itself`).to.equal(true);
    }
  });

  it('the same limits: depth across extensions, MAX_DECODED_CONTAINERS across nested Sets, lying lengths, trailing bytes', () => {
    const deep = Buffer.concat([Buffer.alloc(150, 0x91), Buffer.from([0xc0])]);
    expect(expectSameOutcome(deep, 'deep').error.message).to.match(/nested deeper than 100 levels/);
    // Containers counted inside extensions: a Set holding a Set holding many [] arrays.
    const many = encoded(new Set([new Set([Array.from({ length: MAX_DECODED_CONTAINERS }, () => [])])]));
    expect(expectSameOutcome(many, 'containers').error.message).to.match(/more than 2097152 arrays and maps/);
    expect(expectSameOutcome(Buffer.from('ddffffffff00', 'hex'), 'lying').error.message).to.match(/declares 4294967295 items/);
    expect(expectSameOutcome(Buffer.from([0x91, 0x01, 0x02]), 'trailing').error.message).to.match(/Extra 1 of 3 byte/);
    // A long string cut short: the library's own error, not a partial string.
    const cut = encoded('x'.repeat(600_000)).subarray(0, 400_000);
    expect(expectSameOutcome(cut, 'cut string').error.message).to.match(/Insufficient data/);
  });

  it('decodeValueInSlices lets the event loop turn between slices', async () => {
    const bytes = encoded(Array.from({ length: 100_000 }, (_, i) => [i, { k: `v${i}` }]));
    let turns = 0;
    const ticking = setInterval(() => turns++, 0);
    try {
      const value = await decodeValueInSlices(bytes, 0);
      expect(value).to.have.length(100_000);
      expect(value[99_999]).to.deep.equal([99_999, { k: 'v99999' }]);
    } finally {
      clearInterval(ticking);
    }
    expect(turns, 'timer callbacks ran during the decoding').to.be.above(0);
  });
});

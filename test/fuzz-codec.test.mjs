// Property-based tests of the value codec (packages/abstractions/src/codec.ts): every supported
// value survives encodeValue → decodeValue with its exact type and contents, and what cannot cross
// (functions, symbols, circular references) is refused with a SerializationError naming the path.
//
// Representational limits that the equality below accepts on purpose (MessagePack, not the codec):
//   - -0 (as a number, a Map key aside) comes back as +0: MessagePack encodes it as the integer 0.
//     Inside typed arrays the bytes travel, so -0 (and NaN payloads) are kept there.
//   - Strings are UTF-8: a lone surrogate cannot be represented (see the dedicated test).
//   - Objects come back as plain objects (prototype Object.prototype); holes in arrays come back as
//     undefined; only own enumerable string keys travel. None of these is generated below.
//   - Errors are rebuilt from their name: a built-in name (TypeError, …) gives that class, any other
//     name gives an Error whose `name` is set; subclasses are not recreated.
import { expect } from 'chai';
import fc from 'fast-check';
import { decodeValue, encodeValue, formatPath, PathSlot, SerializationError } from '@process-sandbox/abstractions';

const ERROR_TYPES = { Error, TypeError, RangeError, SyntaxError, ReferenceError, EvalError, URIError };
const ERROR_RESERVED = new Set(['name', 'message', 'stack', 'cause']);
/**
 * Own properties of a decoded error never shadow its prototype's members: those keys come back
 * under `remoteProps` instead (docs/protocol.md).
 */
const SHADOWING = new Set(['constructor', 'toString', 'valueOf', 'toJSON', 'then', '__proto__', 'name', 'message', 'stack', 'cause', 'errors', 'remoteProps']);
const shadows = (Ctor, key) => SHADOWING.has(key) || key in Ctor.prototype;

/**
 * Round trip as the channel does it: encode (a view of a shared buffer, so copied at once), then
 * decode from a Buffer at an arbitrary (odd) offset inside a larger one, like a frame in a chunk.
 */
function roundTrip(value, offset = 1) {
  const encoded = Buffer.from(encodeValue(value));
  const host = Buffer.alloc(offset + encoded.length + 3, 0xee);
  encoded.copy(host, offset);
  return decodeValue(host.subarray(offset, offset + encoded.length));
}

// ---------------------------------------------------------------------------------------------
// Structural equality that checks types, not just shapes. Throws an AssertionError naming the path.

function bytesOf(view) {
  return Buffer.from(view.buffer, view.byteOffset, view.byteLength);
}

function fail(path, message) {
  expect.fail(`at ${path}: ${message}`);
}

function expectSame(actual, expected, path = '<value>') {
  if (typeof actual !== typeof expected) fail(path, `type ${typeof actual}, expected ${typeof expected}`);
  switch (typeof expected) {
    case 'number':
      // -0 travels as the integer 0 (MessagePack); everything else, NaN included, exactly.
      if (Object.is(expected, -0)) {
        if (!Object.is(actual, 0)) fail(path, `${actual}, expected 0 (for -0)`);
      } else if (!Object.is(actual, expected)) fail(path, `${actual}, expected ${expected}`);
      return;
    case 'string':
    case 'boolean':
    case 'bigint':
    case 'undefined':
      if (actual !== expected) fail(path, `${String(actual)}, expected ${String(expected)}`);
      return;
    case 'object':
      break;
    default:
      fail(path, `unexpected ${typeof expected} in a generated value`);
  }
  if (expected === null) {
    if (actual !== null) fail(path, 'expected null');
    return;
  }
  if (actual === null) fail(path, 'got null');
  const proto = Object.getPrototypeOf(expected);
  const actualProto = Object.getPrototypeOf(actual);

  if (Buffer.isBuffer(expected)) {
    // Buffer stays a Buffer (not a plain Uint8Array).
    if (actualProto !== Buffer.prototype) fail(path, `a ${actual.constructor?.name}, expected a Buffer`);
    if (!bytesOf(actual).equals(bytesOf(expected))) fail(path, 'Buffer bytes differ');
    return;
  }
  if (ArrayBuffer.isView(expected)) {
    // Every typed array (and DataView) keeps its exact class; a plain Uint8Array stays plain.
    if (actualProto !== proto) fail(path, `a ${actual.constructor?.name}, expected a ${expected.constructor.name}`);
    if (actual.byteLength !== expected.byteLength) fail(path, `byteLength ${actual.byteLength}, expected ${expected.byteLength}`);
    if (!(expected instanceof DataView) && actual.length !== expected.length) fail(path, `length ${actual.length}, expected ${expected.length}`);
    if (!bytesOf(actual).equals(bytesOf(expected))) fail(path, `${expected.constructor.name} bytes differ`);
    return;
  }
  if (expected instanceof ArrayBuffer) {
    if (actualProto !== ArrayBuffer.prototype) fail(path, 'expected an ArrayBuffer');
    if (!Buffer.from(actual).equals(Buffer.from(expected))) fail(path, 'ArrayBuffer bytes differ');
    return;
  }
  if (expected instanceof Date) {
    if (actualProto !== Date.prototype) fail(path, 'expected a Date');
    if (!Object.is(actual.getTime(), expected.getTime())) fail(path, `time ${actual.getTime()}, expected ${expected.getTime()}`);
    return;
  }
  if (expected instanceof RegExp) {
    if (actualProto !== RegExp.prototype) fail(path, 'expected a RegExp');
    if (actual.source !== expected.source) fail(path, `source ${actual.source}, expected ${expected.source}`);
    if (actual.flags !== expected.flags) fail(path, `flags ${actual.flags}, expected ${expected.flags}`);
    if (actual.lastIndex !== expected.lastIndex) fail(path, `lastIndex ${actual.lastIndex}`);
    return;
  }
  if (expected instanceof Map) {
    if (actualProto !== Map.prototype) fail(path, 'expected a Map');
    if (actual.size !== expected.size) fail(path, `Map size ${actual.size}, expected ${expected.size}`);
    const a = [...actual];
    [...expected].forEach(([k, v], i) => {
      expectSame(a[i][0], k, `${path}.<map key ${i}>`);
      expectSame(a[i][1], v, `${path}.<map value ${i}>`);
    });
    return;
  }
  if (expected instanceof Set) {
    if (actualProto !== Set.prototype) fail(path, 'expected a Set');
    if (actual.size !== expected.size) fail(path, `Set size ${actual.size}, expected ${expected.size}`);
    const a = [...actual];
    [...expected].forEach((v, i) => expectSame(a[i], v, `${path}.<set item ${i}>`));
    return;
  }
  if (expected instanceof Error) {
    const Ctor = Object.hasOwn(ERROR_TYPES, expected.name) ? ERROR_TYPES[expected.name] : Error;
    if (actualProto !== Ctor.prototype) fail(path, `a ${actual.constructor?.name}, expected a ${Ctor.name}`);
    if (actual.name !== expected.name) fail(path, `name ${actual.name}, expected ${expected.name}`);
    if (actual.message !== expected.message) fail(path, `message ${JSON.stringify(actual.message)}, expected ${JSON.stringify(expected.message)}`);
    if (actual.stack !== expected.stack) fail(path, `stack ${JSON.stringify(actual.stack)}, expected ${JSON.stringify(expected.stack)}`);
    if ('cause' in actual !== 'cause' in expected) fail(path, `'cause' in: ${'cause' in actual}, expected ${'cause' in expected}`);
    if ('cause' in expected) expectSame(actual.cause, expected.cause, `${path}.cause`);
    const props = (e) => Object.keys(e).filter((k) => !ERROR_RESERVED.has(k));
    const direct = props(expected).filter((k) => !shadows(Ctor, k));
    const apart = props(expected).filter((k) => shadows(Ctor, k));
    expect(props(actual), `${path}: own enumerable properties`).to.deep.equal(apart.length > 0 ? [...direct, 'remoteProps'] : direct);
    for (const key of direct) expectSame(actual[key], expected[key], `${path}.${key}`);
    if (apart.length > 0) {
      expect(Object.getPrototypeOf(actual.remoteProps), `${path}.remoteProps has no prototype`).to.equal(null);
      expect(Object.keys(actual.remoteProps), `${path}.remoteProps`).to.deep.equal(apart);
      for (const key of apart) expectSame(actual.remoteProps[key], expected[key], `${path}.remoteProps.${key}`);
    }
    return;
  }
  if (Array.isArray(expected)) {
    if (!Array.isArray(actual)) fail(path, 'expected an array');
    if (actual.length !== expected.length) fail(path, `length ${actual.length}, expected ${expected.length}`);
    expected.forEach((v, i) => expectSame(actual[i], v, `${path}.${i}`));
    return;
  }
  if (proto !== Object.prototype) fail(path, `generated an unexpected ${expected.constructor?.name}`);
  if (actualProto !== Object.prototype) fail(path, `a ${actual.constructor?.name}, expected a plain object`);
  expect(Object.keys(actual), `${path}: keys`).to.deep.equal(Object.keys(expected));
  for (const key of Object.keys(expected)) expectSame(actual[key], expected[key], `${path}.${key}`);
}

// ---------------------------------------------------------------------------------------------
// Arbitraries for every supported value

/** A view into a larger buffer, so byteOffset is not 0 and the backing store is bigger. */
const withOffset = (arb) =>
  fc.tuple(arb, fc.nat({ max: 3 }), fc.nat({ max: 3 })).map(([a, before, after]) => {
    const T = a.constructor;
    const big = new T(before + a.length + after);
    big.set(a, before);
    return big.subarray(before, before + a.length);
  });

const typedArray = fc.oneof(
  fc.int8Array(),
  fc.uint8ClampedArray(),
  fc.int16Array(),
  fc.uint16Array(),
  fc.int32Array(),
  fc.uint32Array(),
  fc.float32Array(),
  fc.float64Array(), // includes NaN, ±Infinity, -0
  fc.bigInt64Array(),
  fc.bigUint64Array(),
  withOffset(fc.oneof(fc.int16Array(), fc.float64Array(), fc.bigInt64Array(), fc.int32Array())),
);

const uint8 = fc.oneof(fc.uint8Array(), withOffset(fc.uint8Array()));
const buffer = fc.oneof(
  fc.uint8Array().map((u) => Buffer.from(u)), // small ones come from the pool: byteOffset ≠ 0
  fc.uint8Array().map((u) => Buffer.concat([Buffer.alloc(8), Buffer.from(u)]).subarray(8)),
  fc.constant(Buffer.alloc(0)),
);
const dataView = fc
  .tuple(fc.uint8Array({ maxLength: 40 }), fc.nat({ max: 5 }))
  .map(([u, off]) => new DataView(u.buffer, Math.min(off, u.length), u.length - Math.min(off, u.length)));
const arrayBuffer = fc.uint8Array({ maxLength: 64 }).map((u) => u.slice().buffer);

const escapeRegExp = (s) => s.replace(/[\\^$.*+?()[\]{}|/-]/g, '\\$&');
const regExp = fc
  .tuple(
    fc.oneof(
      fc.constantFrom('', 'a+', '^\\d{2,3}$', '(?<year>\\d{4})-(?<month>\\d\\d)', '[a-z]*?', 'x|y|\\bz\\b', '\\/path\\/', '(?=a)b', '.\\n'),
      fc.string({ unit: 'binary', maxLength: 12 }).map(escapeRegExp),
    ),
    fc.subarray(['d', 'g', 'i', 'm', 's', 'y']),
    fc.constantFrom('', 'u'),
  )
  .map(([source, flags, unicode]) => new RegExp(source, flags.join('') + unicode));

const date = fc.oneof(
  fc.date({ noInvalidDate: true }), // the whole range, ±8.64e15 ms
  fc.integer({ min: -5000, max: 5000 }).map((ms) => new Date(ms)), // around the epoch, negative ms too
  fc.constant(null).map(() => new Date(NaN)), // an Invalid Date stays invalid (it used to arrive as 1970)
);

const number = fc.oneof(
  fc.integer(),
  fc.maxSafeInteger(),
  fc.double(), // NaN, ±Infinity, -0, subnormals
  fc.constantFrom(2 ** 32, 2 ** 53, -(2 ** 53), 2 ** 64, 0.1, -0, Number.MIN_VALUE, 0xffffffff, -0x80000000 - 1),
);

// Strings: well-formed UTF-16 (no lone surrogates), short (JS UTF-8 path) and long (TextEncoder path).
const string = fc.oneof(
  fc.string({ unit: 'grapheme-ascii' }),
  fc.string({ unit: 'binary' }),
  fc.string({ unit: 'binary', minLength: 60, maxLength: 400 }),
);

const primitive = fc.oneof(
  fc.constant(undefined),
  fc.constant(null),
  fc.boolean(),
  number,
  string,
  fc.bigInt(),
  fc.bigInt({ min: -(2n ** 200n), max: 2n ** 200n }),
  fc.bigInt({ min: -(2n ** 5000n), max: 2n ** 5000n }),
);

const leaf = fc.oneof(
  { arbitrary: primitive, weight: 10 },
  { arbitrary: date, weight: 1 },
  { arbitrary: buffer, weight: 1 },
  { arbitrary: uint8, weight: 1 },
  { arbitrary: typedArray, weight: 2 },
  { arbitrary: dataView, weight: 1 },
  { arbitrary: arrayBuffer, weight: 1 },
  { arbitrary: regExp, weight: 1 },
);

// fast-check's strings are biased towards '__proto__', 'constructor', 'toString' …: good keys to
// try. An own '__proto__' key cannot cross (MessagePack decoders refuse it, see the test below), so
// it is kept out of the round-trip values.
const key = fc
  .oneof(fc.string({ unit: 'grapheme-ascii', maxLength: 10 }), fc.string({ unit: 'binary', maxLength: 6 }), fc.constantFrom('0', '1', '10', '-1', 'constructor', 'toString', 'length'))
  .filter((k) => k !== '__proto__');
/** Own enumerable error properties (a `code` often, as in Node's errors). */
const errorPropKey = fc.oneof(fc.constant('code'), key).filter((k) => !ERROR_RESERVED.has(k) && k !== '__proto__');

const { value, error } = fc.letrec((tie) => ({
  value: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    { arbitrary: leaf, weight: 6 },
    { arbitrary: fc.array(tie('value'), { maxLength: 5 }), weight: 2 },
    { arbitrary: fc.dictionary(key, tie('value'), { maxKeys: 5, noNullPrototype: true }), weight: 2 },
    { arbitrary: fc.array(fc.tuple(tie('value'), tie('value')), { maxLength: 4 }).map((entries) => new Map(entries)), weight: 1 },
    { arbitrary: fc.array(tie('value'), { maxLength: 4 }).map((items) => new Set(items)), weight: 1 },
    { arbitrary: tie('error'), weight: 1 },
  ),
  error: fc
    .record(
      {
        type: fc.constantFrom(...Object.keys(ERROR_TYPES)),
        message: fc.oneof(fc.constant(''), string),
        name: fc.option(fc.oneof(fc.constantFrom('AbortError', 'SystemError', 'TypeError', 'MyError'), fc.string({ maxLength: 10 })), { freq: 3 }),
        stack: fc.oneof(fc.constant('keep'), fc.constant(undefined), string),
        cause: fc.oneof(
          { arbitrary: fc.constant({ none: true }), weight: 2 },
          { arbitrary: tie('error').map((cause) => ({ cause })), weight: 2 }, // cause chains
          { arbitrary: tie('value').map((cause) => ({ cause })), weight: 1 }, // any value, undefined included
        ),
        props: fc.dictionary(errorPropKey, tie('value'), { maxKeys: 3 }),
      },
      { noNullPrototype: true },
    )
    .map(({ type, message, name, stack, cause, props }) => {
      const e = new ERROR_TYPES[type](message, 'none' in cause ? undefined : { cause: cause.cause });
      if (name !== null) e.name = name; // an own (enumerable) name, as custom error code does
      if (stack !== 'keep') Object.defineProperty(e, 'stack', { value: stack, writable: true, configurable: true });
      for (const [k, v] of Object.entries(props)) e[k] = v;
      return e;
    }),
}));

// ---------------------------------------------------------------------------------------------

describe('codec (property-based)', function () {
  this.timeout(20_000);

  it('decodeValue(encodeValue(v)) is v, types included, for every supported value', () => {
    fc.assert(
      fc.property(value, fc.nat({ max: 7 }), (v, offset) => {
        expectSame(roundTrip(v, offset), v);
      }),
      { numRuns: 800 },
    );
  });

  it('round-trips each kind of leaf at the top level and inside objects and arrays', () => {
    fc.assert(
      fc.property(leaf, (v) => {
        expectSame(roundTrip(v), v);
        expectSame(roundTrip({ a: v, u: undefined }), { a: v, u: undefined });
        expectSame(roundTrip([undefined, v, undefined]), [undefined, v, undefined]);
      }),
      { numRuns: 400 },
    );
  });

  it('round-trips Errors with cause chains and own properties', () => {
    fc.assert(
      fc.property(error, (e) => {
        expectSame(roundTrip(e), e);
      }),
      { numRuns: 300 },
    );
  });

  it("errors named like Object.prototype members ('constructor', 'toString', …) come back as Errors", () => {
    for (const name of ['constructor', 'toString', 'valueOf', 'hasOwnProperty', '__proto__', 'isPrototypeOf', '__defineGetter__']) {
      const e = new RangeError(`named ${name}`);
      e.name = name;
      expectSame(roundTrip(e), e);
    }
  });

  it('encoding one value does not disturb the bytes of another once copied (shared buffers)', () => {
    fc.assert(
      fc.property(value, value, (a, b) => {
        const ea = Buffer.from(encodeValue(a));
        const eb = Buffer.from(encodeValue(b));
        expect(Buffer.from(encodeValue(a)).equals(ea), 'encoding is deterministic').to.equal(true);
        expectSame(decodeValue(eb), b);
        expectSame(decodeValue(ea), a);
      }),
      { numRuns: 150 },
    );
  });

  it('lone surrogates (not representable in UTF-8) never throw: kept, or replaced by U+FFFD', () => {
    // A MessagePack limitation, not the codec's: short strings go through a JS UTF-8 encoder that
    // keeps them (as WTF-8), long ones through TextEncoder, which replaces them. Documented here.
    const loneSurrogate = fc.integer({ min: 0xd800, max: 0xdfff }).map((c) => String.fromCharCode(c));
    const text = fc.array(fc.oneof(loneSurrogate, fc.string({ unit: 'binary', maxLength: 4 })), { maxLength: 40 }).map((parts) => parts.join(''));
    fc.assert(
      fc.property(text, (s) => {
        const back = roundTrip(s);
        expect([s, s.toWellFormed()]).to.include(back);
      }),
      { numRuns: 200 },
    );
  });

  describe('what cannot cross', () => {
    /**
     * The places in a value where a child sits, named as the codec names them in its messages,
     * with a setter that replaces that child in place (keeping the container's identity).
     */
    function slots(container) {
      if (container instanceof Map) {
        const entries = [...container];
        const rebuild = (i, which, v) => {
          entries[i] = which === 0 ? [v, entries[i][1]] : [entries[i][0], v];
          container.clear();
          for (const [k, x] of entries) container.set(k, x);
        };
        return entries.flatMap(([k, v], i) => [
          { key: new PathSlot(`map key ${i}`), get: () => k, set: (x) => rebuild(i, 0, x) },
          { key: new PathSlot(`map value ${i}`), get: () => v, set: (x) => rebuild(i, 1, x) },
        ]);
      }
      if (container instanceof Set) {
        const items = [...container];
        return items.map((v, i) => ({
          key: new PathSlot(`set item ${i}`),
          get: () => v,
          set: (x) => {
            items[i] = x;
            container.clear();
            for (const item of items) container.add(item);
          },
        }));
      }
      if (container instanceof Error) {
        const own = Object.keys(container).filter((k) => !ERROR_RESERVED.has(k));
        const list = own.map((k) => ({ key: k, get: () => container[k], set: (x) => (container[k] = x) }));
        if ('cause' in container) list.push({ key: new PathSlot('cause'), isCause: true, get: () => container.cause, set: (x) => (container.cause = x) });
        return list;
      }
      if (Array.isArray(container) || Object.getPrototypeOf(container) === Object.prototype) {
        const define = (k, x) => Object.defineProperty(container, k, { value: x, writable: true, enumerable: true, configurable: true });
        const array = Array.isArray(container);
        return Object.keys(container).map((k) => ({ key: array ? Number(k) : k, get: () => container[k], set: (x) => define(k, x) }));
      }
      return []; // typed arrays, dates, regexps …: leaves
    }
    const isContainer = (v) => typeof v === 'object' && v !== null && slots(v).length > 0;

    /** Walks down `choices` from `root`; returns the containers met, each with its path. */
    function descend(root, choices) {
      const trail = [{ node: root, path: [] }];
      for (const c of choices) {
        const { node, path } = trail.at(-1);
        if (!isContainer(node)) break;
        const s = slots(node);
        const slot = s[c % s.length];
        if (!isContainer(slot.get())) break;
        trail.push({ node: slot.get(), path: [...path, slot.key], viaCause: slot.isCause === true });
      }
      return trail;
    }

    /**
     * A deep copy of a generated value, to mutate without touching what fast-check generated (it may
     * reuse those instances while shrinking).
     */
    function clone(v) {
      if (typeof v !== 'object' || v === null) return v;
      if (Buffer.isBuffer(v)) return Buffer.from(v);
      if (v instanceof DataView) return new DataView(v.buffer.slice(v.byteOffset, v.byteOffset + v.byteLength));
      if (ArrayBuffer.isView(v)) return v.slice();
      if (v instanceof ArrayBuffer) return v.slice(0);
      if (v instanceof Date) return new Date(v.getTime());
      if (v instanceof RegExp) return new RegExp(v.source, v.flags);
      if (v instanceof Map) return new Map([...v].map(([k, x]) => [clone(k), clone(x)]));
      if (v instanceof Set) return new Set([...v].map(clone));
      if (v instanceof Error) {
        const e = new (Object.getPrototypeOf(v).constructor)(v.message, 'cause' in v ? { cause: clone(v.cause) } : undefined);
        Object.defineProperty(e, 'stack', { value: v.stack, writable: true, configurable: true });
        for (const [k, x] of Object.entries(v)) e[k] = clone(x);
        return e;
      }
      if (Array.isArray(v)) return v.map(clone);
      return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, clone(x)]));
    }

    function expectSerializationError(v, ...fragments) {
      let caught;
      try {
        encodeValue(v);
      } catch (error) {
        caught = error;
      }
      expect(caught, 'encodeValue threw').to.be.instanceOf(SerializationError);
      expect(caught.code).to.equal('ERR_PS_SERIALIZATION');
      for (const f of fragments) expect(caught.message).to.include(f);
      return caught;
    }

    const unsupported = fc.oneof(
      fc.constant(() => 1).map((f) => ({ bad: f, type: 'function' })),
      fc.constant(class Foo {}).map((f) => ({ bad: f, type: 'function' })),
      fc.string({ maxLength: 5 }).map((d) => ({ bad: Symbol(d), type: 'symbol' })),
    );

    it('a function or a symbol anywhere: SerializationError naming its path', () => {
      fc.assert(
        fc.property(value, fc.array(fc.nat(), { maxLength: 8 }), fc.nat(), unsupported, (generated, choices, pick, { bad, type }) => {
          let v = clone(generated);
          const trail = descend(v, choices);
          const { node, path } = trail.at(-1);
          let where = '<value>';
          if (isContainer(node)) {
            const s = slots(node);
            const slot = s[pick % s.length];
            slot.set(bad);
            where = `<value>${formatPath([...path, slot.key])}`;
          } else {
            v = bad;
          }
          expectSerializationError(v, `${where} is a ${type}`);
        }),
        { numRuns: 300 },
      );
    });

    it('a circular reference anywhere: SerializationError naming the path of the back-reference', () => {
      fc.assert(
        fc.property(value, fc.array(fc.nat(), { maxLength: 8 }), fc.nat(), fc.nat(), (generated, choices, up, pick) => {
          let v = clone(generated);
          if (!isContainer(v)) v = [v]; // make room for a cycle
          const trail = descend(v, choices);
          const from = up % trail.length;
          const target = trail[from].node; // an ancestor (or the container itself)
          const { node, path: at } = trail.at(-1);
          const s = slots(node);
          const slot = s[pick % s.length];
          slot.set(target);
          // The loop: trail[from] … node, then back to trail[from] through the slot just set.
          const loop = [...trail.slice(from + 1).map((t) => ({ viaCause: t.viaCause, node: t.node })), { viaCause: slot.isCause === true, node: target }];
          if (loop.some((edge) => edge.viaCause && edge.node instanceof Error)) {
            // A loop through a cause that leads back to an error already in the chain is cut with
            // a marker error, not refused.
            const encoded = Buffer.from(encodeValue(v));
            expect(encoded.includes('CircularCause'), 'a CircularCause marker is sent').to.equal(true);
            decodeValue(encoded);
            return;
          }
          const error = expectSerializationError(v, 'circular reference', `<value>${formatPath([...at, slot.key])}`);
          expect(error.message).to.not.include('Maximum call stack');
        }),
        { numRuns: 300 },
      );
    });

    it("an object with an own '__proto__' key (JSON.parse makes them): SerializationError naming its path", () => {
      // MessagePack decoders refuse the key, so it must be refused when encoding, not on the peer.
      fc.assert(
        fc.property(value, fc.array(fc.nat(), { maxLength: 8 }), fc.nat(), fc.oneof(value, fc.constant(1)), (generated, choices, pick, inner) => {
          let v = clone(generated);
          const bad = JSON.parse('{"__proto__": 1, "a": 2}');
          bad.__proto__ = inner; // (an own data property: this assignment does not change the prototype)
          expect(Object.hasOwn(bad, '__proto__')).to.equal(true);
          const trail = descend(v, choices);
          const { node, path } = trail.at(-1);
          let where = '<value>';
          if (isContainer(node)) {
            const s = slots(node);
            const slot = s[pick % s.length];
            slot.set(bad);
            where = `<value>${formatPath([...path, slot.key])}`;
          } else {
            v = bad;
          }
          expectSerializationError(v, `${where} is a record with an own '__proto__' key`);
        }),
        { numRuns: 150 },
      );
      // Other dangerous keys are fine.
      const tricky = JSON.parse('{"constructor": 1, "toString": {"valueOf": 2}, "hasOwnProperty": null, "prototype": [3]}');
      expectSame(roundTrip(tricky), tricky);
    });

    it('the classic cases, spelled out', () => {
      const self = { a: 1 };
      self.me = self;
      expectSerializationError(self, 'circular reference at <value>.me');
      const map = new Map();
      map.set('self', map);
      expectSerializationError({ map }, 'circular reference at <value>.map.<map value 0>');
      const set = new Set();
      set.add(set);
      expectSerializationError([set], 'circular reference at <value>[0].<set item 0>');
      const err = new Error('loop');
      err.self = err;
      expectSerializationError(err, 'circular reference at <value>.self');
      expectSerializationError({ f() {} }, '<value>.f is a function');
      expectSerializationError({ 'odd key': [0, { g: Symbol('s') }] }, '<value>["odd key"][1].g is a symbol');
      expectSerializationError(new Map([[Symbol.iterator, 1]]), '<value>.<map key 0> is a symbol');
      expectSerializationError(new Error('x', { cause: () => 0 }), '<value>.<cause> is a function');
      // After all that, the codec still works (no encoder left mid-value).
      expectSame(roundTrip(new Map([[1, new Set([2n])]])), new Map([[1, new Set([2n])]]));
    });
  });
});

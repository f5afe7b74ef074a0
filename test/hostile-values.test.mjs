// The value codec against hostile input, both ways: what a worker may forge in a frame (huge or
// malformed BigInts, deep nesting, lying lengths, malformed Error records), what a caller may pass
// (deep or huge arguments), and what an implementation may throw (values whose reading throws,
// Proxies, 70 MB stacks, loops). Timings are printed, never asserted.
import { expect } from 'chai';
import fc from 'fast-check';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { decodeValue, encodeValue, MAX_BIGINT_BYTES, MAX_CAUSE_DEPTH, MAX_DECODED_CONTAINERS, MAX_DEPTH, SerializationError } from '@process-sandbox/abstractions';
import { ProcessProxy, ProcessSandboxError, RemoteError } from '@process-sandbox/core';
import { checkCodecInternals } from '../packages/abstractions/dist/codec-check.js';
import { createProxy, disposeProxies, fixture, rejectionOf } from './support/pools.mjs';
import { isAlive, waitFor } from './support/processes.mjs';
import { failureFrame } from '../packages/worker/dist/reported-error.js';

// ─── Raw MessagePack, to forge what the encoder would never write ──────────────────────────────

const u32 = (n) => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
};
/** An ext 32 with `type` and `body`. */
const ext = (type, body) => Buffer.concat([Buffer.from([0xc9]), u32(body.length), Buffer.from([type & 0xff]), body]);
const encoded = (value) => Buffer.from(encodeValue(value));

function decodeError(bytes) {
  try {
    decodeValue(bytes);
  } catch (error) {
    return error;
  }
  expect.fail('decodeValue did not throw');
}

function encodeError(value, options) {
  try {
    encodeValue(value, options);
  } catch (error) {
    return error;
  }
  expect.fail('encodeValue did not throw');
}

function timed(label, run) {
  const start = process.hrtime.bigint();
  const result = run();
  console.log(`      ${label}: ${(Number(process.hrtime.bigint() - start) / 1e6).toFixed(1)} ms`);
  return result;
}

describe('hostile values: the codec', function () {
  this.timeout(60_000);

  describe('BigInt (linear encoding, capped)', () => {
    it('round-trips the largest allowed BigInt, positive and negative, and prints how long decoding took', () => {
      const largest = (1n << BigInt(MAX_BIGINT_BYTES * 8)) - 1n;
      for (const value of [largest, -largest]) {
        const bytes = encoded(value);
        const back = timed(`decoding a ${MAX_BIGINT_BYTES}-byte BigInt`, () => decodeValue(bytes));
        expect(back === value).to.equal(true);
      }
    });

    it('refuses to encode a larger BigInt with SerializationError naming its path and the limit', () => {
      const error = encodeError({ n: 1n << BigInt(MAX_BIGINT_BYTES * 8) });
      expect(error).to.be.an.instanceOf(SerializationError);
      expect(error.message).to.include('<value>.n is a BigInt of').and.include(`limit of ${MAX_BIGINT_BYTES} bytes`);
    });

    it('refuses a forged BigInt over the cap, and malformed ones, with SerializationError (no parse attempted)', () => {
      const over = Buffer.alloc(1 + MAX_BIGINT_BYTES + 1, 0xff);
      over[0] = 0;
      const overError = timed('refusing an over-cap BigInt', () => decodeError(ext(1, over)));
      expect(overError).to.be.an.instanceOf(SerializationError);
      expect(overError.message).to.include('over the limit');
      for (const [body, fragment] of [
        [Buffer.from([]), 'empty'],
        [Buffer.from([2, 1]), 'sign byte'],
        [Buffer.from([1]), 'negative zero'],
        [Buffer.from([0, 0, 1]), 'leading zero'],
      ]) {
        const error = decodeError(ext(1, body));
        expect(error, fragment).to.be.an.instanceOf(SerializationError);
        expect(error.message).to.include(fragment);
      }
    });

    it('a decimal BigInt of tens of millions of digits (the old format) is no longer parsed', () => {
      const digits = Buffer.alloc(20_000_000, 0x39); // '9' × 2e7: was a 10–17 s parse
      const error = timed('refusing 2e7 decimal digits', () => decodeError(ext(1, digits)));
      expect(error).to.be.an.instanceOf(SerializationError);
    });
  });

  describe('depth', () => {
    const nest = (depth, wrap) => {
      let value = 1;
      for (let i = 0; i < depth; i++) value = wrap(value);
      return value;
    };

    it('encoding a value nested 10^5 levels gives SerializationError, not a RangeError, whatever the containers', () => {
      for (const [what, wrap] of [
        ['arrays', (v) => [v]],
        ['objects', (v) => ({ v })],
        ['Maps', (v) => new Map([[1, v]])],
        ['Sets', (v) => new Set([v])],
        ['Errors (in properties)', (v) => Object.assign(new Error('e'), { v })],
        ['a mix', (v) => [new Map([['k', { s: new Set([v]) }]])]],
      ]) {
        const value = nest(100_000, wrap);
        const error = timed(`refusing 10^5 nested ${what}`, () => encodeError(value));
        expect(error, what).to.be.an.instanceOf(SerializationError);
        expect(error.message, what).to.include(`nested deeper than ${MAX_DEPTH} levels`);
      }
    });

    it('round-trips a value exactly at the depth limit, and refuses one level more', () => {
      const atLimit = nest(MAX_DEPTH - 1, (v) => [v]);
      expect(JSON.stringify(decodeValue(encoded(atLimit)))).to.equal(JSON.stringify(atLimit));
      expect(encodeError([atLimit])).to.be.an.instanceOf(SerializationError);
      // Counted across extensions: Maps and Errors use up the same budget.
      const mixed = nest((MAX_DEPTH - 1) / 3, (v) => new Map([[1, [v]]]));
      expect(decodeValue(encoded(mixed))).to.be.an.instanceOf(Map);
    });

    it('decoding forged deep nesting fails with SerializationError, arrays, maps and extensions alike', () => {
      const arrays = Buffer.concat([Buffer.alloc(1_000_000, 0x91), Buffer.from([0xc0])]);
      const maps = Buffer.concat([Buffer.from('81a16b'.repeat(300_000), 'hex'), Buffer.from([0xc0])]);
      let mapExt = Buffer.from([0xc0]);
      for (let i = 0; i < 2000; i++) mapExt = ext(2, Buffer.concat([Buffer.from([0x92, 0x01]), mapExt]));
      let causes = encoded(new Error('root'));
      const wireHead = (inner) => Buffer.concat([Buffer.from([0x85]), encoded('name'), encoded('Error'), encoded('message'), encoded('m'), encoded('stack'), encoded('s'), encoded('props'), Buffer.from([0x80]), encoded('cause'), inner]);
      for (let i = 0; i < 2000; i++) causes = ext(4, wireHead(causes));
      for (const [what, bytes] of [
        ['10^6 nested arrays', arrays],
        ['3·10^5 nested maps', maps],
        ['2000 nested Map extensions', mapExt],
        ['a 2000-deep Error cause chain', causes],
      ]) {
        const error = timed(`refusing ${what}`, () => decodeError(bytes));
        expect(error, what).to.be.an.instanceOf(SerializationError);
        expect(error.message, what).to.include(`nested deeper than ${MAX_DEPTH} levels`);
      }
    });

    it('a cause chain deeper than the cap is cut with a TruncatedCause, a looping one with a CircularCause', () => {
      const deep = nest(1000, (cause) => new Error('level', { cause }));
      let error = decodeValue(encoded(deep));
      let length = 1;
      while (error.cause instanceof Error) {
        error = error.cause;
        length++;
      }
      expect(error.name).to.equal('TruncatedCause');
      expect(error.message).to.include(`deeper than ${MAX_CAUSE_DEPTH}`);
      expect(length).to.equal(MAX_CAUSE_DEPTH + 1);

      const a = new Error('a');
      const b = new TypeError('b', { cause: a });
      a.cause = b;
      const back = decodeValue(encoded(a));
      expect(back.message).to.equal('a');
      expect(back.cause).to.be.an.instanceOf(TypeError);
      expect(back.cause.cause.name).to.equal('CircularCause');
      expect(back.cause.cause.message).to.include('Error: a');
    });
  });

  describe('lengths and sizes', () => {
    it('refuses declared lengths beyond the bytes present, before allocating', () => {
      for (const [what, bytes] of [
        ['array 32', Buffer.from('ddffffffff', 'hex')],
        ['map 32', Buffer.from('dfffffffff', 'hex')],
        ['str 32', Buffer.from('dbffffffff41', 'hex')],
        ['bin 32', Buffer.from('c6ffffffff00', 'hex')],
        ['ext 32', Buffer.from('c9ffffffff0100', 'hex')],
        ['array 16 in a tiny frame', Buffer.from('dcffff01', 'hex')],
      ]) {
        const error = decodeError(bytes);
        expect(error, what).to.be.an.instanceOf(SerializationError);
        expect(error.message, what).to.match(/^Cannot decode value: /);
      }
    });

    it('bounds the arrays and maps one value may hold (one wire byte each, up to 64 bytes of heap): empty ones count too', () => {
      // An array32 of n one-byte items: `byte` is the item (0x80 an empty map, 0x90 an empty array, 0x01 the number 1).
      const frame = (n, byte) => {
        const b = Buffer.alloc(5 + n, byte);
        b[0] = 0xdd;
        b.writeUInt32BE(n, 1);
        return b;
      };
      const limit = MAX_DECODED_CONTAINERS;
      // The outer array is one container: limit - 1 empty maps inside it is exactly the budget.
      expect(decodeValue(frame(limit - 1, 0x80))).to.have.length(limit - 1);
      for (const byte of [0x80, 0x90]) {
        expect(() => decodeValue(frame(limit, byte))).to.throw(SerializationError, `more than ${limit} arrays and maps in one value`);
      }
      // Containers hidden in extensions (a Set of empty maps) share the one budget.
      const inSet = Buffer.concat([Buffer.from([0xc9]), Buffer.alloc(4), Buffer.from([3]), frame(limit, 0x80)]);
      inSet.writeUInt32BE(5 + limit, 1);
      expect(() => decodeValue(inSet)).to.throw(SerializationError, 'arrays and maps in one value');
      // Scalars are not containers: many more of them decode (they cost at most 8 bytes of heap each).
      expect(decodeValue(frame(2 * limit, 0x01))).to.have.length(2 * limit);
      // The budget is per value: the next decode starts afresh.
      expect(decodeValue(frame(limit - 1, 0x90))).to.have.length(limit - 1);
    });

    it('refuses unknown extension types instead of handing back an ExtData', () => {
      for (const type of [10, 42, 127, -2, -128]) expect(decodeError(ext(type, Buffer.from([1])))).to.be.an.instanceOf(SerializationError);
    });

    it('refuses an argument as soon as its encoding passes maxBytes, naming the limit', () => {
      // 8 Mi items: the most one array may hold (MAX_ARRAY_ITEMS); a longer one is refused before its first item.
      const huge = new Array(8 * 1024 * 1024).fill(7);
      const error = timed('refusing 8 Mi numbers at 64 KiB', () => encodeError(huge, { maxBytes: 65536, limitName: 'maxMessageBytes' }));
      expect(error).to.be.an.instanceOf(SerializationError);
      expect(error.message).to.include('more than 65536 bytes, over maxMessageBytes (65536)');
      // Inside extensions too (they encode their contents one level down).
      const inMap = encodeError(new Map([[1, new Set(Array.from({ length: 100_000 }, (_, i) => i))]]), { maxBytes: 4096 });
      expect(inMap.message).to.include('more than 4096 bytes');
      // And exactly at the limit it passes.
      const exact = encoded([1, 2, 3]).length;
      expect(encodeValue([1, 2, 3], { maxBytes: exact }).length).to.equal(exact);
      expect(encodeError([1, 2, 3], { maxBytes: exact - 1 })).to.be.an.instanceOf(SerializationError);
    });

    it('random bytes in each extension type, and random frames, only ever throw SerializationError', () => {
      const types = [-1, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9];
      fc.assert(
        fc.property(fc.constantFrom(...types), fc.uint8Array({ maxLength: 64 }), (type, body) => {
          try {
            decodeValue(ext(type, Buffer.from(body)));
          } catch (error) {
            if (!(error instanceof SerializationError)) throw error;
          }
        }),
        { numRuns: 2000 },
      );
      fc.assert(
        fc.property(fc.uint8Array({ minLength: 1, maxLength: 64 }), (bytes) => {
          try {
            decodeValue(Buffer.from(bytes));
          } catch (error) {
            if (!(error instanceof SerializationError)) throw error;
          }
        }),
        { numRuns: 2000 },
      );
    });

    it('well-formed values inside the wrong extension only ever throw SerializationError', () => {
      const anyValue = fc.anything({ maxDepth: 3, withBigInt: true, withDate: true, withMap: true, withSet: true, withTypedArray: true, withNullPrototype: false, withObjectString: false, withBoxedValues: false, withSparseArray: false });
      fc.assert(
        fc.property(fc.constantFrom(1, 2, 3, 4, 6, 8, 9), anyValue, (type, inner) => {
          let body;
          try {
            body = encoded(inner);
          } catch {
            return; // e.g. an own '__proto__' key: refused on the way in, nothing to forge
          }
          try {
            decodeValue(ext(type, body));
          } catch (error) {
            if (!(error instanceof SerializationError)) throw error;
          }
        }),
        { numRuns: 1000 },
      );
    });
  });

  describe('Error records', () => {
    const wire = (record) => ext(4, encoded(record));
    const base = { name: 'Error', message: 'm', stack: 's', props: {} };

    it('refuses malformed records with SerializationError', () => {
      for (const [what, record] of [
        ['not a record', [1, 2]],
        ['name not a string', { ...base, name: { toString: 'x' } }],
        ['message not a string', { ...base, message: 5 }],
        ['stack an object', { ...base, stack: { toString: 1 } }],
        ['props not a record', { ...base, props: [1] }],
        ['unknown field', { ...base, extra: 1 }],
        ['errors not an array', { ...base, errors: 'x' }],
        ['oversize stack', { ...base, stack: 's'.repeat(200_000) }],
        ['too many props', { ...base, props: Object.fromEntries(Array.from({ length: 65 }, (_, i) => [`k${i}`, i])) }],
      ]) {
        const error = decodeError(wire(record));
        expect(error, what).to.be.an.instanceOf(SerializationError);
        expect(error.message, what).to.include('Cannot decode value: malformed Error extension');
      }
    });

    it('never lets a remote property shadow a prototype member: those go to remoteProps', () => {
      const props = { constructor: null, toString: 'x', valueOf: 1, toJSON: 2, then: 3, hasOwnProperty: 4, name: 'n', remoteProps: 5, code: 'E_OK', detail: { a: 1 } };
      const error = decodeValue(wire({ ...base, props }));
      expect(error).to.be.an.instanceOf(Error);
      expect(error.constructor).to.equal(Error);
      expect(String(error)).to.equal('Error: m');
      expect(error.code).to.equal('E_OK');
      expect(error.detail).to.deep.equal({ a: 1 });
      expect(error.then).to.equal(undefined);
      expect(Object.getPrototypeOf(error.remoteProps)).to.equal(null);
      expect(Object.keys(error.remoteProps).sort()).to.deep.equal(['constructor', 'hasOwnProperty', 'name', 'remoteProps', 'then', 'toJSON', 'toString', 'valueOf']);
      expect(error.remoteProps.toString).to.equal('x');
    });

    it('keeps AggregateError.errors, and an Invalid Date stays invalid', () => {
      const back = decodeValue(encoded(new AggregateError([new TypeError('t'), 2], 'agg', { cause: 'c' })));
      expect(back).to.be.an.instanceOf(AggregateError);
      expect(back.message).to.equal('agg');
      expect(back.errors[0]).to.be.an.instanceOf(TypeError);
      expect(back.errors[1]).to.equal(2);
      expect(back.cause).to.equal('c');
      const date = decodeValue(encoded({ when: new Date(NaN) })).when;
      expect(date).to.be.an.instanceOf(Date);
      expect(Number.isNaN(date.getTime())).to.equal(true);
    });

    it('encodes errors defensively: getters that throw and huge stacks do not make encoding throw', () => {
      const error = new Error('x');
      Object.defineProperty(error, 'message', { get() { throw new Error('getter'); } });
      error.name = { toString() { throw new Error('toString'); } };
      error.stack = 'y'.repeat(10 * 1024 * 1024);
      Object.defineProperty(error, 'bad', { enumerable: true, get() { throw new Error('prop getter'); } });
      const back = decodeValue(encoded(error));
      expect(back.name).to.equal('[object Object]');
      expect(back.message).to.equal('');
      expect(back.stack.length).to.be.below(70 * 1024);
      expect(back.stack).to.include('[truncated:');
      expect(back).to.not.have.property('bad');
    });
  });

  it('checks the @msgpack/msgpack internals it relies on, and says clearly when they are missing', () => {
    expect(() => checkCodecInternals()).to.not.throw();
    class NotTheEncoder {}
    class NotTheDecoder {
      pushArrayState() {}
      pushMapState() {}
      decode() {}
    }
    expect(() => checkCodecInternals(NotTheEncoder, NotTheDecoder)).to.throw(/@msgpack\/msgpack is not the version the codec was written for.*doEncode/);
  });
});

describe('hostile values: what an implementation throws, reported (fast-check)', function () {
  this.timeout(60_000);

  /** Things to put where a string is expected, or to throw: each one bites in its own way. */
  const nasty = fc.constantFrom(
    'plain',
    'throwing toString',
    'throwing getter',
    'proxy',
    'revoked proxy',
    'symbol',
    'huge string',
    'function',
    'null',
  );
  function make(kind, inner) {
    switch (kind) {
      case 'plain':
        return inner;
      case 'throwing toString':
        return { toString() { throw new Error('toString'); }, valueOf() { throw new Error('valueOf'); }, [Symbol.toPrimitive]() { throw new Error('toPrimitive'); } };
      case 'throwing getter':
        return Object.defineProperty({}, 'x', { enumerable: true, get() { throw new Error('getter'); } });
      case 'proxy':
        return new Proxy(typeof inner === 'object' && inner !== null ? inner : {}, { get() { throw new Error('get trap'); }, ownKeys() { throw new Error('ownKeys trap'); }, getPrototypeOf() { throw new Error('getPrototypeOf trap'); } });
      case 'revoked proxy': {
        const { proxy, revoke } = Proxy.revocable({}, {});
        revoke();
        return proxy;
      }
      case 'symbol':
        return Symbol('s');
      case 'huge string':
        return 'h'.repeat(200_000);
      case 'function':
        return () => 1;
      default:
        return null;
    }
  }
  const thrownValue = fc
    .record({
      base: fc.oneof(fc.constant('error'), fc.constant('aggregate'), fc.anything({ maxDepth: 2, withBigInt: true, withMap: true, withSet: true, withDate: true })),
      name: nasty,
      message: nasty,
      stack: nasty,
      prop: nasty,
      cause: fc.oneof(nasty, fc.constant('loop'), fc.constant('none')),
      wrap: fc.constantFrom('none', 'none', 'proxy', 'revoked proxy'),
      maxBytes: fc.constantFrom(1024, 4096, 65536, 64 * 1024 * 1024),
    })
    .map(({ base, name, message, stack, prop, cause, wrap, maxBytes }) => {
      let thrown = base;
      if (base === 'error' || base === 'aggregate') {
        const error = base === 'error' ? new Error('m') : new AggregateError([new Error('member'), make(prop, 1)], 'agg');
        const define = (key, kind, fallback) => {
          if (kind === 'throwing getter') Object.defineProperty(error, key, { get() { throw new Error(`${key} getter`); } });
          else Object.defineProperty(error, key, { value: make(kind, fallback), writable: true, configurable: true });
        };
        // The stack first: defining it makes V8 format the captured one, which reads name and message.
        define('stack', stack, 'Error: m');
        define('name', name, 'Error');
        define('message', message, 'm');
        error.extra = make(prop, { a: 1 });
        if (cause === 'loop') error.cause = error;
        else if (cause !== 'none') error.cause = make(cause, new Error('cause'));
        thrown = error;
      }
      if (wrap !== 'none') thrown = make(wrap, thrown);
      return { thrown, maxBytes };
    });

  it('failureFrame never throws, always fits maxBytes, and decodes to a Failure carrying an Error', () => {
    fc.assert(
      fc.property(thrownValue, ({ thrown, maxBytes }) => {
        const frame = failureFrame(7, thrown, 0, null, maxBytes);
        expect(frame.length - 4).to.be.at.most(maxBytes);
        const message = decodeValue(frame.subarray(4));
        expect(message[0]).to.equal(5);
        expect(message[1]).to.equal(7);
        expect(message[2]).to.be.an.instanceOf(Error);
        expect(message[2].name).to.be.a('string');
        expect(message[2].message).to.be.a('string');
        expect([0, 1]).to.include(message[3]);
      }),
      { numRuns: 500 },
    );
  });
});

describe('hostile values: through real workers', function () {
  this.timeout(60_000);
  let proxy;
  let pid;
  before(async () => {
    proxy = await createProxy({ workerModule: fixture('hostile-throws.mjs'), workerExport: 'HostileThrows', maxPoolSize: 1, maxMessageBytes: 8 * 1024 * 1024 });
    pid = await proxy.pid();
  });
  after(disposeProxies);

  /** The call rejects with a RemoteError, and the same worker still serves. */
  async function reported(call) {
    const error = await rejectionOf(call);
    expect(error, String(error?.stack)).to.be.an.instanceOf(RemoteError);
    expect(await proxy.pid()).to.equal(pid);
    return error;
  }

  it('an error whose name is an object, whose message getter throws, whose stack is an object', async () => {
    expect((await reported(proxy.throwNameObject())).remoteName).to.equal('[object Object]');
    expect((await reported(proxy.throwMessageGetter())).message).to.equal('');
    expect((await reported(proxy.throwStackObject())).remoteStack).to.equal(undefined); // a stack that is not a string is left out
    expect((await reported(proxy.throwToPrimitive())).message).to.equal('y');
  });

  it('thrown Proxies: of an Error, with throwing traps, revoked, of a plain object', async () => {
    const ofError = await reported(proxy.throwProxyOfError());
    expect(ofError.remoteName).to.equal('NonErrorThrown');
    expect(ofError.message).to.include('a Proxy').and.include('TypeError: behind a proxy');
    for (const call of [proxy.throwTrappingProxy(), proxy.throwRevokedProxy(), proxy.throwProxyOfObject()]) {
      const error = await reported(call);
      expect(error.remoteName).to.equal('NonErrorThrown');
      expect(error.message).to.include('a Proxy');
    }
  });

  it('a 70 MB stack and a 20 MB message arrive truncated', async () => {
    const stack = await reported(proxy.throwHugeStack(70));
    expect(stack.remoteStack.length).to.be.below(70 * 1024);
    expect(stack.remoteStack).to.include('[truncated:');
    const message = await reported(proxy.throwHugeMessage(20));
    expect(message.message.length).to.be.below(70 * 1024);
  });

  it('own properties: functions, symbols, throwing getters and huge values are left out and listed; the rest kept, bounded', async () => {
    const error = await reported(proxy.throwHostileProps());
    expect(error.code).to.equal('E_KEPT');
    expect(error.unserializableProps).to.include('fn:').and.include('sym:').and.include('getter: a getter (not invoked)').and.include('huge:');
    expect(error.unserializableProps).to.include('only the first 63 own properties');
    expect(String(error)).to.be.a('string');
    expect(error.constructor).to.equal(RemoteError);
    expect(error.then).to.equal(undefined);
  });

  it('non-Error values: an Error named NonErrorThrown with a safe description', async () => {
    for (const [kind, fragment] of [
      ['null', 'null'],
      ['undefined', 'undefined'],
      ['number', '42'],
      ['symbol', 'Symbol(thrown)'],
      ['bigint', '1000000000000000000000000000000'],
      ['object', "reason: 'plain'"],
      ['function', 'named'],
      ['hostile-object', 'boom'],
    ]) {
      const error = await reported(proxy.throwValue(kind));
      expect(error.remoteName, kind).to.equal('NonErrorThrown');
      expect(error.message, kind).to.include(fragment);
    }
    const object = await reported(proxy.throwValue('object'));
    expect(object.thrown).to.deep.equal({ reason: 'plain', nested: { n: 1 } });
    const long = await reported(proxy.throwValue('long-string'));
    expect(long.message.length).to.be.below(70 * 1024);
  });

  it('cause chains: a loop is marked, a deep one cut; AggregateError keeps its errors', async () => {
    const circular = await reported(proxy.throwCircularCause());
    expect(circular.cause.message).to.equal('b');
    expect(circular.cause.cause.name).to.equal('CircularCause');
    let deep = await reported(proxy.throwDeepCause(200));
    let length = 1;
    while (deep.cause instanceof Error) {
      deep = deep.cause;
      length++;
    }
    expect(deep.name).to.equal('TruncatedCause');
    expect(length).to.equal(MAX_CAUSE_DEPTH + 1);
    const aggregate = await reported(proxy.throwAggregate());
    expect(aggregate.remoteName).to.equal('AggregateError');
    expect(aggregate.errors.map((e) => (e instanceof Error ? e.constructor.name : e))).to.deep.equal(['TypeError', 'RangeError', 'not an error']);
    expect(aggregate.cause.message).to.equal('why');
  });

  it('results: an Invalid Date stays invalid; a result over maxMessageBytes is refused in the worker, which lives on', async () => {
    const { when } = await proxy.returnInvalidDate();
    expect(Number.isNaN(when.getTime())).to.equal(true);
    const error = await rejectionOf(proxy.returnBytes(8 * 1024 * 1024)); // 8 MiB + 5 bytes encoded
    expect(error).to.be.an.instanceOf(SerializationError);
    expect(error.message).to.include('over maxMessageBytes (8388608)');
    expect(await proxy.pid()).to.equal(pid);
    const path = await rejectionOf(proxy.returnFunctionDeep());
    expect(path.message).to.include('the result: items[1].handler is a function');
  });

  it('arguments: the path names the method and the argument', async () => {
    const error = await rejectionOf(proxy.echo([1, 2, 3, [() => 1]]));
    expect(error).to.be.an.instanceOf(SerializationError);
    expect(error.message).to.include('echo() argument 0: [3][0] is a function');
    const direct = await rejectionOf(proxy.echo(1, Symbol('s')));
    expect(direct.message).to.include('echo() argument 1 is a symbol');
    let deep = 1;
    for (let i = 0; i < 100_000; i++) deep = [deep];
    const nested = await rejectionOf(proxy.echo(deep));
    expect(nested).to.be.an.instanceOf(SerializationError);
    expect(nested.message).to.include('nested deeper than');
    const pool = ProcessProxy.poolOf(proxy);
    const before = pool.stats().totals.calls;
    const huge = await rejectionOf(proxy.echo(new Array(8 * 1024 * 1024).fill(0))); // 8 MiB + 5 bytes encoded
    expect(huge).to.be.an.instanceOf(SerializationError);
    expect(huge.message).to.include('the call echo() encodes to more than 8388608 bytes, over maxMessageBytes (8388608)');
    expect(pool.stats().totals.calls).to.equal(before);
  });
});

describe('hostile values: forged by a worker', function () {
  this.timeout(60_000);
  afterEach(disposeProxies);

  it('each forged value kills that worker with a decode error; the host stays responsive and the next call works', async () => {
    const delay = monitorEventLoopDelay({ resolution: 10 });
    delay.enable();
    // A pool per forgery: young workers crashing in a row would (rightly) open the circuit breaker.
    for (const kind of ['decimal-bigint', 'huge-bigint', 'deep-arrays', 'lying-length', 'error-stack-object', 'error-name-number']) {
      const proxy = await createProxy({ workerModule: fixture('torture.mjs'), execArgv: [new URL('./fixtures/forging-worker.mjs', import.meta.url).pathname], maxPoolSize: 1 });
      const pid = await proxy.pid();
      const error = await rejectionOf(proxy.forge(kind));
      expect(error, kind).to.be.an.instanceOf(ProcessSandboxError);
      expect(error.message, kind).to.include('Cannot decode value');
      console.log(`      ${kind}: ${error.message}`);
      await waitFor(() => !isAlive(pid), `worker ${pid} to end`);
      expect(await proxy.echo(kind), `the next call after ${kind}`).to.equal(kind);
      await disposeProxies();
    }
    delay.disable();
    console.log(`      longest event-loop stall while pools started and decoded forged values: ${(delay.max / 1e6).toFixed(1)} ms`);
  });
});

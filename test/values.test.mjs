import { expect } from 'chai';
import { createProxy, disposeProxies, fixture } from './support/pools.mjs';

describe('values crossing the pipe', function () {
  let proxy;
  before(async () => {
    proxy = await createProxy({ workerModule: fixture('torture.mjs'), workerExport: 'Torture' });
  });
  after(disposeProxies);

  const cases = {
    'null': null,
    'booleans': [true, false],
    'integers and floats': [0, -1, 2 ** 53 - 1, -(2 ** 31), 3.25, -0.5, Infinity, -Infinity],
    'NaN': NaN,
    'strings, including non-ASCII': ['', 'plain', 'ünïcødé ✓ 日本語 🎉', 'x'.repeat(70_000)],
    'nested plain objects and arrays': { a: [1, { b: [2, [3, { c: 'deep' }]] }], e: {} },
    'undefined in objects and arrays': { u: undefined, list: [1, undefined, 3] },
    'BigInt, small and huge': [0n, -5n, 2n ** 64n + 1n, -(10n ** 40n)],
    'Date': new Date('2024-02-29T12:34:56.789Z'),
    'Invalid Date (stays invalid)': [new Date(NaN), { when: new Date(NaN) }],
    'a BigInt of 1 MiB': [(1n << 8388608n) - 1n, -(1n << 8388607n)],
    'Map with non-string keys': new Map([[1, 'one'], [{ k: 1 }, [2]], ['s', new Map([[true, null]])]]),
    'Set': new Set([1, 'two', 3n]),
    'Uint8Array': new Uint8Array([0, 1, 255]),
    'Float64Array, Int32Array, BigInt64Array': [new Float64Array([1.5, -2.25]), new Int32Array([-7, 9]), new BigInt64Array([-3n])],
    'ArrayBuffer': new Uint8Array([4, 5, 6]).buffer,
    'RegExp': /^a+b?$/giu,
  };
  for (const [name, value] of Object.entries(cases)) {
    it(`round-trips ${name}`, async () => {
      const back = await proxy.echo(value);
      expect(back).to.deep.equal(value);
    });
  }

  it('round-trips undefined as a top-level value and keeps the key of an undefined property', async () => {
    expect(await proxy.echo(undefined)).to.equal(undefined);
    const back = await proxy.echo({ u: undefined });
    expect(back).to.have.property('u', undefined);
  });

  it('returns a Buffer as a Buffer and a Uint8Array as a plain Uint8Array', async () => {
    const [buffer, bytes] = await proxy.echo([Buffer.from('hi'), new Uint8Array([1])]);
    expect(Buffer.isBuffer(buffer)).to.equal(true);
    expect(buffer.toString()).to.equal('hi');
    expect(Buffer.isBuffer(bytes)).to.equal(false);
    expect(bytes).to.be.an.instanceOf(Uint8Array);
  });

  it('round-trips a 1 MiB Buffer byte for byte', async () => {
    const big = Buffer.alloc(1024 * 1024);
    for (let i = 0; i < big.length; i++) big[i] = (i * 31) & 0xff;
    const back = await proxy.echo(big);
    expect(Buffer.isBuffer(back)).to.equal(true);
    expect(back.length).to.equal(big.length);
    expect(back.equals(big)).to.equal(true);
  });

  it('large Buffers of many calls in flight at once each arrive whole and in their own call (frames as segments)', async () => {
    const size = 3 * 1024 * 1024 + 5;
    const buffers = Array.from({ length: 6 }, (_, k) => Buffer.alloc(size, k + 1));
    const back = await Promise.all(buffers.map((b, k) => proxy.echo({ k, b, tail: 'after' })));
    back.forEach((r, k) => {
      expect(r.k).to.equal(k);
      expect(r.tail).to.equal('after');
      expect(r.b.equals(buffers[k]), `call ${k}'s bytes`).to.equal(true);
    });
  });

  it('a result buffer the implementation reuses is written before its next call refills it', async () => {
    const size = 8 * 1024 * 1024;
    const results = await Promise.all([1, 2, 3, 4, 5].map((byte) => proxy.reused(byte, size)));
    results.forEach((r, k) => {
      expect(r.length).to.equal(size);
      const wrong = r.findIndex((x) => x !== k + 1);
      expect(wrong, `result ${k}: byte ${wrong} is ${r[wrong]}, not ${k + 1}`).to.equal(-1);
    });
  });

  it('returns a 16 MiB Buffer made in the worker', async () => {
    const back = await proxy.buffer(16 * 1024 * 1024);
    expect(back.length).to.equal(16 * 1024 * 1024);
    expect(back[0]).to.equal(7);
    expect(back[back.length - 1]).to.equal(7);
  });

  it('round-trips an AggregateError inside a value, with its members and cause', async () => {
    const back = await proxy.echo({ failure: new AggregateError([new TypeError('a'), 'b'], 'both failed', { cause: 42 }) });
    expect(back.failure).to.be.an.instanceOf(AggregateError);
    expect(back.failure.message).to.equal('both failed');
    expect(back.failure.errors[0]).to.be.an.instanceOf(TypeError);
    expect(back.failure.errors[1]).to.equal('b');
    expect(back.failure.cause).to.equal(42);
  });

  it('passes workerOptions to the constructor', async () => {
    const withOptions = await createProxy({ workerModule: fixture('torture.mjs'), workerExport: 'Torture', workerOptions: { when: new Date(1), n: 2n } });
    expect(await withOptions.getOptions()).to.deep.equal({ when: new Date(1), n: 2n });
  });
});

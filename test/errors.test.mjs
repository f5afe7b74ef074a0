import { expect } from 'chai';
import {
  MethodNotFoundError,
  ProcessProxy,
  ProcessSandboxError,
  RemoteError,
  SerializationError,
} from '@process-sandbox/core';
import { createProxy, disposeProxies, fixture, rejectionOf } from './support/pools.mjs';

describe('errors from the implementation', function () {
  let proxy;
  before(async () => {
    proxy = await createProxy({ workerModule: fixture('torture.mjs'), workerExport: 'Torture' });
  });
  after(disposeProxies);

  it('keeps the remote name, message, stack, code, cause chain and own properties', async () => {
    const error = await rejectionOf(proxy.throwRich());
    expect(error).to.be.an.instanceOf(RemoteError).and.an.instanceOf(ProcessSandboxError);
    expect(error.remoteName).to.equal('RangeError');
    expect(error.message).to.equal('top level failure');
    expect(error.code).to.equal('E_TOP');
    expect(error.when).to.deep.equal(new Date(0));
    expect(error.count).to.equal(3n);
    expect(error.method).to.equal('throwRich');
    expect(error.pid).to.equal(await proxy.pid());
    expect(error.remoteStack).to.match(/^RangeError: top level failure\n\s+at Torture\.throwRich/);
    expect(error.stack).to.include('torture.mjs').and.include('--- in worker');
    const middle = error.cause;
    expect(middle).to.be.an.instanceOf(Error);
    expect(middle.message).to.equal('middle');
    const root = middle.cause;
    expect(root).to.be.an.instanceOf(TypeError);
    expect(root.message).to.equal('root cause');
    expect(root.code).to.equal('E_ROOT');
    expect(root.detail).to.deep.equal({ depth: 2 });
    expect(root.stack).to.include('torture.mjs');
  });

  it('has a stable code on the class and the instance when the remote error has none', async () => {
    const error = await rejectionOf(proxy.rejectAsync('async failure'));
    expect(error).to.be.an.instanceOf(RemoteError);
    expect(error.code).to.equal('ERR_PS_REMOTE');
    expect(RemoteError.code).to.equal('ERR_PS_REMOTE');
    expect(error.message).to.equal('async failure');
  });

  it('does not kill the worker over a business error', async () => {
    const before = await proxy.pid();
    await rejectionOf(proxy.throwRich());
    await rejectionOf(proxy.rejectAsync('again'));
    expect(await proxy.pid()).to.equal(before);
    expect(await proxy.echo('still serving')).to.equal('still serving');
  });

  it('wraps a thrown non-Error value', async () => {
    const error = await rejectionOf(proxy.throwString());
    expect(error).to.be.an.instanceOf(RemoteError);
    expect(error.remoteName).to.equal('NonErrorThrown');
    expect(error.message).to.equal('just a string');
    expect(error.thrown).to.equal('just a string');
  });

  it('still reports an error whose properties cannot cross, without them', async () => {
    const error = await rejectionOf(proxy.throwUnserializable());
    expect(error).to.be.an.instanceOf(RemoteError);
    expect(error.message).to.equal('carries a function');
    expect(error.unserializableProps).to.match(/function/);
  });

  it('rejects a result that cannot cross with SerializationError, and the worker lives on', async () => {
    const pid = await proxy.pid();
    const error = await rejectionOf(proxy.returnFunction());
    expect(error).to.be.an.instanceOf(SerializationError);
    expect(error.code).to.equal('ERR_PS_SERIALIZATION');
    expect(error.message).to.match(/returnFunction\(\).*function/);
    expect(await proxy.pid()).to.equal(pid);
  });

  it('rejects unserialisable arguments before anything is sent', async () => {
    const pool = ProcessProxy.poolOf(proxy);
    const callsBefore = pool.stats().workers.reduce((n, w) => n + w.calls, 0);
    const circular = { name: 'loop' };
    circular.self = circular;
    for (const [arg, pattern] of [
      // A function as the argument itself is a callback (issue 17); inside a value it cannot cross.
      [[() => 1], /\[0\] is a function/],
      [Symbol('s'), /symbol/],
      [circular, /circular reference at <value>\.\d\.self|circular/],
      [{ nested: { handler() {} } }, /nested\.handler is a function/],
    ]) {
      const error = await rejectionOf(proxy.echo(arg));
      expect(error).to.be.an.instanceOf(SerializationError);
      expect(error.message).to.match(pattern);
    }
    const callsAfter = pool.stats().workers.reduce((n, w) => n + w.calls, 0);
    expect(callsAfter).to.equal(callsBefore);
  });

  it('rejects an unknown method with MethodNotFoundError, without a round trip', async () => {
    const pool = ProcessProxy.poolOf(proxy);
    const callsBefore = pool.stats().totals.calls;
    const error = await rejectionOf(proxy.noSuchMethod(1));
    expect(error).to.be.an.instanceOf(MethodNotFoundError);
    expect(error.code).to.equal('ERR_PS_METHOD_NOT_FOUND');
    expect(error.method).to.equal('noSuchMethod');
    expect(error.available).to.include('echo');
    expect(pool.stats().totals.calls).to.equal(callsBefore);
  });

  it('is not a thenable and sends no symbols or inspection hooks to the worker', async () => {
    const pool = ProcessProxy.poolOf(proxy);
    const callsBefore = pool.stats().totals.calls;
    expect(proxy.then).to.equal(undefined);
    expect(proxy.toJSON).to.equal(undefined);
    expect(proxy[Symbol.iterator]).to.equal(undefined);
    // Symbol.toPrimitive describes the proxy locally (String(proxy), template literals), never remotely.
    expect(String(proxy)).to.match(/^\[ProcessProxy /);
    // `await proxy` must not hang or call the worker.
    expect(await Promise.resolve(proxy)).to.equal(proxy);
    // util.inspect formats a Proxy's target without running its traps: no remote call.
    expect((await import('node:util')).inspect(proxy)).to.be.a('string');
    expect(JSON.stringify({ p: proxy })).to.equal('{"p":{}}');
    expect(pool.stats().totals.calls).to.equal(callsBefore);
    expect(typeof proxy[Symbol.asyncDispose]).to.equal('function');
  });
});

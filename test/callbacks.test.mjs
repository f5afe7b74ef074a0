// Callbacks across the process boundary (issue 17): a function passed as an argument becomes, in
// the worker, a function that calls back into the host while the call runs.
import { expect } from 'chai';
import { ProcessProxy, SerializationError } from '@process-sandbox/core';
import { forbidEscapes } from './support/forging.mjs';
import { createProxy, disposeProxies, fixture, rejectionOf } from './support/pools.mjs';
import { isAlive, waitFor } from './support/processes.mjs';

const streamer = { workerModule: fixture('streams.mjs'), workerExport: 'Streamer' };

describe('callbacks: function arguments call back into the host', function () {
  this.timeout(60_000);
  forbidEscapes(disposeProxies); // nothing a host callback or listener does escapes into the host

  it('a progress callback is called with the worker\'s arguments, awaited, and the call returns after it', async () => {
    const proxy = await createProxy({ ...streamer, maxPoolSize: 1 });
    const seen = [];
    expect(await proxy.progress(4, (pct) => seen.push(pct))).to.equal('done');
    expect(seen).to.deep.equal([25, 50, 75, 100]);
    // Values cross both ways with the codec; an async host function is awaited by the worker.
    const big = 2n ** 70n;
    expect(await proxy.apply(async (a, b) => ({ sum: a + b, at: new Date(0) }), big, 1n)).to.deep.equal({ sum: big + 1n, at: new Date(0) });
    expect(await proxy.twoCallbacks((x) => x * 2, 21, (x) => `${x}!`)).to.deep.equal([42, '21!']);
  });

  it('a callback made just before the worker blocks its thread reaches the host at once, not at the timeout', async () => {
    const proxy = await createProxy({ ...streamer, maxPoolSize: 1, methodCallTimeoutMs: 600_000 });
    const pid = await proxy.pid();
    let called;
    const reached = new Promise((resolve) => (called = resolve));
    const blocked = proxy.callBackThenBlock((text) => called(text));
    expect(await reached).to.equal('before the block');
    // The worker is blocked for good: dispose ends it, and its call with it.
    await ProcessProxy.poolOf(proxy).dispose();
    expect((await rejectionOf(blocked)).name).to.equal('PoolDisposedError');
    await waitFor(() => !isAlive(pid), `worker ${pid} to be gone`);
  });

  it('a host callback that throws, rejects, or returns what cannot cross fails in the worker, never in the host', async () => {
    const proxy = await createProxy({ ...streamer, maxPoolSize: 1 });
    const pid = await proxy.pid();
    expect(await proxy.applyCaught(() => {
      throw new RangeError('host says no');
    })).to.deep.equal({ name: 'RangeError', message: 'host says no' });
    expect(await proxy.applyCaught(async () => Promise.reject(new Error('later')))).to.deep.equal({ name: 'Error', message: 'later' });
    const thrownString = await proxy.applyCaught(() => {
      throw 'a string'; // eslint-disable-line no-throw-literal
    });
    expect(thrownString.message).to.match(/threw "a string"/);
    const unencodable = await proxy.applyCaught(() => ({ fn() {} }));
    expect(unencodable.name).to.equal('SerializationError');
    expect(unencodable.message).to.match(/returned by the callback \(argument 0 of applyCaught\(\)\).*fn is a function/);
    // What the worker passes that cannot cross fails in the worker, where it called.
    expect(await proxy.sendUnencodable(() => 1)).to.include({ name: 'SerializationError' });
    // Uncaught by the implementation: the call fails with the host's error, as a RemoteError.
    const error = await rejectionOf(proxy.apply(() => {
      throw new TypeError('uncaught in the worker');
    }));
    expect(error).to.include({ name: 'RemoteError', remoteName: 'TypeError', message: 'uncaught in the worker' });
    expect(await proxy.pid(), 'the worker lives on').to.equal(pid);
  });

  it('a callback called after its call settled throws CallbackExpiredError in the worker', async () => {
    const proxy = await createProxy({ ...streamer, maxPoolSize: 1 });
    let called = 0;
    expect(await proxy.keep(() => called++)).to.equal('kept');
    const expired = await proxy.callKept();
    expect(expired.name).to.equal('CallbackExpiredError');
    expect(expired.message).to.match(/argument 0 of keep\(\) was called after that call ended/);
    expect(called).to.equal(0);
  });

  it('fire-and-forget callbacks (not awaited) all reach the host, beyond the in-flight limit, in order', async () => {
    const proxy = await createProxy({ ...streamer, maxPoolSize: 1 });
    const seen = [];
    const n = 500;
    // The method returns at once, with most of its callbacks still queued in the worker (at most
    // 64 wait for the host at a time): its reply waits until they are all sent.
    expect(await proxy.fireAndForget((i) => seen.push(i), n)).to.equal(n);
    expect(seen).to.deep.equal(Array.from({ length: n }, (_, i) => i));
    expect(await proxy.echo('next')).to.equal('next');
    // A host callback that throws while not awaited does not end the worker.
    const pid = await proxy.pid();
    await proxy.fireAndForget(() => {
      throw new Error('ignored');
    }, 10);
    expect(await proxy.pid()).to.equal(pid);
  });

  it('works inside a lease and inside a stream', async () => {
    const proxy = await createProxy({ ...streamer, maxPoolSize: 1 });
    const seen = [];
    const result = await ProcessProxy.session(proxy, (leased) => leased.progress(2, (pct) => seen.push(pct)));
    expect(result).to.equal('done');
    expect(seen).to.deep.equal([50, 100]);
    const progress = [];
    const items = [];
    for await (const item of await proxy.withProgress(5, (i) => progress.push(i))) items.push(item);
    expect(items).to.deep.equal([0, 1, 2, 3, 4]);
    expect(progress).to.deep.equal([0, 1, 2, 3, 4]);
  });

  it('a function nested in an argument is still refused, with its path', async () => {
    const proxy = await createProxy({ ...streamer, maxPoolSize: 1 });
    const error = await rejectionOf(proxy.echo({ onDone() {} }));
    expect(error).to.be.an.instanceOf(SerializationError);
    expect(error.message).to.match(/echo\(\) argument 0: onDone is a function/);
  });

  it('a slow host callback holds the call, and its timeout covers it', async () => {
    const proxy = await createProxy({ ...streamer, maxPoolSize: 1, methodCallTimeoutMs: 300 });
    let release;
    const error = await rejectionOf(proxy.apply(() => new Promise((resolve) => (release = resolve))));
    expect(error.name).to.equal('CallTimeoutError');
    await waitFor(() => release !== undefined, 'the callback to have been called');
    release(1); // its answer finds no call: nothing happens
    expect(await proxy.echo('ok')).to.equal('ok');
  });
});

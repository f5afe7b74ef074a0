// Streams across the process boundary (issue 17): a method that returns an async iterable gives the
// caller an async iterable of its items, with credit-based backpressure, cancellation, typed errors
// mid-stream, a timeout between items, and the pool's crash, dispose and recycling semantics.
import { expect } from 'chai';
import { readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import { STREAM_WINDOW } from '@process-sandbox/abstractions';
import { CallAbortedError, CallTimeoutError, PoolDisposedError, ProcessProxy, RemoteError, SerializationError, WorkerCrashedError } from '@process-sandbox/core';
import { forbidEscapes } from './support/forging.mjs';
import { createProxy, disposeProxies, fixture, gate, nextEvent, rejectionOf } from './support/pools.mjs';
import { isAlive, poll, waitFor, waitForExit } from './support/processes.mjs';

const run = promisify(execFile);
const streamer = { workerModule: fixture('streams.mjs'), workerExport: 'Streamer' };
let files = [];
const scratch = (name) => {
  const path = join(tmpdir(), `ps-stream-${process.pid}-${name}-${Math.random().toString(36).slice(2)}`);
  files.push(path);
  return path;
};
const readCount = (path) => {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
};

async function collect(iterable) {
  const items = [];
  for await (const item of iterable) items.push(item);
  return items;
}

describe('streams: a method that returns an async iterable', function () {
  this.timeout(60_000);
  forbidEscapes(disposeProxies); // nothing a stream does escapes into the host
  afterEach(() => {
    for (const path of files) rmSync(path, { force: true });
    files = [];
  });

  it('yields every item in order, from an async generator, a promise of one, and a Node Readable; the worker serves the next call', async () => {
    const proxy = await createProxy({ ...streamer, maxPoolSize: 1 });
    const stream = await proxy.count(1000);
    expect(stream[Symbol.asyncIterator]).to.be.a('function');
    expect(await collect(stream)).to.deep.equal(Array.from({ length: 1000 }, (_, i) => i));
    expect(await collect(await proxy.later(5))).to.deep.equal([0, 1, 2, 3, 4]);
    const rows = await collect(await proxy.readable(50));
    expect(rows).to.have.length(50);
    expect(rows[49]).to.deep.equal({ row: 49 });
    expect(await collect(await proxy.count(0))).to.deep.equal([]);
    // next() asked several times at once: answered in order, then done for each.
    const eager = await proxy.count(3);
    const results = await Promise.all(Array.from({ length: 5 }, () => eager.next()));
    expect(results).to.deep.equal([0, 1, 2].map((value) => ({ value, done: false })).concat([{ value: undefined, done: true }, { value: undefined, done: true }]));
    expect(await proxy.echo('after')).to.equal('after');
    const stats = ProcessProxy.poolOf(proxy).stats();
    expect(stats.totals).to.include({ calls: 6, succeeded: 6, failed: 0, inFlight: 0 });
  });

  it('backpressure: the worker produces no more than the credit granted while the consumer does not read', async () => {
    const proxy = await createProxy({ ...streamer, maxPoolSize: 1 });
    const file = scratch('counted');
    const stream = await proxy.counted(100_000, file);
    // The worker sends the first window, then waits for credit.
    await waitFor(() => readCount(file) === String(STREAM_WINDOW) && stream.buffered === STREAM_WINDOW, `the first ${STREAM_WINDOW} items to arrive`);
    // Half a window consumed: the host grants that much and the worker goes on by exactly as many.
    for (let i = 0; i < STREAM_WINDOW / 2; i++) expect((await stream.next()).value).to.equal(i);
    await waitFor(() => stream.buffered === STREAM_WINDOW, 'the granted items to arrive');
    expect(readCount(file)).to.equal(String(STREAM_WINDOW * 1.5));
    // One more round: never more produced than consumed plus the window.
    for (let i = 0; i < STREAM_WINDOW / 2; i++) await stream.next();
    await waitFor(() => stream.buffered === STREAM_WINDOW, 'the next granted items');
    expect(Number(readCount(file))).to.equal(STREAM_WINDOW * 2);
    await stream.return();
    expect(await proxy.echo('free')).to.equal('free');
  });

  it('break returns the worker\'s iterator and frees the worker; return() and AbortSignal do the same', async () => {
    const proxy = await createProxy({ ...streamer, maxPoolSize: 1 });
    const pid = await proxy.pid();
    const file = scratch('forever');
    const seen = [];
    for await (const item of await proxy.forever(file)) {
      seen.push(item);
      if (seen.length === 5) break;
    }
    expect(seen).to.deep.equal([0, 1, 2, 3, 4]);
    await waitFor(() => readCount(file) === 'returned', 'the generator to be returned');
    expect(await proxy.pid()).to.equal(pid);

    const file2 = scratch('forever');
    const stream = await proxy.forever(file2);
    await stream.next();
    expect(await stream.return()).to.deep.equal({ value: undefined, done: true });
    expect(await stream.next()).to.deep.equal({ value: undefined, done: true });
    await waitFor(() => readCount(file2) === 'returned', 'the generator to be returned by return()');

    const file3 = scratch('forever');
    const controller = new AbortController();
    const aborted = await ProcessProxy.with(proxy, { signal: controller.signal }).forever(file3);
    expect((await aborted.next()).done).to.equal(false);
    const reason = new Error('enough');
    controller.abort(reason);
    const error = await rejectionOf(aborted.next());
    expect(error).to.be.an.instanceOf(CallAbortedError);
    expect(error.cause).to.equal(reason);
    await waitFor(() => readCount(file3) === 'returned', 'the generator to be returned on abort');
    expect(await proxy.pid(), 'an aborted stream does not kill its worker').to.equal(pid);
  });

  it('a call aborted with onAbortRunning detach that then opens a stream has it cancelled at once: the worker is free', async () => {
    const proxy = await createProxy({ ...streamer, maxPoolSize: 1 });
    const pid = await proxy.pid();
    const controller = new AbortController();
    const file = scratch('forever');
    const held = gate();
    const detached = ProcessProxy.with(proxy, { signal: controller.signal, onAbortRunning: 'detach' }).foreverAfter(held.path, file);
    await waitFor(() => ProcessProxy.poolOf(proxy).stats().totals.inFlight === 1, 'the call to run');
    controller.abort();
    expect(await rejectionOf(detached)).to.be.an.instanceOf(CallAbortedError);
    held.open(); // only now does the method return its generator
    await waitFor(() => readCount(file) === 'returned', 'the generator to be returned');
    expect(await proxy.pid()).to.equal(pid);
  });

  it('a stream its caller drops unfinished is cancelled once collected: the worker is freed (a host with --expose-gc)', async () => {
    const file = scratch('abandoned');
    const { stdout } = await run(process.execPath, ['--expose-gc', fileURLToPath(fixture('abandoned-stream.mjs')), file], { timeout: 50_000 });
    expect(JSON.parse(stdout.trim().split('\n').at(-1))).to.deep.equal({ returned: true, samePid: true });
  });

  it('an error mid-stream arrives after the items before it, as the typed error it is', async () => {
    const proxy = await createProxy({ ...streamer, maxPoolSize: 1 });
    const items = [];
    const error = await rejectionOf(
      (async () => {
        for await (const item of await proxy.failAfter(3, 'row 3 is corrupt')) items.push(item);
      })(),
    );
    expect(items).to.deep.equal([0, 1, 2]);
    expect(error).to.be.an.instanceOf(RemoteError);
    expect(error).to.include({ message: 'row 3 is corrupt', remoteName: 'TypeError' });
    const unencodable = [];
    const serialization = await rejectionOf(
      (async () => {
        for await (const item of await proxy.unserializableAfter(2)) unencodable.push(item);
      })(),
    );
    expect(unencodable).to.deep.equal([0, 1]);
    expect(serialization).to.be.an.instanceOf(SerializationError);
    expect(serialization.message).to.match(/an item of unserializableAfter\(\).*handler is a function/);
    expect(await proxy.echo('still')).to.equal('still');
  });

  it('each item respects maxMessageBytes on its own: a result far larger than one message flows', async () => {
    const proxy = await createProxy({ ...streamer, maxPoolSize: 1, maxMessageBytes: 64 * 1024 });
    let total = 0;
    let n = 0;
    for await (const blob of await proxy.blobs(64, 48 * 1024)) {
      expect(blob.length).to.equal(48 * 1024);
      expect(blob[0]).to.equal(n % 256);
      total += blob.length;
      n++;
    }
    expect(n).to.equal(64);
    expect(total).to.be.above(40 * 64 * 1024);
    // One item over the limit is a SerializationError, mid-stream; the worker lives on.
    const error = await rejectionOf(collect(await proxy.blobs(1, 128 * 1024)));
    expect(error).to.be.an.instanceOf(SerializationError);
    expect(error.message).to.match(/maxMessageBytes/);
    expect(await proxy.echo('ok')).to.equal('ok');
  });

  it('the call timeout applies between items, not to a slow consumer', async () => {
    const proxy = await createProxy({ ...streamer, maxPoolSize: 1, methodCallTimeoutMs: 400 });
    // A slow consumer: longer than the timeout between two reads, and nothing times out.
    const slow = await proxy.count(3);
    expect((await slow.next()).value).to.equal(0);
    await new Promise((resolve) => setTimeout(resolve, 1200));
    expect(await collect(slow)).to.deep.equal([1, 2]);
    // A producer that stalls: the consumer's wait for the next item times out, and the worker is killed.
    const pid = await proxy.pid();
    const stalled = await proxy.stallAfter(2);
    expect((await stalled.next()).value).to.equal(0);
    expect((await stalled.next()).value).to.equal(1);
    const error = await rejectionOf(stalled.next());
    expect(error).to.be.an.instanceOf(CallTimeoutError);
    expect(error).to.include({ method: 'stallAfter', pid });
    await waitForExit([pid]);
    expect(await proxy.echo('replaced')).to.equal('replaced');
  });

  it('a worker dying mid-stream ends the iterator with WorkerCrashedError', async () => {
    const proxy = await createProxy({ ...streamer, maxPoolSize: 1 });
    const stream = await proxy.pidThenHang();
    const { value: pid } = await stream.next();
    expect(isAlive(pid)).to.equal(true);
    const crashed = nextEvent(ProcessProxy.poolOf(proxy), 'workerCrashed');
    process.kill(pid, 'SIGKILL');
    const error = await rejectionOf(stream.next());
    expect(error).to.be.an.instanceOf(WorkerCrashedError);
    expect(error).to.include({ pid, method: 'pidThenHang' });
    expect(await crashed).to.include({ pid, method: 'pidThenHang' });
    expect(await stream.next()).to.deep.equal({ value: undefined, done: true });
  });

  it('dispose ends open streams with PoolDisposedError, a read waiting or the next one, and leaves no process', async () => {
    // The stalled worker never answers the cancel: dispose kills it after shutdownGraceMs.
    const proxy = await createProxy({ ...streamer, minPoolSize: 2, maxPoolSize: 2, shutdownGraceMs: 1000 });
    const pool = ProcessProxy.poolOf(proxy);
    const pids = pool.livePids();
    const full = await proxy.forever(scratch('forever'));
    expect(await full.next()).to.deep.equal({ value: 0, done: false });
    const stalled = await proxy.stallAfter(1);
    expect(await stalled.next()).to.deep.equal({ value: 0, done: false });
    const waiting = rejectionOf(stalled.next()); // nothing buffered: it waits
    const other = await createProxy({ ...streamer, maxPoolSize: 1 });
    const elsewhere = await other.forever(scratch('forever'));
    const disposed = pool.dispose();
    for (const error of [await waiting, await rejectionOf(full.next())]) {
      expect(error).to.be.an.instanceOf(PoolDisposedError);
      expect(error.message).to.match(/(forever|stallAfter)\(\).*stream was open/);
    }
    expect(await full.next()).to.deep.equal({ value: undefined, done: true });
    await disposed;
    await waitForExit(pids);
    expect((await elsewhere.next()).done, 'a stream of another pool carries on').to.equal(false);
    await elsewhere.return();
  });

  it('a stream counts as one call for processRecycleThreshold, and keeps its worker busy until it ends', async () => {
    const proxy = await createProxy({ ...streamer, maxPoolSize: 1, processRecycleThreshold: 2 });
    const pool = ProcessProxy.poolOf(proxy);
    const pid = await proxy.pid(); // call 1
    const recycled = nextEvent(pool, 'workerRecycled');
    const stream = await proxy.count(500); // call 2, however many items
    expect(pool.stats().totals.inFlight, 'the stream holds its worker').to.equal(1);
    const next = proxy.pid(); // waits for the stream to end
    expect((await collect(stream)).length).to.equal(500);
    expect(await recycled).to.include({ pid });
    const after = await next;
    expect(after).to.not.equal(pid);
    expect(pool.stats().totals.recycles.calls ?? Object.values(pool.stats().totals.recycles).reduce((a, b) => a + b, 0)).to.be.at.least(1);
  });

  it('no call is sent ahead to a worker whose call streams: calls made meanwhile run on the other worker', async () => {
    const proxy = await createProxy({ ...streamer, minPoolSize: 2, maxPoolSize: 2, shutdownGraceMs: 500 });
    const stream = await proxy.pidThenHang();
    const { value: streaming } = await stream.next();
    const pids = await Promise.all(Array.from({ length: 20 }, () => proxy.pid()));
    expect(new Set(pids).size).to.equal(1);
    expect(pids[0]).to.not.equal(streaming);
  });

  it('works in a lease', async () => {
    const proxy = await createProxy({ ...streamer, maxPoolSize: 1 });
    const items = await ProcessProxy.session(proxy, async (leased) => collect(await leased.count(10)));
    expect(items).to.deep.equal([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  });
});

// Streams under arbitrary scripts (fast-check, through real worker processes): a generator of n
// items that may throw or hang at some item, and a consumer that reads k items and then reads on,
// breaks, or aborts. Whatever the script, the consumer gets exactly the items before the end, then
// the end or the one typed error the script implies; the call settles once; the pool serves on.
import { expect } from 'chai';
import fc from 'fast-check';
import { CallAbortedError, CallTimeoutError, ProcessProxy, RemoteError } from '@process-sandbox/core';
import { forbidEscapes } from './support/forging.mjs';
import { createProxy, disposeProxies, fixture } from './support/pools.mjs';

const RUNS = Number(process.env.STREAM_PROPERTY_RUNS ?? 40);
const streamer = { workerModule: fixture('streams.mjs'), workerExport: 'Streamer' };

describe('streams: arbitrary scripts of producer and consumer', function () {
  this.timeout(Math.max(120_000, RUNS * 3000));
  forbidEscapes(disposeProxies);

  it(`${RUNS} scripts: exactly the items before the end, then done or the one typed error; one settlement; the pool serves on`, async () => {
    const proxy = await createProxy({ ...streamer, maxPoolSize: 1, methodCallTimeoutMs: 800, shutdownGraceMs: 500 });
    const pool = ProcessProxy.poolOf(proxy);
    let settled = 0;
    pool.on('callSettled', () => settled++);
    let calls = 0;
    const outcomes = {};
    const script = fc.record({
      n: fc.integer({ min: 0, max: 400 }),
      failAt: fc.oneof(fc.constant(-1), fc.integer({ min: 0, max: 400 })),
      hangAt: fc.oneof({ weight: 3, arbitrary: fc.constant(-1) }, { weight: 1, arbitrary: fc.integer({ min: 0, max: 400 }) }),
      read: fc.integer({ min: 0, max: 450 }),
      then: fc.constantFrom('read on', 'break', 'abort'),
    });
    await fc.assert(
      fc.asyncProperty(script, async ({ n, failAt, hangAt, read, then }) => {
        // Where the producer stops: the first of its end, its failure and its hang.
        const stops = [[n, 'end'], [failAt, 'fail'], [hangAt, 'hang']].filter(([at]) => at >= 0 && at <= n).sort((a, b) => a[0] - b[0]);
        const [stopAt, stopKind] = stops[0];
        const controller = new AbortController();
        const stream = await ProcessProxy.with(proxy, { signal: controller.signal }).scripted(n, failAt, hangAt);
        calls++;
        const items = [];
        let error;
        let ended = false;
        const take = async (count) => {
          while (items.length < count && !ended && error === undefined) {
            try {
              const step = await stream.next();
              if (step.done) ended = true;
              else items.push(step.value);
            } catch (e) {
              error = e;
            }
          }
        };
        await take(read);
        if (then === 'read on') await take(Infinity);
        else if (then === 'break') await stream.return();
        else if (!ended && error === undefined) {
          controller.abort();
          await take(Infinity);
        }
        // What the script implies: the items before the producer's stop or the consumer's, whichever
        // comes first; then the stop the consumer ran into, or what the consumer did.
        const key = JSON.stringify({ n, failAt, hangAt, read, then });
        expect(items, key).to.deep.equal(Array.from({ length: Math.min(stopAt, then === 'read on' ? Infinity : read) }, (_, i) => i));
        const outcome = error === undefined ? (ended ? 'done' : 'stopped') : error.constructor.name;
        const atStop = { end: 'done', fail: 'RemoteError', hang: 'CallTimeoutError' }[stopKind];
        const expected = then === 'read on' || read > stopAt ? atStop : then === 'break' ? 'stopped' : 'CallAbortedError';
        expect(outcome, key).to.equal(expected);
        if (outcome === 'RemoteError') expect(error).to.be.an.instanceOf(RemoteError).and.include({ remoteName: 'RangeError' });
        if (outcome === 'CallTimeoutError') expect(error).to.be.an.instanceOf(CallTimeoutError);
        if (outcome === 'CallAbortedError') expect(error).to.be.an.instanceOf(CallAbortedError);
        outcomes[`${then}: ${outcome}`] = (outcomes[`${then}: ${outcome}`] ?? 0) + 1;
        // The pool serves the next call (a worker left hung by a cancelled stream is killed by its timeout first).
        expect(await proxy.echo(calls)).to.equal(calls);
        calls++;
      }),
      { numRuns: RUNS },
    );
    await new Promise((resolve) => setImmediate(resolve));
    console.log(`      ${RUNS} scripts: ${JSON.stringify(outcomes)}`);
    expect(settled, 'every call settled exactly once').to.equal(calls);
  });
});

import { expect } from 'chai';
import { ProcessProxy, WorkerCrashedError } from '@process-sandbox/core';
import { createProxy, disposeProxies, fixture, rejectionOf } from './support/pools.mjs';
import { waitFor } from './support/processes.mjs';

const torture = { workerModule: fixture('torture.mjs'), workerExport: 'Torture' };

describe('one-call lookahead', function () {
  afterEach(disposeProxies);

  it('a busy worker already holds its next call: it goes straight on, without waiting for the host', async () => {
    const proxy = await createProxy({ ...torture, maxPoolSize: 1 });
    await Promise.all(Array.from({ length: 50 }, (_, i) => proxy.timed(i, 2)));
    const timeline = await proxy.getTimeline();
    expect(timeline.map(([i]) => i)).to.deep.equal([...Array(50).keys()]);
    // Gap inside the worker between the end of one call and the start of the next.
    const gaps = timeline.slice(1).map(([, start], k) => start - timeline[k][2]);
    gaps.sort((a, b) => a - b);
    const median = gaps[Math.floor(gaps.length / 2)];
    expect(median, `median gap ${median.toFixed(3)} ms`).to.be.below(0.5);
  });

  it('never runs two calls at once in a worker, with calls sent ahead to both workers', async () => {
    const proxy = await createProxy({ ...torture, maxPoolSize: 2, minPoolSize: 2 });
    const results = await Promise.allSettled(Array.from({ length: 200 }, (_, i) => proxy.exclusive(i, 1)));
    expect(results.filter((r) => r.status === 'rejected')).to.have.length(0);
  });

  it('a worker never serves more than processRecycleThreshold calls, even with calls sent ahead', async () => {
    const proxy = await createProxy({ ...torture, maxPoolSize: 2, minPoolSize: 2, processRecycleThreshold: 7 });
    const pids = await Promise.all(Array.from({ length: 100 }, () => proxy.pid()));
    const perPid = new Map();
    for (const pid of pids) perPid.set(pid, (perPid.get(pid) ?? 0) + 1);
    expect(Math.max(...perPid.values())).to.be.at.most(7);
    expect(ProcessProxy.poolOf(proxy).stats().totals.failed).to.equal(0);
  });

  it('a call sent ahead to a worker that crashes before starting it runs elsewhere, exactly once', async () => {
    const proxy = await createProxy({ ...torture, maxPoolSize: 1 });
    const pool = ProcessProxy.poolOf(proxy);
    const crashing = proxy.delayed(null, 100).then(() => 'not reached');
    // Sent ahead while `delayed` runs...
    const ahead = proxy.exclusive('ahead', 0);
    await waitFor(() => pool.stats().workers.some((w) => w.state === 'busy') && pool.stats().totals.inFlight === 2);
    expect(pool.stats().totals.inFlight).to.equal(2);
    // ...then the worker dies before reaching it.
    const [pid] = pool.livePids();
    process.kill(pid, 'SIGKILL');
    expect(await rejectionOf(crashing)).to.be.an.instanceOf(WorkerCrashedError);
    expect(await ahead).to.equal('ahead');
    expect(await proxy.order()).to.deep.equal(['ahead']);
    expect(pool.stats().totals).to.include({ failed: 1 });
  });

  it('the timeout clock of a call sent ahead starts when it starts running', async () => {
    const proxy = await createProxy({ ...torture, maxPoolSize: 1, methodCallTimeoutMs: 400 });
    // The second call waits 300 ms inside the worker behind the first, then runs 300 ms: 600 ms after it was sent.
    const results = await Promise.all([proxy.delayed('a', 300), proxy.delayed('b', 300)]);
    expect(results).to.deep.equal(['a', 'b']);
  });

  it('an aborted call that was sent ahead is dropped by the worker unrun', async () => {
    const proxy = await createProxy({ ...torture, maxPoolSize: 1 });
    const pool = ProcessProxy.poolOf(proxy);
    const pid = await proxy.pid();
    const controller = new AbortController();
    const running = proxy.delayed('running', 200);
    const ahead = ProcessProxy.with(proxy, { signal: controller.signal }).exclusive('aborted', 0);
    await waitFor(() => pool.stats().totals.inFlight === 2);
    controller.abort();
    const error = await rejectionOf(ahead);
    expect(error.name).to.equal('AbortError');
    expect(await running).to.equal('running');
    expect(await proxy.order()).to.deep.equal([]);
    expect(await proxy.pid()).to.equal(pid); // nobody was killed
  });
});

import { expect } from 'chai';
import { ProcessProxy } from '@process-sandbox/core';
import { createProxy, disposeProxies, fixture, gate } from './support/pools.mjs';
import { waitFor } from './support/processes.mjs';

describe('ordering and one-at-a-time execution', function () {
  afterEach(disposeProxies);

  it('runs calls from concurrent callers in FIFO order on a single worker', async () => {
    const proxy = await createProxy({ workerModule: fixture('torture.mjs'), workerExport: 'Torture', maxPoolSize: 1 });
    // Three "callers" interleave their calls; the worker must see them in call order.
    const calls = [];
    for (let i = 0; i < 60; i++) calls.push(proxy.exclusive(i, 0));
    const results = await Promise.all(calls);
    expect(results).to.deep.equal([...Array(60).keys()]);
    expect(await proxy.order()).to.deep.equal([...Array(60).keys()]);
  });

  it('never enters an implementation twice at once, under 100 concurrent calls', async () => {
    const proxy = await createProxy({ workerModule: fixture('torture.mjs'), workerExport: 'Torture', minPoolSize: 2, maxPoolSize: 2 });
    // `exclusive` awaits a timer inside: a worker that started the next call early would re-enter it.
    const results = await Promise.allSettled(Array.from({ length: 100 }, (_, i) => proxy.exclusive(i, 2)));
    const rejected = results.filter((r) => r.status === 'rejected');
    expect(rejected, rejected.map((r) => r.reason?.message).join('; ')).to.have.length(0);
    const stats = ProcessProxy.poolOf(proxy).stats();
    expect(stats.workers).to.have.length(2);
    expect(stats.workers.every((w) => w.calls > 0), 'both workers served calls').to.equal(true);
    expect(stats.totals.succeeded).to.be.at.least(100);
  });

  it('grows from minPoolSize toward maxPoolSize under queue pressure', async () => {
    const proxy = await createProxy({ workerModule: fixture('torture.mjs'), workerExport: 'Torture', minPoolSize: 1, maxPoolSize: 3 });
    const pool = ProcessProxy.poolOf(proxy);
    expect(pool.stats().workers).to.have.length(1);
    // Twelve calls held until the test says so: the pool grows to three workers, and no further.
    const held = gate();
    const calls = Array.from({ length: 12 }, () => proxy.gate(held.path));
    await waitFor(() => pool.stats().workers.filter((w) => w.state === 'busy').length === 3, 'three busy workers');
    expect(pool.stats().workers.filter((w) => !w.spare).length).to.equal(3);
    held.open();
    await Promise.all(calls);
    expect(pool.stats().workers.filter((w) => !w.spare).length).to.be.at.most(3);
  });
});

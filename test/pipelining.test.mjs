import { existsSync } from 'node:fs';
import { expect } from 'chai';
import { ProcessProxy, WorkerCrashedError } from '@process-sandbox/core';
import { createProxy, disposeProxies, fixture, gate, rejectionOf } from './support/pools.mjs';
import { waitFor } from './support/processes.mjs';

const torture = { workerModule: fixture('torture.mjs'), workerExport: 'Torture' };

describe('one-call lookahead', function () {
  afterEach(disposeProxies);

  it('a busy worker already holds its next call: it goes straight on, without waiting for the host', async () => {
    const proxy = await createProxy({ ...torture, maxPoolSize: 1 });
    const pool = ProcessProxy.poolOf(proxy);
    const held = gate();
    const started = gate(); // `touch` creates this file when the second call runs
    const first = proxy.gate(held.path, 'first');
    const second = proxy.touch(started.path, 'second');
    await waitFor(() => pool.stats().totals.inFlight === 2, 'the second call to be sent ahead');
    // Release the first call and block the host's event loop: the second call can only start now
    // if the worker already holds it. (A generous deadline bounds the block if it does not.)
    held.open();
    const deadline = Date.now() + 15_000;
    while (!existsSync(started.path) && Date.now() < deadline);
    expect(existsSync(started.path), 'the second call ran while the host was not listening').to.equal(true);
    expect(await Promise.all([first, second])).to.deep.equal(['first', 'second']);
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
    const crashing = proxy.gate(gate().path).then(() => 'not reached'); // never opened
    // Sent ahead while `delayed` runs...
    const ahead = proxy.exclusive('ahead', 0);
    await waitFor(() => pool.stats().workers.some((w) => w.state === 'busy') && pool.stats().totals.inFlight === 2, 'a call running and one sent ahead');
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
    const proxy = await createProxy({ ...torture, maxPoolSize: 1, methodCallTimeoutMs: 1000 });
    const pool = ProcessProxy.poolOf(proxy);
    // The first call has a long timeout of its own and runs until the test opens the gate; the
    // second, under the pool's 1 s, waits inside the worker behind it, longer than 1 s.
    const held = gate();
    const first = ProcessProxy.with(proxy, { timeoutMs: 120_000 }).gate(held.path, 'a');
    const second = proxy.echo('b');
    await waitFor(() => pool.stats().totals.inFlight === 2, 'the second call to be sent ahead');
    await new Promise((r) => setTimeout(r, 2500)); // a slower machine only makes it longer
    held.open();
    expect(await Promise.all([first, second])).to.deep.equal(['a', 'b']);
    expect(pool.stats().totals.timeouts).to.equal(0);
  });

  it('an aborted call that was sent ahead is dropped by the worker unrun', async () => {
    const proxy = await createProxy({ ...torture, maxPoolSize: 1 });
    const pool = ProcessProxy.poolOf(proxy);
    const pid = await proxy.pid();
    const controller = new AbortController();
    const held = gate();
    const running = proxy.gate(held.path, 'running');
    const ahead = ProcessProxy.with(proxy, { signal: controller.signal }).exclusive('aborted', 0);
    await waitFor(() => pool.stats().totals.inFlight === 2, 'a call running and one sent ahead');
    controller.abort();
    const error = await rejectionOf(ahead);
    expect(error.name).to.equal('AbortError');
    held.open();
    expect(await running).to.equal('running');
    expect(await proxy.order()).to.deep.equal([]);
    expect(await proxy.pid()).to.equal(pid); // nobody was killed
  });
});

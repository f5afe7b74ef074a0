import { existsSync } from 'node:fs';
import { expect } from 'chai';
import { ProcessProxy, WorkerCrashedError } from '@process-sandbox/core';
import { createProxy, disposeProxies, fixture, gate, rejectionOf } from './support/pools.mjs';
import { waitFor } from './support/processes.mjs';

const torture = { workerModule: fixture('torture.mjs'), workerExport: 'Torture' };

describe('lookahead: calls sent ahead to a busy worker', function () {
  afterEach(disposeProxies);

  it('a busy worker already holds its next calls: it goes straight on, without waiting for the host', async () => {
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
    // If the worker is replaced, the assertion below says how it ended.
    const ends = [];
    pool.on('workerExited', (e) => ends.push(e));
    pool.on('workerCrashed', (e) => ends.push(e));
    const controller = new AbortController();
    const held = gate();
    const running = proxy.gate(held.path, 'running');
    const ahead = ProcessProxy.with(proxy, { signal: controller.signal }).exclusive('aborted', 0);
    await waitFor(() => pool.stats().totals.inFlight === 2, 'a call running and one sent ahead');
    controller.abort();
    const error = await rejectionOf(ahead);
    expect(error.name).to.equal('AbortError');
    // Only once the worker has dropped it: a call still ahead when the running one ends starts, and
    // an abort that comes too late is an abort of a running call (the worker is killed).
    await waitFor(() => pool.stats().workers[0]?.ahead === 0, 'the worker to confirm it dropped the aborted call');
    held.open();
    expect(await running).to.equal('running');
    expect(await proxy.order()).to.deep.equal([]);
    expect(await proxy.pid(), `nobody was killed; ends: ${JSON.stringify(ends)}`).to.equal(pid);
  });

  it('with pipelineDepth N a busy worker holds N calls and runs them all while the host is not listening', async () => {
    const proxy = await createProxy({ ...torture, maxPoolSize: 1, pipelineDepth: 3 });
    const pool = ProcessProxy.poolOf(proxy);
    const held = gate();
    const first = proxy.gate(held.path, 'first');
    const touched = [gate(), gate(), gate()];
    const ahead = touched.map((g, i) => proxy.touch(g.path, i));
    const queued = proxy.echo('queued');
    await waitFor(() => pool.stats().totals.inFlight === 4 && pool.stats().totals.queued === 1, 'one call running, three sent ahead, one queued');
    held.open();
    // The host's event loop is blocked: the three calls ahead can only run if the worker holds them.
    const deadline = Date.now() + 15_000;
    while (!touched.every((g) => existsSync(g.path)) && Date.now() < deadline);
    expect(touched.map((g) => existsSync(g.path)), 'every call ahead ran while the host was not listening').to.deep.equal([true, true, true]);
    expect(await Promise.all([first, ...ahead, queued])).to.deep.equal(['first', 0, 1, 2, 'queued']);
  });

  it('a call of higher priority is not stuck behind calls sent ahead: those not started are recalled and run after it', async () => {
    const back = [];
    const noop = () => {};
    const logger = { info: noop, warn: noop, error: noop, debug: (_, message) => message.includes('came back unstarted') && back.push(message) };
    const proxy = await createProxy({ ...torture, maxPoolSize: 1, pipelineDepth: 4, logger });
    const pool = ProcessProxy.poolOf(proxy);
    const held = gate();
    const running = proxy.gate(held.path, 'running');
    const low = [0, 1, 2, 3].map((i) => proxy.exclusive(`low${i}`, 0));
    await waitFor(() => pool.stats().totals.inFlight === 5, 'four low calls sent ahead');
    const high = ProcessProxy.with(proxy, { priority: 10 }).exclusive('high', 0);
    // Recalled: the worker drops them unrun and they come back to the line, behind the high call.
    await waitFor(() => back.length === 4 && pool.stats().totals.inFlight === 5, 'the four low calls recalled, and four calls sent ahead again');
    held.open();
    expect(await Promise.all([running, high, ...low])).to.deep.equal(['running', 'high', 'low0', 'low1', 'low2', 'low3']);
    expect(await proxy.order()).to.deep.equal(['high', 'low0', 'low1', 'low2', 'low3']);
    expect(pool.stats().totals).to.include({ failed: 0, crashes: 0 });
  });

  it('a worker killed with N calls ahead: each runs elsewhere exactly once, in order', async () => {
    const proxy = await createProxy({ ...torture, maxPoolSize: 1, pipelineDepth: 4 });
    const pool = ProcessProxy.poolOf(proxy);
    const crashing = proxy.gate(gate().path); // never opened
    const ahead = [0, 1, 2, 3].map((i) => proxy.exclusive(i, 0));
    await waitFor(() => pool.stats().totals.inFlight === 5, 'one call running and four sent ahead');
    const [pid] = pool.livePids();
    process.kill(pid, 'SIGKILL');
    expect(await rejectionOf(crashing)).to.be.an.instanceOf(WorkerCrashedError);
    expect(await Promise.all(ahead)).to.deep.equal([0, 1, 2, 3]);
    expect(await proxy.order(), 'each ran once, on the replacement').to.deep.equal([0, 1, 2, 3]);
    expect(pool.stats().totals).to.include({ failed: 1, succeeded: 5 });
  });

  it('a worker never serves more than processRecycleThreshold calls with a deep lookahead', async () => {
    const proxy = await createProxy({ ...torture, maxPoolSize: 2, minPoolSize: 2, processRecycleThreshold: 5, pipelineDepth: 8 });
    const pids = await Promise.all(Array.from({ length: 120 }, () => proxy.pid()));
    const perPid = new Map();
    for (const pid of pids) perPid.set(pid, (perPid.get(pid) ?? 0) + 1);
    expect(Math.max(...perPid.values())).to.be.at.most(5);
    expect(ProcessProxy.poolOf(proxy).stats().totals).to.include({ failed: 0, crashes: 0 });
  });

  it('aborting one of several calls ahead drops only it, unrun; the others run in order on the same worker', async () => {
    const proxy = await createProxy({ ...torture, maxPoolSize: 1, pipelineDepth: 3 });
    const pool = ProcessProxy.poolOf(proxy);
    const pid = await proxy.pid();
    const controller = new AbortController();
    const held = gate();
    const running = proxy.gate(held.path, 'running');
    const a = proxy.exclusive('a', 0);
    const b = ProcessProxy.with(proxy, { signal: controller.signal }).exclusive('b', 0);
    const c = proxy.exclusive('c', 0);
    await waitFor(() => pool.stats().totals.inFlight === 4, 'a call running and three sent ahead');
    controller.abort();
    expect((await rejectionOf(b)).name).to.equal('AbortError');
    await waitFor(() => pool.stats().workers[0]?.ahead === 2, 'the worker to confirm it dropped the aborted call');
    held.open();
    expect(await Promise.all([running, a, c])).to.deep.equal(['running', 'a', 'c']);
    expect(await proxy.order()).to.deep.equal(['a', 'c']);
    expect(await proxy.pid()).to.equal(pid);
  });
  it('a recall that reaches the worker while it writes a long reply leaves the next call running: it started when that reply was written', async () => {
    // The host takes the next call for started the moment a reply is read. The worker, waiting for
    // a reply of segments (a large Buffer) to be written, dropped the next call on a Cancel that came
    // meanwhile and answered Cancelled for a call the host had taken for running: a protocol error.
    const proxy = await createProxy({ ...torture, maxPoolSize: 1, pipelineDepth: 4 });
    const pool = ProcessProxy.poolOf(proxy);
    const held = gate();
    const running = proxy.gate(held.path, 'running');
    const big = proxy.buffer(32 * 1024 * 1024); // far more than the pipe holds: its write waits for the host
    const next = [0, 1].map((i) => proxy.exclusive(`next${i}`, 0));
    await waitFor(() => pool.stats().totals.inFlight === 4, 'three calls sent ahead');
    // Release the first call and keep the host from reading while the worker answers it and starts
    // writing the large reply; the recall (a call of higher priority) goes out as the block ends.
    held.open();
    const high = ProcessProxy.with(proxy, { priority: 10 }).exclusive('high', 0);
    const until = Date.now() + 1500;
    while (Date.now() < until);
    const values = await Promise.all([running, big, high, ...next]);
    expect(values[1].length).to.equal(32 * 1024 * 1024);
    expect([values[0], ...values.slice(2)]).to.deep.equal(['running', 'high', 'next0', 'next1']);
    expect(pool.stats().totals).to.include({ failed: 0, crashes: 0 });
  });
});

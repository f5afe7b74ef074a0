import { expect } from 'chai';
import { CallAbortedError, CallTimeoutError, ConfigurationError, ProcessProxy } from '@process-sandbox/core';
import { createProxy, disposeProxies, fixture, gate, rejectionOf } from './support/pools.mjs';
import { isAlive, waitFor } from './support/processes.mjs';

const torture = { workerModule: fixture('torture.mjs'), workerExport: 'Torture' };

describe('per-call options: ProcessProxy.with(proxy, { signal, timeoutMs, priority })', function () {
  afterEach(disposeProxies);

  it('an aborted queued call leaves the queue with an AbortError whose cause is the reason, and never runs', async () => {
    const proxy = await createProxy({ ...torture, maxPoolSize: 1 });
    const pool = ProcessProxy.poolOf(proxy);
    const held = gate();
    const running = proxy.gate(held.path, 'first');
    const controller = new AbortController();
    // Behind the running call: sent ahead to the worker, or queued.
    const queued = ProcessProxy.with(proxy, { signal: controller.signal }).exclusive(1, 0);
    await waitFor(() => pool.stats().totals.inFlight + pool.stats().totals.queued === 2, 'the second call to wait behind the first');
    const reason = new Error('user navigated away');
    controller.abort(reason);
    const error = await rejectionOf(queued);
    expect(error).to.be.an.instanceOf(CallAbortedError);
    expect(error.name).to.equal('AbortError');
    expect(error.cause).to.equal(reason);
    expect(error.running).to.equal(false);
    expect(pool.stats().totals.queued).to.equal(0);
    held.open();
    expect(await running).to.equal('first');
    expect(await proxy.order()).to.deep.equal([]);
  });

  it('an already aborted signal rejects at once', async () => {
    const proxy = await createProxy({ ...torture, maxPoolSize: 1 });
    const error = await rejectionOf(ProcessProxy.with(proxy, { signal: AbortSignal.abort('gone') }).echo(1));
    expect(error.name).to.equal('AbortError');
    expect(error.cause).to.equal('gone');
  });

  it('aborting a running call kills its worker by default; the pool replaces it', async () => {
    const proxy = await createProxy({ ...torture, maxPoolSize: 1 });
    const pid = await proxy.pid();
    const controller = new AbortController();
    const spinning = ProcessProxy.with(proxy, { signal: controller.signal }).spin();
    await waitFor(() => ProcessProxy.poolOf(proxy).stats().totals.inFlight === 1, 'the call to run');
    controller.abort();
    const error = await rejectionOf(spinning);
    expect(error.name).to.equal('AbortError');
    expect(error.running).to.equal(true);
    await waitFor(() => !isAlive(pid), `worker ${pid} to exit`);
    expect(isAlive(pid)).to.equal(false);
    expect(await proxy.pid()).to.not.equal(pid);
  });

  it("onAbortRunning: 'detach' rejects at once but lets the worker finish, unobserved", async () => {
    const proxy = await createProxy({ ...torture, maxPoolSize: 1 });
    const pid = await proxy.pid();
    const controller = new AbortController();
    const held = gate();
    const slow = ProcessProxy.with(proxy, { signal: controller.signal, onAbortRunning: 'detach' }).gate(held.path, 'late');
    await waitFor(() => ProcessProxy.poolOf(proxy).stats().totals.inFlight === 1, 'the call to run');
    controller.abort();
    expect((await rejectionOf(slow)).name).to.equal('AbortError');
    held.open();
    // Same worker, once it is done with the detached call.
    expect(await proxy.pid()).to.equal(pid);
  });

  it('timeoutMs overrides methodCallTimeoutMs for the calls of a view', async () => {
    const proxy = await createProxy({ ...torture, maxPoolSize: 1, methodCallTimeoutMs: 10_000 });
    const error = await rejectionOf(ProcessProxy.with(proxy, { timeoutMs: 200 }).spin());
    expect(error).to.be.an.instanceOf(CallTimeoutError);
    expect(error.timeoutMs).to.equal(200); // the view's, not the pool's 10 s
    // The proxy itself keeps the pool's timeout.
    expect(await proxy.delayed('ok', 300)).to.equal('ok');
  });

  it('higher priority runs first; FIFO within a priority', async () => {
    const proxy = await createProxy({ ...torture, maxPoolSize: 1 });
    const held = gate();
    const blocker = proxy.gate(held.path);
    const low = ProcessProxy.with(proxy, { priority: 0 });
    const high = ProcessProxy.with(proxy, { priority: 10 });
    const calls = [low.exclusive('low-1', 0), low.exclusive('low-2', 0), high.exclusive('high-1', 0), high.exclusive('high-2', 0), low.exclusive('low-3', 0)];
    held.open();
    await blocker;
    await Promise.all(calls);
    expect(await proxy.order()).to.deep.equal(['high-1', 'high-2', 'low-1', 'low-2', 'low-3']);
  });

  it('validates call options', async () => {
    const proxy = await createProxy({ ...torture, maxPoolSize: 1 });
    expect(() => ProcessProxy.with(proxy, { timeoutMs: -1 })).to.throw(ConfigurationError, /timeoutMs/);
    expect(() => ProcessProxy.with(proxy, { signal: 'no' })).to.throw(ConfigurationError, /AbortSignal/);
    expect(() => ProcessProxy.with(proxy, { onAbortRunning: 'ignore' })).to.throw(ConfigurationError, /onAbortRunning/);
    expect(() => ProcessProxy.with(proxy, { prio: 1 })).to.throw(ConfigurationError, /unknown call option/);
    expect(() => ProcessProxy.with({}, {})).to.throw(TypeError, /expects a proxy/);
  });
});

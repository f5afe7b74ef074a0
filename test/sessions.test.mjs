import { expect } from 'chai';
import { CallTimeoutError, ProcessProxy, SessionLostError, WorkerCrashedError } from '@process-sandbox/core';
import { createProxy, disposeProxies, fixture, rejectionOf } from './support/pools.mjs';
import { waitFor } from './support/processes.mjs';

const torture = { workerModule: fixture('torture.mjs'), workerExport: 'Torture' };

describe('sessions (leases pinned to one worker)', function () {
  afterEach(disposeProxies);

  it('ProcessProxy.session runs every call on one worker, with a fresh instance it disposes at the end', async () => {
    const proxy = await createProxy({ ...torture, minPoolSize: 2, maxPoolSize: 2 });
    const pool = ProcessProxy.poolOf(proxy);
    const shared = await proxy.whoAmI();
    const result = await ProcessProxy.session(proxy, async (s) => {
      const first = await s.whoAmI();
      for (let i = 0; i < 5; i++) await s.exclusive(i, 0);
      const again = await s.whoAmI();
      expect(again.pid).to.equal(first.pid);
      expect(again.instance).to.equal(first.instance);
      expect(pool.stats().leases).to.equal(1);
      return { first, order: await s.order() };
    });
    expect(result.order).to.deep.equal([0, 1, 2, 3, 4]);
    expect(result.first.instance).to.not.equal(shared.instance);
    expect(pool.stats().leases).to.equal(0);
    // The session's instance was disposed; the worker went back to the pool and serves calls.
    const after = await waitFor(async () => {
      const pids = await Promise.all([proxy.whoAmI(), proxy.whoAmI()]);
      return pids.find((w) => w.pid === result.first.pid);
    }, 'the leased worker to serve the pool again');
    expect(after.disposed).to.equal(1);
    expect(await proxy.order()).to.deep.equal([]); // the shared instance never saw the session's calls
  });

  it('await using-style lease: pinned worker, not handed other calls while leased', async () => {
    const proxy = await createProxy({ ...torture, minPoolSize: 2, maxPoolSize: 2 });
    const pool = ProcessProxy.poolOf(proxy);
    const lease = await ProcessProxy.lease(proxy);
    try {
      const pinned = (await lease.whoAmI()).pid;
      const others = await Promise.all(Array.from({ length: 10 }, () => proxy.pid()));
      expect(others.every((pid) => pid !== pinned)).to.equal(true);
      expect(pool.stats().workers.find((w) => w.pid === pinned).leased).to.equal(true);
    } finally {
      await lease[Symbol.asyncDispose]();
    }
    expect(pool.stats().leases).to.equal(0);
    expect(pool.stats().workers.every((w) => !w.leased)).to.equal(true);
  });

  it('newInstancePerSession: false uses the worker’s shared instance', async () => {
    const proxy = await createProxy({ ...torture, maxPoolSize: 1 });
    const shared = await proxy.whoAmI();
    const inSession = await ProcessProxy.session(proxy, (s) => s.whoAmI(), { newInstancePerSession: false });
    expect(inSession.instance).to.equal(shared.instance);
  });

  it('if the pinned worker dies, that call rejects with the crash and every later call with SessionLostError', async () => {
    const proxy = await createProxy({ ...torture, maxPoolSize: 2, minPoolSize: 2 });
    const pool = ProcessProxy.poolOf(proxy);
    const lease = await ProcessProxy.lease(proxy);
    const pid = (await lease.whoAmI()).pid;
    const crash = lease.exit(9);
    const queuedBehind = lease.echo('never');
    expect(await rejectionOf(crash)).to.be.an.instanceOf(WorkerCrashedError);
    const lost = await rejectionOf(queuedBehind);
    expect(lost).to.be.an.instanceOf(SessionLostError);
    expect(lost).to.include({ code: 'ERR_PS_SESSION_LOST', pid });
    const later = await rejectionOf(lease.echo('later'));
    expect(later).to.be.an.instanceOf(SessionLostError);
    await lease[Symbol.asyncDispose]();
    expect(pool.stats().leases).to.equal(0);
    // The pool itself carries on.
    expect(await proxy.echo('pool ok')).to.equal('pool ok');
  });

  it('a lease that timed out loses its worker; one that saw a remote error hands back a healthy worker', async () => {
    const proxy = await createProxy({ ...torture, maxPoolSize: 1, methodCallTimeoutMs: 2000 });
    const pool = ProcessProxy.poolOf(proxy);
    let pid;
    await ProcessProxy.session(proxy, async (s) => {
      pid = (await s.whoAmI()).pid;
      await rejectionOf(s.rejectAsync('business error'));
    });
    expect(await proxy.pid()).to.equal(pid); // handed back, healthy
    const timedOut = await rejectionOf(
      ProcessProxy.session(proxy, async (s) => {
        await s.spin();
      }),
    );
    expect(timedOut).to.be.an.instanceOf(CallTimeoutError);
    expect(await proxy.pid()).to.not.equal(pid);
    expect(pool.stats().leases).to.equal(0);
  });

  it('leases wait their turn for a worker and never leak', async () => {
    const proxy = await createProxy({ ...torture, maxPoolSize: 2, minPoolSize: 1 });
    const pool = ProcessProxy.poolOf(proxy);
    const results = await Promise.all(
      Array.from({ length: 6 }, (_, i) =>
        ProcessProxy.session(proxy, async (s) => {
          await s.exclusive(i, 20);
          return (await s.order())[0];
        }),
      ),
    );
    expect(results).to.deep.equal([0, 1, 2, 3, 4, 5]);
    expect(pool.stats().leases).to.equal(0);
    expect(pool.stats().workers.filter((w) => w.state !== 'stopping').length).to.be.at.most(2);
  });
});

// No daemon survives its worker: a descendant that double-forks (`sh -c 'setsid sleep &'`) has no
// parent link left to anything of ours unless the worker is a child subreaper (it then reparents
// to the worker, and every parent-link walk finds it), or the worker has its own cgroup (the
// kernel keeps it there, whatever it forks). Checked on real processes through /proc.
import { expect } from 'chai';
import { CallTimeoutError, ProcessProxy, WorkerCrashedError } from '@process-sandbox/core';
import { cgroupDirsOf, removeOwnWorkerCgroups, waitUntilRemoved } from './support/cgroups.mjs';
import { createProxy, disposeProxies, fixture, nextEvent, rejectionOf } from './support/pools.mjs';
import { isAlive, parentOf, poll, skipBecause, waitFor, waitForExit } from './support/processes.mjs';

const spawner = { workerModule: fixture('spawner.mjs'), workerExport: 'Spawner' };

/** Polls until `pid` is dead (or a zombie); throws naming it at the deadline. */
async function expectDead(pid, what, timeoutMs = 5000) {
  if (!(await poll(() => !isAlive(pid), { timeoutMs, intervalMs: 10 }))) throw new Error(`${what} ${pid} is still alive ${timeoutMs} ms later`);
}

/** A worker running `daemon()`: its pid and the daemon's, the daemon checked to be a reparented orphan. */
async function workerWithDaemon(proxy) {
  const worker = await proxy.pid();
  const daemon = await proxy.daemon();
  expect(isAlive(daemon), 'the daemon runs').to.equal(true);
  return { worker, daemon };
}

/** Whether koffi loads in a worker (without it the worker cannot become a subreaper). */
async function koffiInWorker() {
  const proxy = await createProxy({ ...spawner, maxPoolSize: 1 });
  const signal = await proxy.deathSignal();
  await ProcessProxy.poolOf(proxy).dispose();
  return signal !== null;
}

describe('no daemon survives', function () {
  this.timeout(30_000);
  afterEach(async () => {
    await disposeProxies();
    await removeOwnWorkerCgroups();
  });

  describe('the worker is a child subreaper (koffi)', function () {
    before(async function () {
      if (!(await koffiInWorker())) skipBecause(this, 'koffi cannot load in the worker here: no subreaper; see docs/reliability.md for what then escapes');
    });

    it('a double-forked daemon is reparented to the worker, not to init', async () => {
      const proxy = await createProxy({ ...spawner, maxPoolSize: 1 });
      const { worker, daemon } = await workerWithDaemon(proxy);
      try {
        expect(parentOf(daemon)).to.equal(worker);
      } finally {
        await ProcessProxy.poolOf(proxy).dispose();
        await expectDead(daemon, 'daemon');
      }
    });

    it('dispose (graceful shutdown): the daemon dies with the worker', async () => {
      const proxy = await createProxy({ ...spawner, maxPoolSize: 1 });
      const { worker, daemon } = await workerWithDaemon(proxy);
      await ProcessProxy.poolOf(proxy).dispose();
      await waitForExit([worker]);
      await expectDead(daemon, 'daemon');
    });

    it('recycle (processRecycleThreshold): the daemon dies with the retired worker, and the next call runs on a new one', async () => {
      const proxy = await createProxy({ ...spawner, maxPoolSize: 1, processRecycleThreshold: 3 });
      const pool = ProcessProxy.poolOf(proxy);
      const recycled = nextEvent(pool, 'workerRecycled');
      const { worker, daemon } = await workerWithDaemon(proxy);
      expect(await proxy.pid()).to.equal(worker); // the third call: the worker retires after it
      expect(await recycled).to.include({ pid: worker });
      await expectDead(daemon, 'daemon');
      expect(await proxy.pid()).to.not.equal(worker);
    });

    it('timeout kill (the host kills a spinning worker): the daemon dies too', async () => {
      const proxy = await createProxy({ ...spawner, maxPoolSize: 1, methodCallTimeoutMs: 1000 });
      const { worker, daemon } = await workerWithDaemon(proxy);
      expect(await rejectionOf(proxy.spin())).to.be.an.instanceOf(CallTimeoutError);
      await waitForExit([worker]);
      await expectDead(daemon, 'daemon');
    });

    it('dispose of a blocked worker (killed when shutdownGraceMs runs out): the daemon dies too', async () => {
      const proxy = await createProxy({ ...spawner, maxPoolSize: 1, shutdownGraceMs: 200 });
      const { daemon } = await workerWithDaemon(proxy);
      const blocked = proxy.block();
      await waitFor(() => ProcessProxy.poolOf(proxy).stats().totals.inFlight === 1, 'the call to be in flight');
      await ProcessProxy.poolOf(proxy).dispose();
      await rejectionOf(blocked);
      await expectDead(daemon, 'daemon');
    });

    it('documented escape: without a cgroup, a worker that dies on its own (SIGSEGV) leaves its daemon to init', async () => {
      const proxy = await createProxy({ ...spawner, maxPoolSize: 1 });
      const { worker, daemon } = await workerWithDaemon(proxy);
      try {
        expect(await rejectionOf(proxy.crash())).to.be.an.instanceOf(WorkerCrashedError);
        await waitForExit([worker]);
        // Nothing of ours is its parent any more: a bounded wait for something that must not happen.
        expect(await poll(() => !isAlive(daemon), { timeoutMs: 500, intervalMs: 20 })).to.equal(false);
        expect(parentOf(daemon)).to.not.equal(worker);
      } finally {
        try {
          process.kill(daemon, 'SIGKILL');
        } catch {}
        await expectDead(daemon, 'daemon');
      }
    });
  });

  describe('with a per-worker cgroup', function () {
    before(function () {
      if (process.getuid?.() !== 0) skipBecause(this, 'not root: no cgroup hierarchy is writable');
    });

    async function cgroupProxy(options) {
      try {
        return await createProxy({ ...spawner, maxPoolSize: 1, cgroup: {}, ...options });
      } catch (error) {
        if (error.option === 'cgroup') return undefined;
        throw error;
      }
    }

    it('a worker that dies on its own (SIGSEGV, no hook runs): the host kills its daemon through the cgroup, and removes the cgroup', async function () {
      const proxy = await cgroupProxy();
      if (!proxy) skipBecause(this, 'no writable cgroup hierarchy on this machine');
      const { worker, daemon } = await workerWithDaemon(proxy);
      const dirs = Object.values(cgroupDirsOf(worker)).filter((d) => d.includes(`process-sandbox-${process.pid}-`));
      expect(dirs, 'the worker is in its own cgroup').to.not.be.empty;
      // The daemon was born in it, and stays in it whatever it forks or setsid's.
      expect(cgroupDirsOf(daemon)).to.deep.include(cgroupDirsOf(worker));
      const error = await rejectionOf(proxy.crash());
      expect(error).to.be.an.instanceOf(WorkerCrashedError);
      expect(error.signal).to.equal('SIGSEGV');
      await expectDead(daemon, 'daemon');
      await waitUntilRemoved(dirs);
      expect(await proxy.pid()).to.not.equal(worker);
    });

    it('the same daemon in a memory cgroup (v1 or v2 with memory): killed at the crash, every directory removed', async function () {
      const proxy = await cgroupProxy({ cgroup: { memoryMax: '1G' } });
      if (!proxy) skipBecause(this, 'no writable memory cgroup on this machine');
      const { worker, daemon } = await workerWithDaemon(proxy);
      const dirs = Object.values(cgroupDirsOf(worker)).filter((d) => d.includes(`process-sandbox-${process.pid}-`));
      expect(dirs).to.not.be.empty;
      await rejectionOf(proxy.crash());
      await expectDead(daemon, 'daemon');
      await waitUntilRemoved(dirs);
    });
  });
});

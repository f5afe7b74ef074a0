import { expect } from 'chai';
import { CircuitOpenError, ProcessProxy, WorkerCrashedError } from '@process-sandbox/core';
import { createProxy, disposeProxies, fixture, rejectionOf } from './support/pools.mjs';

const torture = { workerModule: fixture('torture.mjs'), workerExport: 'Torture' };

describe('resilience', function () {
  afterEach(disposeProxies);

  describe('circuit breaker', function () {
    it('a pool whose every call crashes its worker for 4 s starts only a bounded number of processes, failing fast while open', async function () {
      this.timeout(20_000);
      const proxy = await createProxy({ ...torture, maxPoolSize: 2, minPoolSize: 1 });
      const pool = ProcessProxy.poolOf(proxy);
      let started = 0;
      pool.on('workerStarted', () => started++);
      const outcomes = { crashed: 0, circuitOpen: 0, other: 0 };
      const until = Date.now() + 4000;
      let lastOpen;
      while (Date.now() < until) {
        const t = Date.now();
        const error = await rejectionOf(proxy.exit(1));
        if (error instanceof WorkerCrashedError) outcomes.crashed++;
        else if (error instanceof CircuitOpenError) {
          outcomes.circuitOpen++;
          lastOpen = error;
          expect(Date.now() - t, 'fails fast').to.be.below(100);
          await new Promise((r) => setTimeout(r, 20)); // a client that keeps trying, not a tight loop
        } else outcomes.other++;
      }
      expect(outcomes.other).to.equal(0);
      expect(outcomes.crashed).to.be.at.least(3);
      expect(outcomes.circuitOpen).to.be.above(10);
      expect(lastOpen.code).to.equal('ERR_PS_CIRCUIT_OPEN');
      expect(lastOpen.lastError.message).to.match(/crashed after 0 call/);
      // Three young deaths open it; then one probe per back-off (0.5 s, 1 s, 2 s): far from a respawn per call.
      expect(started, `started ${started} processes`).to.be.at.most(10);
      expect(pool.stats().circuit).to.be.oneOf(['open', 'halfOpen']);
    });

    it('a half-open probe that survives closes the circuit', async function () {
      this.timeout(20_000);
      const proxy = await createProxy({ ...torture, maxPoolSize: 1 });
      const pool = ProcessProxy.poolOf(proxy);
      for (let i = 0; i < 3; i++) await rejectionOf(proxy.exit(1));
      expect(pool.stats().circuit).to.equal('open');
      expect(await rejectionOf(proxy.echo(1))).to.be.an.instanceOf(CircuitOpenError);
      // After the back-off a probe starts; it serves calls, and the circuit closes.
      const deadline = Date.now() + 5000;
      let value;
      while (Date.now() < deadline) {
        try {
          value = await proxy.echo('back');
          break;
        } catch (error) {
          expect(error).to.be.an.instanceOf(CircuitOpenError);
          await new Promise((r) => setTimeout(r, 50));
        }
      }
      expect(value).to.equal('back');
      await proxy.echo(2);
      await proxy.echo(3);
      expect(pool.stats().circuit).to.equal('closed');
    });
  });

  describe('opt-in retries', function () {
    it('re-runs a crashed call of a method declared idempotent, and only those', async () => {
      const proxy = await createProxy({ ...torture, maxPoolSize: 1, retry: { methods: ['throwLaterThenEcho', 'delayed'], attempts: 2, backoffMs: 10 } });
      const pool = ProcessProxy.poolOf(proxy);
      // Arm a crash that lands during the next call; `delayed` is declared idempotent.
      await proxy.throwLater(50);
      expect(await proxy.delayed('survived', 300)).to.equal('survived');
      expect(pool.stats().totals.crashes).to.equal(1);
      // `echo` is not declared: a crash during it is not retried.
      await proxy.throwLater(50);
      const slowEcho = proxy.exclusive('x', 300);
      expect(await rejectionOf(slowEcho)).to.be.an.instanceOf(WorkerCrashedError);
    });

    it('gives up after `attempts` re-runs', async () => {
      const proxy = await createProxy({ ...torture, maxPoolSize: 1, retry: { methods: ['exit'], attempts: 2, backoffMs: 5 } });
      const pool = ProcessProxy.poolOf(proxy);
      const error = await rejectionOf(proxy.exit(4));
      expect(error).to.be.an.instanceOf(WorkerCrashedError);
      expect(error.exitCode).to.equal(4);
      expect(pool.stats().totals.crashes).to.equal(3); // the first run and two re-runs
    });

    it('validates the retry option', async () => {
      for (const retry of [{ methods: [] }, { methods: ['a'], attempts: 0 }, { methods: ['a'], backoffMs: -1 }, { methods: ['a'], tries: 1 }]) {
        const error = await rejectionOf(ProcessProxy.create({ ...torture, retry }));
        expect(error.code).to.equal('ERR_PS_CONFIGURATION');
        expect(error.option).to.match(/^retry/);
      }
    });
  });

  describe('hot reload', function () {
    it('rolls onto new code with no failed call; calls after reload() resolves run the new code', async () => {
      const proxy = await createProxy({ workerModule: fixture('versioned.mjs'), workerExport: 'V1', minPoolSize: 2, maxPoolSize: 2 });
      const pool = ProcessProxy.poolOf(proxy);
      const oldPids = pool.livePids();
      expect(await proxy.version()).to.equal(1);
      // Calls keep flowing while the pool reloads.
      const during = Array.from({ length: 20 }, (_, i) => proxy.slow(10 + (i % 3) * 20));
      await pool.reload({ workerExport: 'V2' });
      const after = await Promise.all(Array.from({ length: 10 }, () => proxy.version()));
      expect(after.every((v) => v === 2)).to.equal(true);
      const results = await Promise.allSettled(during);
      expect(results.filter((r) => r.status === 'rejected')).to.deep.equal([]);
      expect(pool.stats().totals.failed).to.equal(0);
      expect(pool.stats().totals.recycles.reload).to.equal(2);
      expect(pool.livePids().some((p) => oldPids.includes(p))).to.equal(false);
    });

    it('a reload onto code that cannot start rejects and leaves the old workers serving', async () => {
      const proxy = await createProxy({ workerModule: fixture('versioned.mjs'), workerExport: 'V1', maxPoolSize: 1 });
      const pool = ProcessProxy.poolOf(proxy);
      const pids = pool.livePids();
      const error = await rejectionOf(pool.reload({ workerExport: 'V9' }));
      expect(error.code).to.equal('ERR_PS_WORKER_START');
      expect(error.reason).to.match(/no export 'V9'/);
      expect(await proxy.version()).to.equal(1);
      expect(pool.livePids()).to.include.members(pids);
    });
  });
});

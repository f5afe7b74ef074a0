import { expect } from 'chai';
import { CircuitOpenError, ProcessProxy, WorkerCrashedError } from '@process-sandbox/core';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createProxy, disposeProxies, fixture, gate, memoryLogger, rejectionOf } from './support/pools.mjs';
import { skipBecause, waitFor } from './support/processes.mjs';

const torture = { workerModule: fixture('torture.mjs'), workerExport: 'Torture' };
/** Workers that load fine until `marker` exists, then die while loading or just after (see the fixture). */
const marked = (marker) => ({ workerModule: fixture('crashes-at-load-when-marked.mjs'), workerExport: 'Marked', env: { ...process.env, CRASH_MARKER: marker } });

describe('resilience', function () {
  afterEach(disposeProxies);

  describe('circuit breaker: judges start-up, not calls (unit tests of its rule: circuit-breaker.test.mjs)', function () {
    it('a pool whose every call crashes its worker keeps serving: each call gets WorkerCrashedError, one replacement per crash, the circuit stays closed', async function () {
      if (process.platform === 'win32') return skipBecause(this, 'half of its crashes are a SIGSEGV the worker sends itself, a POSIX signal');
      this.timeout(120_000);
      const proxy = await createProxy({ ...torture, maxPoolSize: 2, minPoolSize: 1 });
      const pool = ProcessProxy.poolOf(proxy);
      const initial = pool.livePids().length; // the first worker and the warm spare
      let started = 0;
      pool.on('workerStarted', () => started++);
      const opened = [];
      pool.on('workerCrashed', () => opened.push(pool.stats().circuit));
      // One after another, then in bursts that queue behind each other and get sent ahead.
      const errors = [];
      for (let i = 0; i < 12; i++) errors.push(await rejectionOf(i % 2 ? proxy.segfault() : proxy.exit(1)));
      for (let burst = 0; burst < 3; burst++) {
        errors.push(...(await Promise.all(Array.from({ length: 8 }, (_, i) => rejectionOf(i % 2 ? proxy.segfault() : proxy.exit(3))))));
      }
      const names = errors.map((e) => e.constructor.name);
      expect(names.filter((n) => n !== 'WorkerCrashedError'), 'every call failed as a crash, none refused').to.deep.equal([]);
      expect(errors.filter((e) => e.signal === 'SIGSEGV')).to.have.length(errors.length / 2);
      expect(opened.every((c) => c === 'closed'), `circuit while crashing: ${opened}`).to.equal(true);
      expect(pool.stats().totals.crashes).to.equal(errors.length);
      expect(await proxy.echo('still serving')).to.equal('still serving');
      expect(pool.stats().circuit).to.equal('closed');
      // Every process started either crashed with its call or is still serving: one start per crash,
      // beyond the pool's own size (at most maxPoolSize and a spare).
      const live = pool.livePids().length;
      expect(initial + started, `${initial} + ${started} started, ${errors.length} crashed, ${live} live`).to.equal(errors.length + live);
      expect(live).to.be.at.most(3);
    });

    it('a module that crashes while loading opens the circuit: calls fail fast with CircuitOpenError carrying the start failure, one probe per back-off', async function () {
      this.timeout(60_000);
      const dir = mkdtempSync(join(tmpdir(), 'ps-breaker-'));
      const marker = join(dir, 'crash');
      try {
        // The pool logs each opening at error level: note how many workers had started by then.
        const starts = [];
        const startsAtOpening = [];
        const logger = { ...memoryLogger(), error: (_obj, msg) => /circuit open/.test(msg) && startsAtOpening.push(starts.length) };
        const proxy = await createProxy({ ...marked(marker), maxPoolSize: 1, logger });
        const pool = ProcessProxy.poolOf(proxy);
        pool.on('workerStarted', ({ pid }) => starts.push(pid));
        // From now on every new worker dies while loading. The serving one is killed by its call:
        // that is the call's failure, not a start-up death.
        writeFileSync(marker, 'load');
        expect(await rejectionOf(proxy.exit(1))).to.be.an.instanceOf(WorkerCrashedError);
        for (let n = 1; n <= 3; n++) {
          await waitFor(() => startsAtOpening.length >= n, `opening number ${n} of the circuit`, { timeoutMs: 20_000 });
          if (n === 1) {
            const error = await rejectionOf(proxy.echo('refused'));
            expect(error).to.be.an.instanceOf(CircuitOpenError);
            expect(error.code).to.equal('ERR_PS_CIRCUIT_OPEN');
            expect(error.lastError.code).to.equal('ERR_PS_WORKER_START');
            expect(error.lastError.message).to.match(/exit code 7/);
            expect(pool.stats().circuit).to.equal('open');
          }
        }
        // Three start failures opened it (the spare and the replacements); then exactly one probe
        // per back-off, each dying while loading: the circuit reopened after each.
        expect(startsAtOpening[1] - startsAtOpening[0], 'probes between openings 1 and 2').to.equal(1);
        expect(startsAtOpening[2] - startsAtOpening[1], 'probes between openings 2 and 3').to.equal(1);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });

    it('workers that die idle after loading, with no call to blame, count too', async function () {
      this.timeout(60_000);
      const dir = mkdtempSync(join(tmpdir(), 'ps-breaker-'));
      const marker = join(dir, 'crash');
      try {
        const openings = [];
        const logger = { ...memoryLogger(), error: (_obj, msg) => /circuit open/.test(msg) && openings.push(msg) };
        const proxy = await createProxy({ ...marked(marker), maxPoolSize: 1, warmSpare: false, logger });
        writeFileSync(marker, 'idle');
        expect(await rejectionOf(proxy.exit(1))).to.be.an.instanceOf(WorkerCrashedError);
        // Nobody calls: each replacement exits on its own 500 ms after loading (after Ready, unless
        // the machine is slow enough for it to die before; either is a start-up death).
        await waitFor(() => openings.length > 0, 'the circuit to open');
        expect(openings[0]).to.match(/Last failure: .*exit code 8/);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });

    it('a half-open probe that serves its first call closes the circuit', async function () {
      this.timeout(60_000);
      const dir = mkdtempSync(join(tmpdir(), 'ps-breaker-'));
      const marker = join(dir, 'crash');
      try {
        const proxy = await createProxy({ ...marked(marker), maxPoolSize: 1 });
        const pool = ProcessProxy.poolOf(proxy);
        writeFileSync(marker, 'load');
        await rejectionOf(proxy.exit(1));
        await waitFor(() => pool.stats().circuit === 'open', 'the circuit to open');
        expect(await rejectionOf(proxy.echo(1))).to.be.an.instanceOf(CircuitOpenError);
        // The module is fixed; after the back-off a probe starts, serves, and the circuit closes.
        rmSync(marker);
        const value = await waitFor(async () => {
          try {
            return await proxy.echo('back');
          } catch (error) {
            if (!(error instanceof CircuitOpenError)) throw error;
            return undefined;
          }
        }, 'a call to succeed once the back-off ended', { timeoutMs: 20_000, intervalMs: 50 });
        expect(value).to.equal('back');
        expect(pool.stats().circuit).to.equal('closed');
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  });

  describe('opt-in retries', function () {
    it('re-runs a crashed call of a method declared idempotent, and only those', async () => {
      const proxy = await createProxy({ ...torture, maxPoolSize: 1, retry: { methods: ['crashOnce', 'delayed'], attempts: 2, backoffMs: 10 } });
      const pool = ProcessProxy.poolOf(proxy);
      // `crashOnce` kills its worker the first time it runs: declared idempotent, it is re-run.
      expect(await proxy.crashOnce(gate().path)).to.equal('survived');
      expect(pool.stats().totals.crashes).to.equal(1);
      // `exit` is not declared: a crash during it is not retried.
      expect(await rejectionOf(proxy.exit(5))).to.be.an.instanceOf(WorkerCrashedError);
      expect(pool.stats().totals.crashes).to.equal(2);
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

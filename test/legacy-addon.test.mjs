// The legacy C++ addon (samples/legacy-addon) through real worker processes: its defects (a
// segfault, leaks, a blocking call, global state) hit the worker, never this process.
//
// Skipped when the addon is not built (no python3, make, C++ compiler or Node headers when
// `npm install` ran): the rest of the suite does not need it.
import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { CallTimeoutError, ProcessProxy, WorkerCrashedError } from '@process-sandbox/core';
import { addonAvailable, addonLoadError, convert as localConvert } from '../samples/legacy-addon/index.mjs';
import { isAlive, openFds, waitFor } from './support/processes.mjs';

const workerModule = new URL('../samples/legacy-addon/legacy-codec.mjs', import.meta.url);
const MiB = 1024 * 1024;

/** Resident set size of `pid`, in bytes, from /proc/<pid>/status. */
function rssOf(pid) {
  const match = /^VmRSS:\s+(\d+)\s+kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!match) throw new Error(`no VmRSS in /proc/${pid}/status`);
  return Number(match[1]) * 1024;
}

function rejectionOf(promise) {
  return promise.then(
    (value) => {
      throw new Error(`expected a rejection, got ${JSON.stringify(value)}`);
    },
    (error) => error,
  );
}

describe('legacy C++ addon in worker processes', function () {
  let proxy;
  let workDir;

  // Each test makes at most one proxy through create() and the afterEach disposes it, whatever
  // the test did, before the suite's root hook looks for processes left running.
  async function create(options = {}) {
    proxy = await ProcessProxy.create({
      workerModule,
      workerExport: 'LegacyCodec',
      minPoolSize: 1,
      maxPoolSize: 1,
      healthIntervalMs: 0, // no health reports: nothing else runs in the worker while we measure it
      cwd: workDir, // a core dump from the SIGSEGV, where they are enabled, lands here, not in the repo
      ...options,
    });
    return proxy;
  }

  before(function () {
    if (!addonAvailable()) {
      console.warn(`      skipping the legacy addon tests: ${addonLoadError()?.message}`);
      this.skip();
    }
    workDir = mkdtempSync(join(tmpdir(), 'legacy-addon-test-'));
  });

  afterEach(async function () {
    const p = proxy;
    proxy = undefined;
    if (p) await p[Symbol.asyncDispose]();
  });

  after(function () {
    if (workDir) rmSync(workDir, { recursive: true, force: true });
  });

  it('convert(): a Buffer goes to the worker and its conversion comes back; decode undoes encode', async () => {
    const codec = await create();
    const input = Buffer.concat([randomBytes(256 * 1024), Buffer.from('legacy bytes \u0000\u00ff')]);
    const encoded = await codec.convert(input);
    expect(Buffer.isBuffer(encoded)).to.equal(true);
    expect(encoded.length).to.equal(input.length);
    expect(encoded.equals(input)).to.equal(false);
    expect(encoded.equals(localConvert(input)), 'the worker computes what the addon computes here').to.equal(true);
    const decoded = await codec.convert(encoded, 'decode');
    expect(Buffer.isBuffer(decoded)).to.equal(true);
    expect(decoded.equals(input)).to.equal(true);
  });

  it("parse('POISON'): the worker dies of a real SIGSEGV, the call rejects with WorkerCrashedError, the next call runs on a new pid with fresh global state", async () => {
    const codec = await create();
    expect(await codec.parse('a=1;b=two;flag')).to.deep.equal({ a: '1', b: 'two', flag: true });
    expect(await codec.appendRecord('first')).to.equal(1);
    expect(await codec.appendRecord('second')).to.equal(2);
    expect(await codec.records()).to.equal('first\nsecond\n');
    const pid = await codec.pid();

    const error = await rejectionOf(codec.parse('POISON'));
    expect(error).to.be.an.instanceOf(WorkerCrashedError);
    expect(error).to.include({ pid, signal: 'SIGSEGV', exitCode: null, method: 'parse' });
    await waitFor(() => !isAlive(pid), `worker ${pid} to be gone`);

    expect(await codec.parse('k=v')).to.deep.equal({ k: 'v' });
    const next = await codec.pid();
    expect(next).to.not.equal(pid);
    expect(isAlive(process.pid)).to.equal(true);
    // The static buffer and counter died with the process that held them.
    expect(await codec.counter()).to.equal(0);
    expect(await codec.records()).to.equal('');
  });

  it("leakFds(50): the worker's open file descriptors grow by 50, and stay", async () => {
    const codec = await create();
    const pid = await codec.pid();
    const before = openFds(pid);
    expect(await codec.leakFds(50)).to.equal(50);
    const after = openFds(pid);
    expect(after - before, `fds of ${pid}: ${before} -> ${after}`).to.be.at.least(50);
    await codec.counter(); // another call: nothing gave them back
    expect(openFds(pid)).to.be.at.least(before + 50);
  });

  it("leakMemory(64): the worker's RSS grows by at least ~60 MiB", async () => {
    const codec = await create();
    const pid = await codec.pid();
    const before = rssOf(pid);
    const ownBefore = rssOf(process.pid);
    expect(await codec.leakMemory(64)).to.equal(64);
    const after = rssOf(pid);
    expect(after - before, `RSS of ${pid}: ${(before / MiB).toFixed(1)} -> ${(after / MiB).toFixed(1)} MiB`).to.be.at.least(60 * MiB);
    expect(rssOf(process.pid) - ownBefore, 'the host did not grow by the leak').to.be.below(32 * MiB);
  });

  it('blockingSleep() longer than methodCallTimeoutMs: rejects with CallTimeoutError without waiting for the sleep, and the worker is replaced', async () => {
    const codec = await create({ methodCallTimeoutMs: 2000 });
    const pid = await codec.pid();
    // The sleep is far longer than this test's own mocha timeout: had the host waited for it, the
    // test would fail by timing out. No bound on the time it took is asserted.
    const error = await rejectionOf(codec.blockingSleep(120_000));
    expect(error).to.be.an.instanceOf(CallTimeoutError);
    expect(error).to.include({ method: 'blockingSleep', timeoutMs: 2000, pid });
    await waitFor(() => !isAlive(pid), `worker ${pid} to be killed`);

    const next = await codec.pid();
    expect(next).to.not.equal(pid);
    expect(await codec.blockingSleep(20)).to.equal(20);
  });

  describe('the non-reentrant section', function () {
    it('in one process, two threads inside it at once are detected (the defect is real)', async () => {
      // Two worker_threads of this process load the addon: they share its statics. A shared
      // barrier makes them enter the probe together.
      const source = `
        const { workerData } = require('node:worker_threads');
        const { createRequire } = require('node:module');
        const addon = createRequire(workerData.from)(workerData.addon);
        const barrier = new Int32Array(workerData.barrier);
        Atomics.add(barrier, 0, 1);
        Atomics.notify(barrier, 0);
        while (Atomics.load(barrier, 0) < 2) Atomics.wait(barrier, 0, 1, 50);
        require('node:worker_threads').parentPort.postMessage(addon.reentrancyProbe(400));
      `;
      const barrier = new SharedArrayBuffer(4);
      const workerData = {
        from: import.meta.url,
        addon: fileURLToPath(new URL('../samples/legacy-addon/build/Release/legacy_addon.node', import.meta.url)),
        barrier,
      };
      const run = () =>
        new Promise((resolve, reject) => {
          const thread = new Worker(source, { eval: true, workerData });
          let result;
          thread.once('message', (message) => (result = message));
          thread.once('error', reject);
          thread.once('exit', () => resolve(result));
        });
      const results = await Promise.all([run(), run()]);
      expect(results.map((r) => r.concurrent)).to.deep.equal([true, true]);
    });

    it('through ProcessProxy, two concurrent calls run in two processes and never meet', async () => {
      const codec = await create({ minPoolSize: 2, maxPoolSize: 2 });
      const pool = ProcessProxy.poolOf(codec);
      const calls = [codec.reentrancyProbe(400), codec.reentrancyProbe(400)];
      // Both handed out at once, one to each process: they run at the same time.
      const busy = pool.stats().workers.filter((w) => w.state === 'busy');
      expect(busy.map((w) => w.calls), 'both workers busy with their first call').to.deep.equal([0, 0]);
      const results = await Promise.all(calls);
      // Each was the first and only entry into its own process's section (entries: 1 each, so not
      // one process twice).
      expect(results).to.deep.equal([
        { concurrent: false, depth: 1, entries: 1 },
        { concurrent: false, depth: 1, entries: 1 },
      ]);
    });
  });
});

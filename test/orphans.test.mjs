// No orphans, ever: whatever way a worker or its host ends, the worker's descendants end with it.
// Checked through /proc on real processes. A child node process plays the host
// (fixtures/orphan-host.mjs); it inherits the run's marker, so the root hook sees all it starts.
import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { constants, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';
import { CallTimeoutError, PoolDisposedError, ProcessProxy } from '@process-sandbox/core';
import { createProxy, disposeProxies, fixture, nextEvent, rejectionOf } from './support/pools.mjs';
import { isAlive, poll, waitFor, waitForExit } from './support/processes.mjs';

const spawner = { workerModule: fixture('spawner.mjs'), workerExport: 'Spawner' };
const hostScript = fileURLToPath(fixture('orphan-host.mjs'));

/** Fields of /proc/<pid>/stat after the command name: [state, ppid, pgrp, session, …, utime at 11, stime at 12]. */
function statOf(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
}
const cpuTicks = (pid) => Number(statOf(pid)[11]) + Number(statOf(pid)[12]);

/**
 * Polls until every pid is gone; resolves with the time it took (reported, not asserted: it depends
 * on the machine's load), or rejects naming survivors after a generous deadline.
 */
async function goneWithin(pids, deadlineMs = 10_000, since = performance.now()) {
  const gone = await poll(() => pids.every((p) => !isAlive(p)), { timeoutMs: deadlineMs, intervalMs: 5 });
  const elapsed = performance.now() - since;
  if (!gone) throw new Error(`still alive after ${Math.round(elapsed)} ms: ${pids.filter(isAlive).join(', ')}`);
  return elapsed;
}

/** SIGKILL to each recorded pid and its group, for the clean-up of a test that expects survivors. */
function killRecorded(pids) {
  for (const pid of pids) {
    for (const target of [-pid, pid]) {
      try {
        process.kill(target, 'SIGKILL');
      } catch {}
    }
  }
}

const hosts = [];
const scratchDirs = [];

/** Starts the fixture host in `mode`; `parentGuard: false` turns the workers' parent watchdog off. */
function startHost(mode, { parentGuard = true } = {}) {
  const scratch = mkdtempSync(join(tmpdir(), 'ps-orphans-'));
  scratchDirs.push(scratch);
  const env = { ...process.env };
  if (!parentGuard) env.PARENT_GUARD = '0';
  const child = spawn(process.execPath, [hostScript, mode, scratch], { stdio: ['pipe', 'pipe', 'pipe'], env });
  hosts.push(child);
  let stderr = '';
  child.stderr.on('data', (chunk) => (stderr += chunk));
  const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  const lines = [];
  const waiters = [];
  createInterface({ input: child.stdout }).on('line', (line) => {
    const waiter = waiters.shift();
    if (waiter) waiter(JSON.parse(line));
    else lines.push(JSON.parse(line));
  });
  /** The host's next JSON line; rejects with its stderr if it exits first. */
  const next = () =>
    lines.length > 0
      ? Promise.resolve(lines.shift())
      : Promise.race([
          new Promise((resolve) => waiters.push(resolve)),
          exited.then(({ code, signal }) => {
            throw new Error(`the host exited (${signal ?? code}) before reporting:\n${stderr}`);
          }),
        ]);
  return { child, next, exited };
}

describe('no orphans', function () {
  before(function () {
    // POSIX-specific: process groups, POSIX signals, the parent watchdog and /proc; the Windows counterpart (Job Objects) is test/windows.test.mjs.
    if (process.platform === 'win32') this.skip();
  });
  afterEach(async function () {
    await disposeProxies();
    for (const host of hosts.splice(0)) if (host.exitCode === null && host.signalCode === null) host.kill('SIGKILL');
    for (const dir of scratchDirs.splice(0)) rmSync(dir, { recursive: true, force: true });
  });

  describe('a host killed by SIGKILL', function () {
    it('takes its idle, spinning and Atomics.wait-blocked workers and their grandchildren along', async () => {
      const host = startHost('three');
      const { host: hostPid, workers, grandchildren } = await host.next();
      const [idle, busy, blocked] = workers;
      const all = [...workers, ...grandchildren];
      expect(all.every(isAlive)).to.equal(true);
      // Each worker leads its own process group; the escapee (last) left its worker's group.
      for (const pid of workers) expect(Number(statOf(pid)[2])).to.equal(pid);
      for (const [i, pid] of grandchildren.slice(0, 3).entries()) expect(Number(statOf(pid)[2])).to.equal(workers[i]);
      const escapee = grandchildren[3];
      expect(Number(statOf(escapee)[1])).to.equal(idle);
      expect(Number(statOf(escapee)[2])).to.equal(escapee);
      // The busy one really spins; the blocked one sleeps in Atomics.wait with its call unanswered.
      const before = cpuTicks(busy);
      await waitFor(() => cpuTicks(busy) > before + 5, 'the busy worker to use CPU');
      expect(statOf(blocked)[0]).to.equal('S');

      const killedAt = performance.now();
      process.kill(hostPid, 'SIGKILL');
      const elapsed = await goneWithin(all, 10_000, killedAt);
      expect((await host.exited).signal).to.equal('SIGKILL');
      console.log(`      (all ${all.length} processes gone ${Math.round(elapsed)} ms after the host's SIGKILL)`);
    });

    it('takes a worker blocked while loading its implementation (its watchdog thread perhaps still starting) and its grandchildren along', async () => {
      // The worker loads the implementation without waiting for its watchdog thread: until the
      // thread runs, the handled PR_SET_PDEATHSIG=SIGTERM cannot reach a blocked main thread, and
      // the thread's first look at its parent must end everything.
      const host = startHost('loading');
      const { host: hostPid, workers, grandchildren } = await host.next();
      const all = [...workers, ...grandchildren];
      expect(all.every(isAlive)).to.equal(true);
      expect(Number(statOf(grandchildren[0])[2]), 'the first grandchild is in the worker group').to.equal(workers[0]);
      expect(Number(statOf(grandchildren[1])[2]), 'the second left it').to.equal(grandchildren[1]);
      const killedAt = performance.now();
      process.kill(hostPid, 'SIGKILL');
      const elapsed = await goneWithin(all, 10_000, killedAt);
      expect((await host.exited).signal).to.equal('SIGKILL');
      console.log(`      (all ${all.length} processes gone ${Math.round(elapsed)} ms after the host's SIGKILL)`);
    });

    it('control: without the parent watchdog, the same SIGKILL leaves a blocked worker and its grandchild running', async () => {
      const host = startHost('wait', { parentGuard: false });
      const { host: hostPid, workers, grandchildren } = await host.next();
      // The stuck worker (blocked in Atomics.wait) and its grandchild: nothing but the guard can end them.
      const all = [workers[1], grandchildren[1]];
      process.kill(hostPid, 'SIGKILL');
      await host.exited;
      try {
        // A bounded wait for something that must not happen: they stay alive, orphaned.
        const gone = await poll(() => all.every((p) => !isAlive(p)), { timeoutMs: 1000, intervalMs: 20 });
        expect(gone).to.equal(false);
        expect(all.every(isAlive)).to.equal(true);
      } finally {
        killRecorded([...workers, ...grandchildren]);
        await waitForExit([...workers, ...grandchildren]);
      }
    });
  });

  it('Linux with koffi: PR_SET_PDEATHSIG is SIGTERM, handled, once the watchdog runs (a SIGKILL would beat it to the group)', async function () {
    const proxy = await createProxy({ ...spawner, maxPoolSize: 1 });
    const signal = await proxy.deathSignal();
    if (signal === null) this.skip(); // koffi cannot load here: the watchdog alone guards
    expect(signal).to.equal(constants.signals.SIGTERM);
    // And the worker handles it: a SIGTERM ends the worker's whole group, not the worker alone.
    const family = [await proxy.pid(), await proxy.spawnChild(), await proxy.spawnEscapee()];
    process.kill(family[0], 'SIGTERM');
    await goneWithin(family);
  });

  describe('the host exits', function () {
    // The parent watchdog is off in these, and one worker of each host is stuck in Atomics.wait
    // (it cannot notice anything): the host's own guards must end it alone.
    it('with process.exit(0) and no dispose: no worker nor grandchild is left', async () => {
      const host = startHost('exit', { parentGuard: false });
      const { workers, grandchildren } = await host.next();
      expect(await host.exited).to.deep.equal({ code: 0, signal: null });
      await goneWithin([...workers, ...grandchildren]);
    });

    for (const signal of ['SIGTERM', 'SIGINT']) {
      it(`by ${signal} with no handler of its own: it still dies by ${signal}, and takes its workers along`, async () => {
        const host = startHost('wait', { parentGuard: false });
        const { host: hostPid, workers, grandchildren } = await host.next();
        process.kill(hostPid, signal);
        expect(await host.exited).to.deep.equal({ code: null, signal });
        await goneWithin([...workers, ...grandchildren]);
      });
    }

    it('an application with its own SIGTERM handler keeps control: the pool still serves, and exit still cleans up', async () => {
      const host = startHost('own-handler', { parentGuard: false });
      const { host: hostPid, workers, grandchildren } = await host.next();
      process.kill(hostPid, 'SIGTERM');
      // Its handler ran, and called the worker after the signal.
      expect(await host.next()).to.deep.equal({ event: 'handled', served: workers[0] });
      expect([hostPid, ...workers, ...grandchildren].every(isAlive)).to.equal(true);
      host.child.stdin.write('exit\n');
      expect(await host.exited).to.deep.equal({ code: 0, signal: null });
      await goneWithin([...workers, ...grandchildren]);
    });
  });

  describe('a worker the pool ends', function () {
    it('a timeout kill takes its grandchildren, in its group or not', async () => {
      const proxy = await createProxy({ ...spawner, maxPoolSize: 1, methodCallTimeoutMs: 2000 });
      const worker = await proxy.pid();
      const family = [worker, await proxy.spawnChild(), await proxy.spawnEscapee()];
      expect(await rejectionOf(proxy.spin())).to.be.an.instanceOf(CallTimeoutError);
      await goneWithin(family);
    });

    it('dispose of an idle worker (a graceful shutdown) takes its grandchildren, in its group or not', async () => {
      const proxy = await createProxy({ ...spawner, maxPoolSize: 1 });
      const family = [await proxy.pid(), await proxy.spawnChild(), await proxy.spawnEscapee()];
      await ProcessProxy.poolOf(proxy).dispose();
      await goneWithin(family);
    });

    it('dispose of a blocked worker (killed when shutdownGraceMs runs out) takes its grandchildren', async () => {
      const proxy = await createProxy({ ...spawner, maxPoolSize: 1, shutdownGraceMs: 200 });
      const family = [await proxy.pid(), await proxy.spawnChild(), await proxy.spawnEscapee()];
      const blocked = proxy.block();
      await waitFor(() => ProcessProxy.poolOf(proxy).stats().totals.inFlight === 1, 'the blocking call to run');
      await ProcessProxy.poolOf(proxy).dispose();
      expect(await rejectionOf(blocked)).to.be.an.instanceOf(PoolDisposedError);
      await goneWithin(family);
    });

    it('a recycled worker takes its grandchildren, and the next call runs on a new one', async () => {
      const proxy = await createProxy({ ...spawner, maxPoolSize: 1, processRecycleThreshold: 3 });
      const pool = ProcessProxy.poolOf(proxy);
      const worker = await proxy.pid();
      const family = [worker, await proxy.spawnChild()];
      const recycled = nextEvent(pool, 'workerRecycled');
      family.push(await proxy.spawnEscapee()); // the third call: the worker retires after it
      expect(await recycled).to.include({ pid: worker });
      await goneWithin(family);
      expect(await proxy.pid()).to.not.equal(worker);
    });
  });
});

// The `cgroup` option for real, on whichever cgroup version this machine offers (v1 hierarchies or
// v2): per-worker cgroups with the limits written, the kernel OOM killer at the memory limit
// reported as ResourceLimitError, the cgroup removed on every ending, stale ones swept at start.
// Needs root (or a writable hierarchy); skipped with the reason otherwise.
import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CallTimeoutError, ConfigurationError, ProcessProxy, RemoteError, ResourceLimitError, WorkerCrashedError } from '@process-sandbox/core';
import { cgroupDirsOf, readCgroupFile, removeOwnWorkerCgroups, waitUntilRemoved } from './support/cgroups.mjs';
import { createProxy, disposeProxies, fixture, nextEvent, rejectionOf } from './support/pools.mjs';
import { isAlive, skipBecause, waitFor, waitForExit } from './support/processes.mjs';

const spawner = { workerModule: fixture('spawner.mjs'), workerExport: 'Spawner' };
const leaky = { workerModule: fixture('leaky.mjs'), workerExport: 'Leaky' };
const MiB = 1024 * 1024;

/** The worker's own per-worker cgroup directories, by controller (v2: one, under 'v2'). */
function workerCgroups(pid) {
  return Object.fromEntries(Object.entries(cgroupDirsOf(pid)).filter(([, dir]) => dir.includes(`/process-sandbox-${process.pid}-`)));
}

/** The memory limit file's value in the worker's cgroup, whichever the version. */
function memoryLimit(dirs) {
  return dirs.memory ? Number(readCgroupFile(dirs.memory, 'memory.limit_in_bytes')) : Number(readCgroupFile(dirs.v2, 'memory.max'));
}

describe('cgroup option (real cgroups)', function () {
  this.timeout(30_000);
  let usable;

  before(async function () {
    if (process.getuid?.() !== 0) skipBecause(this, 'not root: no cgroup hierarchy is writable here');
    // Whether this machine can make a memory+cpu+pids cgroup at all; if not, the reason is the test's.
    try {
      const proxy = await ProcessProxy.create({ ...spawner, minPoolSize: 0, cgroup: { memoryMax: '256M', cpuMax: 0.5, pidsMax: 100 } });
      await ProcessProxy.poolOf(proxy).dispose();
      usable = true;
    } catch (error) {
      if (!(error instanceof ConfigurationError)) throw error;
      skipBecause(this, `no writable cgroup hierarchy with memory, cpu and pids: ${error.message}`);
    }
  });

  afterEach(async () => {
    await disposeProxies();
    await removeOwnWorkerCgroups();
  });

  it('each worker gets its own cgroup with the memory, cpu and pids limits written, its pid in cgroup.procs', async () => {
    expect(usable).to.equal(true);
    const proxy = await createProxy({ ...spawner, maxPoolSize: 1, cgroup: { memoryMax: '256M', cpuMax: 0.5, pidsMax: 100 } });
    const pid = await proxy.pid();
    const dirs = workerCgroups(pid);
    const all = Object.values(dirs);
    expect(all).to.not.be.empty;
    for (const dir of new Set(all)) {
      expect(dir).to.match(new RegExp(`/process-sandbox-${process.pid}-\\d+$`));
      expect(readCgroupFile(dir, 'cgroup.procs').split('\n').map(Number)).to.include(pid);
    }
    expect(memoryLimit(dirs)).to.equal(256 * MiB);
    if (dirs.cpu) {
      expect(readCgroupFile(dirs.cpu, 'cpu.cfs_quota_us')).to.equal('50000');
      expect(readCgroupFile(dirs.cpu, 'cpu.cfs_period_us')).to.equal('100000');
      // The quota is accounted: the CFS bandwidth counters exist for this cgroup.
      expect(readCgroupFile(dirs.cpu, 'cpu.stat')).to.match(/^nr_periods \d+/m);
    } else {
      expect(readCgroupFile(dirs.v2, 'cpu.max')).to.equal('50000 100000');
    }
    expect(readCgroupFile(dirs.pids ?? dirs.v2, 'pids.max')).to.equal('100');
    await ProcessProxy.poolOf(proxy).dispose();
    await waitUntilRemoved(all);
  });

  it('a worker past a 200 MiB memory limit is OOM-killed by the kernel at the limit: ResourceLimitError hardMemory, and the pool carries on', async () => {
    const proxy = await createProxy({ ...leaky, maxPoolSize: 1, cgroup: { memoryMax: '200M' } });
    const pid = await proxy.pid();
    const dirs = workerCgroups(pid);
    expect(memoryLimit(dirs)).to.equal(200 * MiB);
    const error = await rejectionOf(proxy.allocateForever());
    expect(error).to.be.an.instanceOf(ResourceLimitError);
    expect(error).to.include({ limit: 'hardMemory', pid, method: 'allocateForever' });
    expect(error.message).to.include('OOM killer');
    expect(isAlive(pid)).to.equal(false);
    await waitUntilRemoved(Object.values(dirs));
    const next = await proxy.pid();
    expect(next).to.not.equal(pid);
    expect(memoryLimit(workerCgroups(next))).to.equal(200 * MiB);
  });

  it('pidsMax holds: past it the worker cannot start another process (EAGAIN, a RemoteError), and lives on', async () => {
    // A worker is about a dozen tasks (its threads count): 40 leaves room for some children, not 60.
    const proxy = await createProxy({ ...spawner, maxPoolSize: 1, cgroup: { pidsMax: 40 } });
    const pid = await proxy.pid();
    const error = await rejectionOf(proxy.spawnMany(60));
    expect(error).to.be.an.instanceOf(RemoteError);
    expect(error.code).to.equal('EAGAIN');
    expect(await proxy.pid()).to.equal(pid);
  });

  it('hardMemoryLimitMB becomes the cgroup memory limit when cgroup.memoryMax is not given', async () => {
    const proxy = await createProxy({ ...leaky, maxPoolSize: 1, hardMemoryLimitMB: 300, cgroup: {} });
    expect(memoryLimit(workerCgroups(await proxy.pid()))).to.equal(300 * MiB);
  });

  describe('the cgroup is removed on every ending', function () {
    const cases = {
      dispose: async (proxy) => ProcessProxy.poolOf(proxy).dispose(),
      crash: async (proxy) => expect(await rejectionOf(proxy.crash())).to.be.an.instanceOf(WorkerCrashedError),
      timeout: async (proxy) => expect(await rejectionOf(proxy.spin())).to.be.an.instanceOf(CallTimeoutError),
      recycle: async (proxy) => {
        const recycled = nextEvent(ProcessProxy.poolOf(proxy), 'workerRecycled');
        await proxy.pid(); // the second call: the worker retires after it
        await recycled;
      },
    };
    for (const [ending, end] of Object.entries(cases)) {
      it(ending, async () => {
        const proxy = await createProxy({ ...spawner, maxPoolSize: 1, methodCallTimeoutMs: 1000, processRecycleThreshold: 2, cgroup: { memoryMax: '512M' } });
        const pid = await proxy.pid();
        const dirs = Object.values(workerCgroups(pid));
        expect(dirs).to.not.be.empty;
        await end(proxy);
        await waitForExit([pid]);
        await waitUntilRemoved(dirs);
      });
    }
  });

  it('at start, per-worker cgroups of a host that is dead are swept, with whatever still runs in them', async () => {
    // A host pid that is certainly dead: a process that has exited.
    const gone = spawn('true');
    const deadPid = gone.pid;
    await new Promise((resolve) => gone.once('exit', resolve));
    const proxy = await createProxy({ ...spawner, maxPoolSize: 1, cgroup: { memoryMax: '256M' } });
    const parent = join(workerCgroups(await proxy.pid()).memory ?? workerCgroups(await proxy.pid()).v2, '..');
    await ProcessProxy.poolOf(proxy).dispose();
    const stale = join(parent, `process-sandbox-${deadPid}-1`);
    mkdirSync(stale);
    const survivor = spawn('sleep', ['600'], { stdio: 'ignore' });
    try {
      writeFileSync(join(stale, 'cgroup.procs'), String(survivor.pid));
      await createProxy({ ...spawner, maxPoolSize: 1, cgroup: { memoryMax: '256M' } });
      await waitUntilRemoved(stale);
      await waitFor(() => !isAlive(survivor.pid), `the swept process ${survivor.pid} to end`, { timeoutMs: 5000 });
    } finally {
      survivor.kill('SIGKILL');
      await removeOwnWorkerCgroups(deadPid);
    }
  });

  it('a controller the machine cannot provide, or a parent that is not a cgroup v2 directory: ConfigurationError naming it', async () => {
    const error = await rejectionOf(ProcessProxy.create({ ...spawner, cgroup: { memoryMax: '256M', parent: '/tmp' } }));
    expect(error).to.be.an.instanceOf(ConfigurationError);
    expect(error.option).to.equal('cgroup');
    expect(error.message).to.match(/no usable cgroup for the memory controller\(s\): cgroup v2: \/tmp is not a cgroup v2 directory; cgroup v1: /);
    for (const [cgroup, message] of [
      [{ pidsMax: 0 }, /pidsMax must be a whole number/],
      [{ memoryMax: '1K' }, /memoryMax must be a number of bytes/],
      [{ memory: '1G' }, /unknown key 'memory'; known keys are memoryMax, cpuMax, pidsMax, parent/],
    ]) {
      const bad = await rejectionOf(ProcessProxy.create({ ...spawner, cgroup }));
      expect(bad).to.be.an.instanceOf(ConfigurationError);
      expect(bad.message).to.match(message);
    }
  });
});

// Opt-in hard limits on workers (rlimits, V8 heap, cgroup v2) and a custom runtime (execPath,
// execArgv, env, cwd), checked on real worker processes through /proc.
import { expect } from 'chai';
import { mkdtempSync, readFileSync, realpathSync, rmSync, writeFileSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigurationError, ProcessProxy, RemoteError, ResourceLimitError } from '@process-sandbox/core';
import { createProxy, disposeProxies, fixture, rejectionOf } from './support/pools.mjs';
import { TEST_RUN_MARKER, isAlive } from './support/processes.mjs';
import { cgroupDirsOf, waitUntilRemoved } from './support/cgroups.mjs';

const spawner = { workerModule: fixture('spawner.mjs'), workerExport: 'Spawner' };

/** One row of /proc/<pid>/limits as [soft, hard]. */
function rlimit(pid, name) {
  const row = readFileSync(`/proc/${pid}/limits`, 'utf8').split('\n').find((line) => line.startsWith(name));
  if (!row) throw new Error(`no '${name}' in /proc/${pid}/limits`);
  return row.slice(name.length).trim().split(/\s+/).slice(0, 2);
}

describe('limits and runtime', function () {
  before(function () {
    // POSIX-specific: rlimits, cgroups and /proc figures (maxHeapMB on Windows: options validation and the Windows suite).
    if (process.platform === 'win32') this.skip();
  });
  afterEach(disposeProxies);

  describe('OS limits', function () {
    it('maxOpenFiles: 64 makes fs.openSync fail with EMFILE inside the worker, as a RemoteError with that code', async () => {
      const proxy = await createProxy({ ...spawner, maxPoolSize: 1, limits: { maxOpenFiles: 64 } });
      const pid = await proxy.pid();
      expect(rlimit(pid, 'Max open files')).to.deep.equal(['64', '64']);
      expect(await proxy.openFiles(10)).to.equal(10);
      const error = await rejectionOf(proxy.openFiles(100));
      expect(error).to.be.an.instanceOf(RemoteError);
      expect(error.code).to.equal('EMFILE');
      expect(error.remoteName).to.equal('Error');
      expect(error.message).to.include('EMFILE');
      // An ordinary error: the worker lives on.
      expect(await proxy.pid()).to.equal(pid);
    });

    it('maxCpuSeconds: 1 stops a spinning worker, reported as a CPU limit (ResourceLimitError), and the pool replaces it', async () => {
      const proxy = await createProxy({ ...spawner, maxPoolSize: 1, limits: { maxCpuSeconds: 1 }, methodCallTimeoutMs: 20_000 });
      const pool = ProcessProxy.poolOf(proxy);
      const pid = await proxy.pid();
      expect(rlimit(pid, 'Max cpu time')).to.deep.equal(['1', '2']);
      // No bound on the wall time: 1 s of CPU takes longer on a busy machine. A missing limit would
      // end in the 20 s methodCallTimeoutMs instead, with a CallTimeoutError.
      const error = await rejectionOf(proxy.spin());
      expect(error).to.be.an.instanceOf(ResourceLimitError);
      expect(error).to.include({ code: 'ERR_PS_RESOURCE_LIMIT', limit: 'cpu', pid, method: 'spin' });
      expect(error.message).to.match(/CPU time limit of 1 s \(limits\.maxCpuSeconds\) reached; killed by SIGXCPU/);
      expect(isAlive(pid)).to.equal(false);
      expect(await proxy.pid()).to.not.equal(pid);
      expect(pool.stats().workers).to.have.length(1);
    });

    it('maxAddressSpaceMB is RLIMIT_AS; maxHeapMB is --max-old-space-size, and exhausting it is reported as a heap limit', async () => {
      const proxy = await createProxy({ ...spawner, maxPoolSize: 1, limits: { maxAddressSpaceMB: 16384, maxHeapMB: 64 }, methodCallTimeoutMs: 20_000 });
      const pid = await proxy.pid();
      const bytes = String(16384 * 1024 * 1024);
      expect(rlimit(pid, 'Max address space')).to.deep.equal([bytes, bytes]);
      expect(await proxy.execArgv()).to.include('--max-old-space-size=64');
      const error = await rejectionOf(proxy.hoardHeap());
      expect(error).to.be.an.instanceOf(ResourceLimitError);
      expect(error).to.include({ limit: 'heap', pid, method: 'hoardHeap' });
      expect(error.message).to.include('V8 heap limit of 64 MiB (limits.maxHeapMB) reached');
    });

    it('rejects unknown, out-of-range and contradictory limits with a ConfigurationError naming limits', async () => {
      const cases = [
        [{ maxOpenFile: 64 }, /unknown limit 'maxOpenFile'/],
        [{ maxOpenFiles: 8 }, /maxOpenFiles must be a whole number between 32/],
        [{ maxCpuSeconds: 0.5 }, /maxCpuSeconds must be a whole number/],
        ['64', /expected an object/],
      ];
      for (const [limits, message] of cases) {
        const error = await rejectionOf(ProcessProxy.create({ ...spawner, limits }));
        expect(error).to.be.an.instanceOf(ConfigurationError);
        expect(error.option).to.equal('limits');
        expect(error.message).to.match(message);
      }
      const contradiction = await rejectionOf(ProcessProxy.create({ ...spawner, limits: { maxHeapMB: 64 }, execArgv: ['--max-old-space-size=128'] }));
      expect(contradiction).to.be.an.instanceOf(ConfigurationError);
      expect(contradiction.message).to.include('contradict');
    });
  });

  describe('cgroup', function () {
    // The real-cgroup cases (OOM, every ending, sweep) are in cgroups.test.mjs.
    it('gives each worker its own cgroup (v2, or v1 hierarchies) with the limits when one is writable, else a clear ConfigurationError', async () => {
      let proxy;
      try {
        proxy = await createProxy({ ...spawner, maxPoolSize: 1, cgroup: { memoryMax: '256M', cpuMax: 0.5 } });
      } catch (error) {
        // This machine has no writable cgroup with these controllers (e.g. not root).
        expect(error).to.be.an.instanceOf(ConfigurationError);
        expect(error.option).to.equal('cgroup');
        expect(error.message).to.match(/no usable cgroup for the memory, cpu controller\(s\): cgroup v2: .+; cgroup v1: .+\. The cgroup option needs a cgroup directory/);
        return;
      }
      const pid = await proxy.pid();
      const dirs = Object.fromEntries(Object.entries(cgroupDirsOf(pid)).filter(([, d]) => /process-sandbox-\d+-\d+$/.test(d)));
      if (dirs.memory) {
        expect(readFileSync(join(dirs.memory, 'memory.limit_in_bytes'), 'utf8').trim()).to.equal(String(256 * 1024 * 1024));
        expect(readFileSync(join(dirs.cpu, 'cpu.cfs_quota_us'), 'utf8').trim()).to.equal('50000');
      } else {
        expect(readFileSync(join(dirs.v2, 'memory.max'), 'utf8').trim()).to.equal(String(256 * 1024 * 1024));
        expect(readFileSync(join(dirs.v2, 'cpu.max'), 'utf8').trim()).to.equal('50000 100000');
      }
      await ProcessProxy.poolOf(proxy).dispose();
      await waitUntilRemoved(Object.values(dirs));
    });

    it('rejects a malformed cgroup option', async () => {
      const error = await rejectionOf(ProcessProxy.create({ ...spawner, cgroup: { memoryMax: 'lots' } }));
      expect(error).to.be.an.instanceOf(ConfigurationError);
      expect(error.option).to.equal('cgroup');
      expect(error.message).to.include("memoryMax must be a number of bytes");
    });
  });

  describe('custom runtime', function () {
    let scratch;
    before(() => {
      scratch = realpathSync(mkdtempSync(join(tmpdir(), 'ps-runtime-')));
    });
    after(() => rmSync(scratch, { recursive: true, force: true }));

    it('execPath that does not exist, does not run, or is not node: a ConfigurationError before any worker starts', async () => {
      const failing = join(scratch, 'failing');
      writeFileSync(failing, '#!/bin/sh\necho "broken runtime" >&2\nexit 3\n');
      chmodSync(failing, 0o755);
      const notNode = join(scratch, 'not-node');
      writeFileSync(notNode, '#!/bin/sh\necho "hello"\n');
      chmodSync(notNode, 0o755);
      const notExecutable = join(scratch, 'not-executable');
      writeFileSync(notExecutable, 'nothing');
      const cases = [
        [join(scratch, 'missing-node'), /no such file/],
        [failing, /does not run as a Node\.js binary .*exited with code 3 \(broken runtime\)/],
        [notNode, /is not a Node\.js binary: '--version' printed 'hello'/],
        [notExecutable, /does not run as a Node\.js binary .*EACCES/],
      ];
      for (const [execPath, message] of cases) {
        const error = await rejectionOf(ProcessProxy.create({ ...spawner, execPath }));
        expect(error).to.be.an.instanceOf(ConfigurationError);
        expect(error.option).to.equal('execPath');
        expect(error.message).to.match(message);
      }
    });

    it('execPath, execArgv, a replacing env and cwd shape the worker; the library\'s own variables never reach the implementation', async () => {
      const proxy = await createProxy({
        ...spawner,
        maxPoolSize: 1,
        execPath: process.execPath,
        execArgv: ['--no-warnings', '--stack-size=900'],
        // Replaces the environment entirely: nothing of the host's is inherited unless given.
        env: { PATH: process.env.PATH, [TEST_RUN_MARKER]: process.env[TEST_RUN_MARKER], CUSTOM: 'yes' },
        cwd: scratch,
      });
      expect(await proxy.env('CUSTOM')).to.equal('yes');
      expect(await proxy.env('HOME')).to.equal(undefined);
      expect((await proxy.envKeys()).filter((k) => k.startsWith('PROCESS_SANDBOX_') && k !== TEST_RUN_MARKER)).to.deep.equal([]);
      expect(await proxy.cwd()).to.equal(scratch);
      expect(await proxy.execArgv()).to.include.members(['--no-warnings', '--stack-size=900']);
      const pid = await proxy.pid();
      expect(readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0')[0]).to.equal(process.execPath);
    });
  });
});

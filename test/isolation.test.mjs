// Isolation levels and the confinements they bundle (namespaces, read-only mounts, no_new_privs, an
// empty capability bounding set), proved from inside real workers through /proc, and the pool run at
// 'maximum': host pids, sampling, crashes, timeouts, recycling, dispose and a SIGKILLed host, with
// nothing left behind. Most of it needs root (namespaces, CAP_SETPCAP): skipped, saying so, without.
import { expect } from 'chai';
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CallTimeoutError, ConfigurationError, ProcessProxy, ResourceLimitError, WorkerCrashedError } from '@process-sandbox/core';
import { createProxy, disposeProxies, fixture, nextEvent, rejectionOf } from './support/pools.mjs';
import { TEST_RUN_MARKER, isAlive, skipBecause, waitFor, waitForExit } from './support/processes.mjs';

const confined = { workerModule: fixture('confined.mjs'), workerExport: 'Confined', maxPoolSize: 1 };
// 'high' and up start workers with a minimal environment: the marker that finds survivors must pass.
const marked = { envPassthrough: [TEST_RUN_MARKER] };
const capabilityHost = fileURLToPath(fixture('capability-host.mjs'));
const confinedHost = fileURLToPath(fixture('confined-host.mjs'));
const fixturesDir = fileURLToPath(new URL('./fixtures/', import.meta.url));
const isRoot = process.getuid?.() === 0;
const ZERO_CAPS = '0000000000000000';

function status(pid, field) {
  return readFileSync(`/proc/${pid}/status`, 'utf8').split('\n').find((l) => l.startsWith(`${field}:`))?.slice(field.length + 1).trim();
}

/** The process unshare forked (PID namespace): the one that runs node. */
function forkedChildOf(pid) {
  return Number(readFileSync(`/proc/${pid}/task/${pid}/children`, 'latin1').trim().split(' ')[0]);
}

/** Host pids of every live process in the PID namespace of `pid`. */
function pidNamespaceMembers(pid) {
  const ns = readlinkSync(`/proc/${pid}/ns/pid`);
  return readdirSync('/proc').filter((e) => /^\d+$/.test(e)).map(Number).filter((p) => {
    try {
      return readlinkSync(`/proc/${p}/ns/pid`) === ns && isAlive(p);
    } catch {
      return false;
    }
  });
}

function cmdline(pid) {
  return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean).join(' ');
}

/** The pool's only worker: the pid it reports (unshare at 'maximum') and the process running node. */
function workerOf(proxy) {
  const [pid] = ProcessProxy.poolOf(proxy).livePids();
  return { pid, runtime: forkedChildOf(pid) };
}

/** Runs the capability host as `uid` with `options`; resolves with its JSON line. */
function hostAs(uid, options) {
  const result = spawnSync(process.execPath, [capabilityHost, 'create', JSON.stringify(options)], { uid, gid: uid, encoding: 'utf8', timeout: 20_000, env: process.env });
  const line = result.stdout.trim().split('\n').pop();
  if (!line) throw new Error(`capability host printed nothing (status ${result.status}): ${result.stderr}`);
  return JSON.parse(line);
}

async function configurationError(options) {
  const error = await rejectionOf(createProxy({ ...confined, ...options }));
  expect(error).to.be.an.instanceOf(ConfigurationError);
  return error;
}

/** A directory outside /tmp (private in a mount namespace), removed after the test. */
function writableDir() {
  const base = '/var/tmp';
  mkdirSync(base, { recursive: true });
  return mkdtempSync(join(base, 'process-sandbox-writable-'));
}

describe('isolation levels and confinements', function () {
  this.timeout(30_000);
  const scratch = [];
  afterEach(async () => {
    await disposeProxies();
    for (const dir of scratch.splice(0)) rmSync(dir, { recursive: true, force: true });
  });

  describe('options', () => {
    it('refuses an unknown level, naming the known ones', async () => {
      const error = await configurationError({ isolation: 'paranoid' });
      expect(error.option).to.equal('isolation');
      expect(error.message).to.include("'standard', 'high', 'maximum'");
    });

    it('refuses an unknown namespace, pointing to isolateNetwork for the network', async () => {
      const error = await configurationError({ namespaces: { net: true } });
      expect(error.option).to.equal('namespaces.net');
      expect(error.message).to.include('isolateNetwork');
      expect((await configurationError({ namespaces: { pid: 'yes' } })).option).to.equal('namespaces.pid');
    });

    it('refuses writablePaths without a mount namespace, under /tmp, relative or missing', async () => {
      expect((await configurationError({ writablePaths: ['/var/tmp'] })).message).to.include('namespaces: { mount: true }');
      const tmp = await configurationError({ namespaces: { mount: true }, writablePaths: [join(tmpdir(), 'x')] });
      expect(tmp.message).to.include('private');
      expect((await configurationError({ namespaces: { mount: true }, writablePaths: ['var/tmp'] })).message).to.include('not an absolute path');
      expect((await configurationError({ namespaces: { mount: true }, writablePaths: ['/var/tmp/no-such-dir-process-sandbox'] })).message).to.include('must exist');
    });

    it("an error in the user's own option stays theirs under a level", async () => {
      const error = await configurationError({ isolation: 'standard', minPoolSize: -1 });
      expect(error.option).to.equal('minPoolSize');
    });

    it('refuses booleans that are not booleans', async () => {
      expect((await configurationError({ noNewPrivileges: 1 })).option).to.equal('noNewPrivileges');
      expect((await configurationError({ dropCapabilities: 'all' })).option).to.equal('dropCapabilities');
    });
  });

  describe('a host that is not root (uid 65534)', function () {
    before(function () {
      if (!isRoot) skipBecause(this, 'the test process is not root: it cannot start a host as another user');
    });

    it("'high' and 'maximum' are refused, naming the missing privilege: never silently weaker", () => {
      for (const isolation of ['high', 'maximum']) {
        const { error } = hostAs(65534, { isolation, env: process.env });
        expect(error, isolation).to.include({ name: 'ConfigurationError', option: 'isolation' });
        expect(error.message).to.match(/CAP_SYS_ADMIN/);
      }
    });

    it("dropCapabilities is refused naming CAP_SETPCAP; 'standard' runs (no_new_privs only: the workers hold no capability to drop)", () => {
      const { error } = hostAs(65534, { dropCapabilities: true });
      expect(error).to.include({ option: 'dropCapabilities' });
      expect(error.message).to.include('CAP_SETPCAP');
      const standard = hostAs(65534, { isolation: 'standard' });
      expect(standard.ok, JSON.stringify(standard)).to.equal(true);
      expect(standard.identity.uid).to.equal(65534);
    });
  });

  describe('each confinement, seen from inside the worker', function () {
    before(function () {
      if (!isRoot) skipBecause(this, 'not root: namespaces and the capability drop need CAP_SYS_ADMIN and CAP_SETPCAP');
    });

    it('noNewPrivileges: NoNewPrivs is 1; the capabilities of a root worker stay', async () => {
      const proxy = await createProxy({ ...confined, noNewPrivileges: true });
      const inside = await proxy.status(['NoNewPrivs', 'CapEff']);
      expect(inside.NoNewPrivs).to.equal('1');
      expect(inside.CapEff).to.equal(status(process.pid, 'CapEff'));
    });

    it('dropCapabilities: a root worker holds no capability and can get none back', async () => {
      const proxy = await createProxy({ ...confined, dropCapabilities: true });
      const inside = await proxy.status(['CapEff', 'CapPrm', 'CapInh', 'CapBnd', 'CapAmb', 'NoNewPrivs', 'Uid']);
      expect(status(process.pid, 'CapEff')).to.not.equal(ZERO_CAPS);
      expect(inside).to.include({ CapEff: ZERO_CAPS, CapPrm: ZERO_CAPS, CapInh: ZERO_CAPS, CapBnd: ZERO_CAPS, CapAmb: ZERO_CAPS, NoNewPrivs: '0' });
      expect(inside.Uid.split(/\s+/)[0]).to.equal('0');
      expect(await proxy.setHostname('ps-no-caps')).to.match(/^failed/);
    });

    it("'standard': both, and the worker is still the process the pool reports", async () => {
      const proxy = await createProxy({ ...confined, isolation: 'standard' });
      expect(await proxy.status(['CapEff', 'CapBnd', 'NoNewPrivs'])).to.deep.equal({ CapEff: ZERO_CAPS, CapBnd: ZERO_CAPS, NoNewPrivs: '1' });
      expect(ProcessProxy.poolOf(proxy).livePids()).to.deep.equal([await proxy.pid()]);
    });

    it('namespaces.ipc: another IPC namespace than the host', async () => {
      const proxy = await createProxy({ ...confined, namespaces: { ipc: true } });
      expect(await proxy.namespace('ipc')).to.not.equal(readlinkSync('/proc/self/ns/ipc'));
      expect(await proxy.namespace('uts')).to.equal(readlinkSync('/proc/self/ns/uts'));
    });

    it("namespaces.uts: the worker's hostname change does not reach the host", async function () {
      const proxy = await createProxy({ ...confined, namespaces: { uts: true } });
      expect(await proxy.namespace('uts')).to.not.equal(readlinkSync('/proc/self/ns/uts'));
      const before = hostname();
      const changed = await proxy.setHostname('ps-worker-uts');
      if (changed.startsWith('failed')) skipBecause(this, `the hostname tool cannot run here: ${changed}`);
      expect(changed).to.equal('ps-worker-uts');
      expect(hostname()).to.equal(before);
      expect(readFileSync('/proc/sys/kernel/hostname', 'utf8').trim()).to.equal(before);
    });

    it('namespaces.pid: the worker is pid 1 and sees only its own descendants; the pool reports host pids', async () => {
      const proxy = await createProxy({ ...confined, namespaces: { pid: true } });
      expect(await proxy.pid()).to.equal(1);
      expect(await proxy.visiblePids()).to.deep.equal([1]);
      const child = await proxy.child();
      expect(await proxy.visiblePids()).to.have.members([1, child]);
      const { pid, runtime } = workerOf(proxy);
      expect(cmdline(pid)).to.match(/unshare/);
      expect(cmdline(runtime).startsWith(process.execPath)).to.equal(true);
      expect(status(runtime, 'NSpid').split(/\s+/)).to.deep.equal([String(runtime), '1']);
      expect(pidNamespaceMembers(runtime)).to.have.lengthOf(2);
    });

    it('namespaces.pid with hardMemoryLimitMB: the memory watch reads the process that runs node, and kills it mid-call', async () => {
      const proxy = await createProxy({ ...confined, namespaces: { pid: true }, hardMemoryLimitMB: 200 });
      const { pid } = workerOf(proxy);
      const error = await rejectionOf(proxy.hoard());
      expect(error).to.be.an.instanceOf(ResourceLimitError);
      expect(error.limit).to.equal('hardMemory');
      await waitForExit([pid]);
    });

    it('namespaces.mount: everything read-only (EROFS) but writablePaths; /tmp private and empty', async () => {
      const writable = writableDir();
      scratch.push(writable);
      const hostFile = join(tmpdir(), `process-sandbox-host-${process.pid}`);
      writeFileSync(hostFile, 'the host');
      scratch.push(hostFile);
      // Given through a symlink: the mount is made on the real directory, and kept writable there.
      const link = `${writable}-link`;
      symlinkSync(writable, link);
      scratch.push(link);
      const proxy = await createProxy({ ...confined, namespaces: { mount: true }, writablePaths: [link] });
      expect(await proxy.write(join(link, 'via-link'))).to.equal('ok');
      expect(await proxy.write(join(fixturesDir, 'written-by-a-worker'))).to.equal('EROFS');
      expect(await proxy.write('/var/tmp/written-by-a-worker')).to.equal('EROFS');
      expect(await proxy.write(join(writable, 'out'))).to.equal('ok');
      expect(readFileSync(join(writable, 'out'), 'utf8')).to.equal('written by a worker');
      expect(await proxy.read(hostFile)).to.equal('ENOENT');
      expect(await proxy.write('/tmp/worker-only')).to.equal('ok');
      expect(await proxy.read('/tmp/worker-only')).to.equal('written by a worker');
      expect(readdirSync(tmpdir())).to.not.include('worker-only');
    });

    it('namespaces.mount: an implementation that lives under /tmp stays visible (read-only) under the private /tmp', async () => {
      // An application installed under /tmp (a CI checkout, say) vanished under the empty tmpfs before.
      const dir = mkdtempSync('/tmp/process-sandbox-app-');
      scratch.push(dir);
      writeFileSync(join(dir, 'app.mjs'), "import { writeFileSync } from 'node:fs';\nexport class App { where() { return import.meta.url; } write(p) { try { writeFileSync(p, 'x'); return 'ok'; } catch (e) { return e.code; } } }\n");
      const proxy = await createProxy({ workerModule: join(dir, 'app.mjs'), workerExport: 'App', maxPoolSize: 1, namespaces: { mount: true } });
      expect(await proxy.where()).to.equal(`file://${join(dir, 'app.mjs')}`);
      expect(await proxy.write(join(dir, 'written-by-a-worker'))).to.equal('EROFS');
      expect(await proxy.write('/tmp/worker-only')).to.equal('ok');
      expect(readdirSync('/tmp')).to.not.include('worker-only');
    });

    it('another user composes: namespaces and no_new_privs first, as root, then the switch to the user', async () => {
      const proxy = await createProxy({ ...confined, namespaces: { pid: true, mount: true, ipc: true }, noNewPrivileges: true, user: { uid: 65534, gid: 65534 } });
      const inside = await proxy.status(['Uid', 'Gid', 'Groups', 'CapEff', 'NoNewPrivs']);
      expect(inside.Uid.split(/\s+/)).to.deep.equal(['65534', '65534', '65534', '65534']);
      expect(inside.Gid.split(/\s+/)[0]).to.equal('65534');
      expect(inside.Groups).to.equal('');
      expect(inside).to.include({ CapEff: ZERO_CAPS, NoNewPrivs: '1' });
      expect(await proxy.pid()).to.equal(1);
      expect(await proxy.write(join(fixturesDir, 'written-by-a-worker'))).to.be.oneOf(['EROFS', 'EACCES']);
      expect(await proxy.write('/tmp/nobody-was-here')).to.equal('ok');
    });

    it("'high': minimal environment, no network, its own IPC and UTS namespaces, no capability; no PID namespace", async () => {
      const proxy = await createProxy({ ...confined, ...marked, isolation: 'high' });
      const env = await proxy.env();
      expect(Object.keys(env)).to.not.include('HOME');
      expect(env[TEST_RUN_MARKER]).to.equal(process.env[TEST_RUN_MARKER]);
      expect(await proxy.netDevices()).to.deep.equal(['lo']);
      for (const ns of ['ipc', 'uts', 'net']) expect(await proxy.namespace(ns), ns).to.not.equal(readlinkSync(`/proc/self/ns/${ns}`));
      expect(await proxy.namespace('pid')).to.equal(readlinkSync('/proc/self/ns/pid'));
      expect(await proxy.status(['CapEff', 'NoNewPrivs'])).to.deep.equal({ CapEff: ZERO_CAPS, NoNewPrivs: '1' });
    });

    it("'high' with hardMemoryLimitMB: the kernel holds the limit (a cgroup), or the level is refused", async function () {
      let proxy;
      try {
        proxy = await createProxy({ ...confined, ...marked, isolation: 'high', hardMemoryLimitMB: 512 });
      } catch (error) {
        expect(error).to.be.an.instanceOf(ConfigurationError);
        expect(error.option).to.equal('isolation');
        expect(error.message).to.include('cgroup');
        skipBecause(this, `no writable cgroup here: ${error.message}`);
      }
      const cgroups = readFileSync(`/proc/${await proxy.pid()}/cgroup`, 'utf8');
      expect(cgroups).to.include(`process-sandbox-${process.pid}-`);
    });
  });

  describe("the pool at 'maximum'", function () {
    const maximumModel = { ...confined, ...marked, isolation: 'maximum', permissions: { fsRead: ['*'], fsWrite: ['*'], childProcess: true } };
    before(function () {
      if (!isRoot) skipBecause(this, "not root: 'maximum' needs PID and mount namespaces (CAP_SYS_ADMIN)");
    });

    it("by default under Node's permission model: calls work, reading a file is denied", async () => {
      const proxy = await createProxy({ ...confined, ...marked, isolation: 'maximum' });
      expect(await proxy.echo({ a: [1, 'two'] })).to.deep.equal({ a: [1, 'two'] });
      expect(await proxy.read('/etc/hostname')).to.equal('ERR_ACCESS_DENIED');
      expect(await proxy.write('/tmp/x')).to.equal('ERR_ACCESS_DENIED');
    });

    it('with another user: the namespaces and mounts are made as root, then the worker runs as that user', async () => {
      const proxy = await createProxy({ ...maximumModel, user: { uid: 65534, gid: 65534 } });
      const inside = await proxy.status(['Uid', 'CapEff', 'CapBnd', 'NoNewPrivs']);
      expect(inside.Uid.split(/\s+/)[0]).to.equal('65534');
      expect(inside).to.include({ CapEff: ZERO_CAPS, CapBnd: ZERO_CAPS, NoNewPrivs: '1' });
      expect(await proxy.pid()).to.equal(1);
      expect(await proxy.netDevices()).to.deep.equal(['lo']);
      expect(cmdline(workerOf(proxy).pid)).to.match(/unshare/);
    });

    it('every confinement at once, seen from inside', async () => {
      const proxy = await createProxy(maximumModel);
      expect(await proxy.pid()).to.equal(1);
      expect(await proxy.visiblePids()).to.deep.equal([1]);
      expect(await proxy.status(['CapEff', 'CapBnd', 'NoNewPrivs'])).to.deep.equal({ CapEff: ZERO_CAPS, CapBnd: ZERO_CAPS, NoNewPrivs: '1' });
      expect(await proxy.write(join(fixturesDir, 'written-by-a-worker'))).to.equal('EROFS');
      expect(await proxy.netDevices()).to.deep.equal(['lo']);
      for (const ns of ['ipc', 'uts', 'net', 'mnt', 'pid']) expect(await proxy.namespace(ns), ns).to.not.equal(readlinkSync(`/proc/self/ns/${ns}`));
    });

    // The main suites' representative cases, under the permission model (no koffi in the worker) and
    // without it (koffi: subreaper, watchdog thread, PR_SET_PDEATHSIG), as for a native addon.
    const variants = {
      "under Node's permission model": maximumModel,
      'permissions: false (native addons; koffi loads)': { ...maximumModel, permissions: false },
    };
    for (const [name, maximum] of Object.entries(variants)) {
      describe(name, () => {
        it('the pool reports and samples host pids: the reported one leads the group, the sampler reads the process that runs node', async () => {
          const proxy = await createProxy({ ...maximum, healthIntervalMs: 100 });
          const pool = ProcessProxy.poolOf(proxy);
          await proxy.echo(1);
          const { pid, runtime } = workerOf(proxy);
          expect(isAlive(pid)).to.equal(true);
          expect(Number(readFileSync(`/proc/${runtime}/stat`, 'utf8').split(') ')[1].split(' ')[2])).to.equal(pid); // pgid
          const rssOf = (p) => Number(readFileSync(`/proc/${p}/statm`, 'latin1').split(' ')[1]) * 4096;
          await waitFor(() => pool.stats().workers[0]?.rssBytes > 0, 'a health sample of the worker');
          const sampled = pool.stats().workers[0].rssBytes;
          // node's resident set, not unshare's (a few hundred KiB).
          expect(sampled).to.be.above(rssOf(pid) * 4);
          expect(sampled).to.be.above(rssOf(runtime) / 2).and.below(rssOf(runtime) * 2);
        });

        it('with limits: the rlimits hold inside the namespace', async () => {
          const proxy = await createProxy({ ...maximum, limits: { maxOpenFiles: 200 } });
          const line = (await proxy.read('/proc/self/limits')).split('\n').find((l) => l.startsWith('Max open files'));
          expect(line.split(/\s{2,}/).slice(1, 3)).to.deep.equal(['200', '200']);
          expect(await proxy.pid()).to.equal(1);
        });

        it('with a cgroup: the process unshare forks is born in the worker cgroup (the fork waits for the placement)', async function () {
          let proxy;
          try {
            proxy = await createProxy({ ...maximum, cgroup: { pidsMax: 64 } });
          } catch (error) {
            if (!/cgroup/.test(error.message)) throw error;
            skipBecause(this, `no writable cgroup here: ${error.message}`);
          }
          await proxy.daemon();
          const { pid, runtime } = workerOf(proxy);
          const own = (p) => readFileSync(`/proc/${p}/cgroup`, 'utf8').split('\n').filter((l) => l.includes(`process-sandbox-${process.pid}-`)).sort();
          expect(own(pid)).to.not.be.empty;
          for (const member of pidNamespaceMembers(runtime)) expect(own(member), cmdline(member)).to.deep.equal(own(pid));
        });

        it('a crash is a WorkerCrashedError, and everything in the namespace dies with the worker, daemon included', async () => {
          const writable = writableDir();
          scratch.push(writable);
          const proxy = await createProxy({ ...maximum, writablePaths: [writable] });
          await proxy.daemon();
          await proxy.child();
          const { pid, runtime } = workerOf(proxy);
          const members = pidNamespaceMembers(runtime);
          expect(members.map(cmdline).join('\n')).to.include('sleep 601').and.include('sleep 602');
          const error = await rejectionOf(proxy.crash());
          expect(error).to.be.an.instanceOf(WorkerCrashedError);
          expect(error.pid).to.equal(pid);
          await waitForExit([pid, ...members]);
          expect(await proxy.pid()).to.equal(1);
          await waitFor(() => !ProcessProxy.poolOf(proxy).livePids().includes(pid), 'the pool to learn of the crashed worker\'s exit');
        });

        it('a call over methodCallTimeoutMs: CallTimeoutError, the worker and its namespace killed', async () => {
          const proxy = await createProxy({ ...maximum, methodCallTimeoutMs: 500 });
          await proxy.daemon();
          const { pid, runtime } = workerOf(proxy);
          const members = pidNamespaceMembers(runtime);
          expect(await rejectionOf(proxy.spin())).to.be.an.instanceOf(CallTimeoutError);
          await waitForExit([pid, ...members]);
        });

        it('recycling (processRecycleThreshold): the retired worker and its namespace end; the next call runs on a new one', async () => {
          const proxy = await createProxy({ ...maximum, processRecycleThreshold: 2 });
          const pool = ProcessProxy.poolOf(proxy);
          const recycled = nextEvent(pool, 'workerRecycled');
          await proxy.daemon();
          const { pid, runtime } = workerOf(proxy);
          const members = pidNamespaceMembers(runtime);
          await proxy.echo(2);
          expect(await recycled).to.include({ pid });
          await waitForExit([pid, ...members]);
          expect(await proxy.echo(3)).to.equal(3);
          // The pool learns of the exit from its 'exit' event, a moment after /proc does.
          await waitFor(() => !pool.livePids().includes(pid), 'the pool to learn of the retired worker\'s exit');
          expect(pool.livePids()).to.have.lengthOf.at.least(1);
        });

        it('dispose of a blocked worker (shutdownGraceMs runs out): no process is left', async () => {
          const proxy = await createProxy({ ...maximum, shutdownGraceMs: 200 });
          await proxy.daemon();
          const { pid, runtime } = workerOf(proxy);
          const members = pidNamespaceMembers(runtime);
          const blocked = proxy.block();
          await waitFor(() => ProcessProxy.poolOf(proxy).stats().totals.inFlight === 1, 'the blocking call to run');
          await ProcessProxy.poolOf(proxy).dispose();
          await rejectionOf(blocked);
          await waitForExit([pid, ...members]);
        });
      });
    }

    for (const variant of ['model', 'native']) {
      const how = variant === 'model' ? "under Node's permission model" : 'permissions: false (koffi loads: watchdog thread and PR_SET_PDEATHSIG in the worker)';
      it(`a host killed by SIGKILL (${how}): its blocked worker, unshare and the daemon all die`, async () => {
        const writable = writableDir();
        scratch.push(writable);
        const host = spawn(process.execPath, [confinedHost, writable, variant], { stdio: ['ignore', 'pipe', 'pipe'] });
        let out = '';
        let err = '';
        host.stdout.on('data', (d) => (out += d));
        host.stderr.on('data', (d) => (err += d));
        const exited = new Promise((resolve) => host.once('exit', resolve));
        try {
          await waitFor(() => out.includes('\n') || host.exitCode !== null, 'the confined host to report its pids', { timeoutMs: 20_000 });
          if (!out.includes('\n')) throw new Error(`the host printed nothing: ${err}`);
          const { worker } = JSON.parse(out);
          const members = pidNamespaceMembers(forkedChildOf(worker));
          expect(members.map(cmdline).join('\n')).to.include('sleep 601');
          process.kill(host.pid, 'SIGKILL');
          await exited;
          await waitForExit([worker, ...members]);
        } finally {
          if (isAlive(host.pid)) process.kill(host.pid, 'SIGKILL');
        }
      });
    }
  });
});

// Capabilities of JavaScript plugins: Node's permission model (`permissions`), a minimal environment
// (`env: 'minimal'`, `envPassthrough`), another user (`user`) and no network (`isolateNetwork`).
// Checked on real workers: what the plugin can and cannot reach, through /proc what the process is.
// The tests run as root here (user and isolateNetwork need it); the unprivileged cases run a host
// process as uid 65534 (fixtures/capability-host.mjs).
import { expect } from 'chai';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync, writeFileSync, chmodSync } from 'node:fs';
import { createServer, connect } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ConfigurationError, ProcessProxy, RemoteError } from '@process-sandbox/core';
import { createProxy, disposeProxies, fixture, rejectionOf } from './support/pools.mjs';
import { TEST_RUN_MARKER, isAlive, markedProcesses, waitFor } from './support/processes.mjs';

const capabilities = { workerModule: fixture('capabilities.mjs'), workerExport: 'Capabilities', maxPoolSize: 1 };
const fixturesDir = fileURLToPath(new URL('./fixtures/', import.meta.url));
const hostScript = fileURLToPath(fixture('capability-host.mjs'));
const isRoot = process.getuid?.() === 0;
const NOBODY = 65534;

function cmdline(pid) {
  return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean);
}
function environ(pid) {
  return readFileSync(`/proc/${pid}/environ`, 'latin1').split('\0').filter(Boolean);
}
function status(pid, field) {
  return readFileSync(`/proc/${pid}/status`, 'utf8').split('\n').find((l) => l.startsWith(`${field}:`))?.slice(field.length + 1).trim();
}

/** Runs the capability host as `uid` with `options`; resolves with its JSON line. */
function hostAs(uid, options) {
  const result = spawnSync(process.execPath, [hostScript, 'create', JSON.stringify(options)], { uid, gid: uid, encoding: 'utf8', timeout: 20_000, env: process.env });
  const line = result.stdout.trim().split('\n').pop();
  if (!line) throw new Error(`capability host printed nothing (status ${result.status}): ${result.stderr}`);
  return JSON.parse(line);
}

async function tcpServer() {
  const server = createServer((socket) => {
    socket.on('error', () => {});
    socket.end('hello');
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return server;
}

describe('capabilities of JavaScript plugins', function () {
  before(function () {
    // POSIX-specific: the Node permission model with setpriv/prlimit, uid switching, network namespaces, /proc and /bin/sh fixtures.
    if (process.platform === 'win32') this.skip();
  });
  this.timeout(30_000);
  afterEach(disposeProxies);

  describe('permissions (Node permission model)', function () {
    it('by default the plugin may read nothing but itself, write nothing, spawn nothing, start no thread; the worker host still runs and serves', async () => {
      const proxy = await createProxy({ ...capabilities, permissions: {} });
      const pid = await proxy.pid();
      const argv = cmdline(pid);
      expect(argv).to.include(process.version.startsWith('v20.') ? '--experimental-permission' : '--permission');
      expect(argv.filter((a) => a.startsWith('--allow-fs-read='))).to.include(`--allow-fs-read=${fileURLToPath(capabilities.workerModule)}`);
      expect(argv.some((a) => /^--allow-(fs-write|child-process|worker|addons)/.test(a)), argv.join(' ')).to.equal(false);

      const read = await rejectionOf(proxy.readFile('/etc/hostname'));
      expect(read).to.be.an.instanceOf(RemoteError);
      expect(read).to.include({ code: 'ERR_ACCESS_DENIED', remoteName: 'Error' });
      // Not even the plugin's own directory, nor the host's code around it.
      expect((await rejectionOf(proxy.readFile(join(fixturesDir, 'torture.mjs')))).code).to.equal('ERR_ACCESS_DENIED');
      const scratch = mkdtempSync(join(tmpdir(), 'ps-perm-'));
      try {
        expect((await rejectionOf(proxy.writeFile(join(scratch, 'x'), 'x'))).code).to.equal('ERR_ACCESS_DENIED');
        expect(existsSync(join(scratch, 'x'))).to.equal(false);
      } finally {
        rmSync(scratch, { recursive: true, force: true });
      }
      expect((await rejectionOf(proxy.spawnChild())).code).to.equal('ERR_ACCESS_DENIED');
      expect((await rejectionOf(proxy.startThread([]))).code).to.equal('ERR_ACCESS_DENIED');
      // Refused calls are ordinary errors: the same worker goes on.
      expect(await proxy.pid()).to.equal(pid);
    });

    it('fsRead grants the plugin its directory; everything outside it stays denied', async () => {
      const proxy = await createProxy({ ...capabilities, permissions: { fsRead: [fixturesDir] } });
      expect(await proxy.readFile(join(fixturesDir, 'torture.mjs'))).to.include('class Torture');
      const error = await rejectionOf(proxy.readFile('/etc/hostname'));
      expect(error).to.be.an.instanceOf(RemoteError);
      expect(error.code).to.equal('ERR_ACCESS_DENIED');
      expect(error.message).to.include('Access to this API has been restricted');
    });

    it('fsWrite grants writing under the given directory only', async () => {
      const allowed = mkdtempSync(join(tmpdir(), 'ps-perm-w-'));
      const other = mkdtempSync(join(tmpdir(), 'ps-perm-o-'));
      try {
        const proxy = await createProxy({ ...capabilities, permissions: { fsWrite: [allowed] } });
        expect(await proxy.writeFile(join(allowed, 'out.txt'), 'written')).to.equal(true);
        expect(readFileSync(join(allowed, 'out.txt'), 'utf8')).to.equal('written');
        expect((await rejectionOf(proxy.writeFile(join(other, 'out.txt'), 'x'))).code).to.equal('ERR_ACCESS_DENIED');
      } finally {
        rmSync(allowed, { recursive: true, force: true });
        rmSync(other, { recursive: true, force: true });
      }
    });

    it('childProcess: true lets it spawn, and what it spawns is not restricted (a documented limit)', async () => {
      const proxy = await createProxy({ ...capabilities, permissions: { childProcess: true } });
      expect(await proxy.spawnChild()).to.equal('spawned');
      expect(cmdline(await proxy.pid())).to.include('--allow-child-process');
      expect((await rejectionOf(proxy.readFile('/etc/hostname'))).code).to.equal('ERR_ACCESS_DENIED');
      expect(await proxy.spawnChild('cat /etc/hostname')).to.equal(readFileSync('/etc/hostname', 'utf8').trim());
    });

    it('native addons are refused under the model, whatever fsRead grants', async function () {
      const koffiDir = join(dirname(fileURLToPath(import.meta.url)), '..', 'node_modules', '@koromix');
      const addon = existsSync(koffiDir)
        ? readdirSync(koffiDir).map((d) => join(koffiDir, d, `${process.platform}_${process.arch}`, 'koffi.node')).find((p) => existsSync(p))
        : undefined;
      if (!addon) this.skip();
      const proxy = await createProxy({ ...capabilities, permissions: { fsRead: [addon] } });
      const error = await rejectionOf(proxy.loadAddon(addon));
      expect(error).to.be.an.instanceOf(RemoteError);
      expect(error.code).to.equal('ERR_DLOPEN_DISABLED');
    });

    it('known limits, pinned so that they are noticed when Node changes: the network is open; a thread with execArgv: [] escapes the model', async () => {
      const server = await tcpServer();
      try {
        const proxy = await createProxy({ ...capabilities, permissions: { workerThreads: true } });
        expect(await proxy.connectTcp('127.0.0.1', server.address().port)).to.equal('connected');
        // --allow-worker: a thread inherits the model, unless it is started with execArgv [].
        expect((await rejectionOf(proxy.readFile('/etc/hostname'))).code).to.equal('ERR_ACCESS_DENIED');
        expect(await proxy.startThread(undefined)).to.equal('thread denied: ERR_ACCESS_DENIED');
        expect(await proxy.startThread([])).to.equal('thread read it');
      } finally {
        server.close();
      }
    });

    it('rlimits still apply (through prlimit before node starts): maxOpenFiles', async () => {
      const proxy = await createProxy({ ...capabilities, permissions: {}, limits: { maxOpenFiles: 128 } });
      const pid = await proxy.pid();
      const row = readFileSync(`/proc/${pid}/limits`, 'utf8').split('\n').find((l) => l.startsWith('Max open files'));
      expect(row.slice('Max open files'.length).trim().split(/\s+/).slice(0, 2)).to.deep.equal(['128', '128']);
      expect(await proxy.pid()).to.equal(pid);
    });

    it('a host killed by SIGKILL takes a blocked worker along, though no watchdog thread may run (PR_SET_PDEATHSIG through setpriv)', async function () {
      if (process.platform !== 'linux') this.skip();
      const host = spawn(process.execPath, [hostScript, 'blocked-under-permissions'], { stdio: ['ignore', 'pipe', 'pipe'] });
      try {
        const line = await new Promise((resolve, reject) => {
          let out = '';
          host.stdout.on('data', (d) => {
            out += d;
            if (out.includes('\n')) resolve(out.split('\n')[0]);
          });
          host.once('exit', (code) => reject(new Error(`host exited with ${code}`)));
        });
        const { worker } = JSON.parse(line);
        expect(isAlive(worker)).to.equal(true);
        expect(cmdline(worker)).to.include(process.version.startsWith('v20.') ? '--experimental-permission' : '--permission');
        host.kill('SIGKILL');
        await waitFor(() => !isAlive(worker), 'the worker to be gone after its host was SIGKILLed');
      } finally {
        host.kill('SIGKILL');
      }
    });

    it('is validated up front: ConfigurationError naming the option', async () => {
      const cases = [
        [{ permissions: { fsRead: ['relative/path'] } }, 'permissions.fsRead', /not an absolute path/],
        [{ permissions: { fsWrite: '/tmp' } }, 'permissions.fsWrite', /array of absolute paths/],
        [{ permissions: { network: false } }, 'permissions.network', /known are fsRead, fsWrite, childProcess, workerThreads/],
        [{ permissions: { childProcess: 'yes' } }, 'permissions.childProcess', /boolean/],
        [{ permissions: [] }, 'permissions', /expected an object/],
        [{ execArgv: ['--experimental-permission', '--allow-fs-read=*'] }, 'execArgv', /permissions option/],
      ];
      for (const [options, option, message] of cases) {
        const error = await rejectionOf(ProcessProxy.create({ ...capabilities, ...options }));
        expect(error, JSON.stringify(options)).to.be.an.instanceOf(ConfigurationError);
        expect(error.option).to.equal(option);
        expect(error.message).to.match(message);
      }
      // A runtime too old for the model: a stand-in that says it is Node 18.
      const dir = mkdtempSync(join(tmpdir(), 'ps-old-node-'));
      try {
        const old = join(dir, 'node18');
        writeFileSync(old, '#!/bin/sh\necho v18.20.0\n');
        chmodSync(old, 0o755);
        const error = await rejectionOf(ProcessProxy.create({ ...capabilities, execPath: old, permissions: {} }));
        expect(error).to.be.an.instanceOf(ConfigurationError);
        expect(error.option).to.equal('permissions');
        expect(error.message).to.match(/Node\.js 20 or later.*v18\.20\.0/);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  });

  describe("env: 'minimal'", function () {
    it('keeps the host\'s secrets out of the worker; PATH and envPassthrough names come through', async () => {
      process.env.PS_TEST_SECRET = 'hunter2';
      try {
        const proxy = await createProxy({ ...capabilities, env: 'minimal', envPassthrough: [TEST_RUN_MARKER] });
        const env = await proxy.env();
        expect(env).to.not.have.property('PS_TEST_SECRET');
        expect(env.PATH).to.equal(process.env.PATH);
        expect(env[TEST_RUN_MARKER]).to.equal(process.env[TEST_RUN_MARKER]);
        expect(Object.keys(env).filter((k) => k.startsWith('PROCESS_SANDBOX_') && k !== TEST_RUN_MARKER)).to.deep.equal([]);
        for (const name of Object.keys(env)) expect(['PATH', 'TZ', 'LANG', 'LC_ALL', TEST_RUN_MARKER], name).to.include(name);
        // Nor in the environment block the process started with (what /proc shows).
        const initial = environ(await proxy.pid());
        expect(initial.some((kv) => kv.startsWith('PS_TEST_SECRET='))).to.equal(false);
        // The library's own variables were there at start, and only they besides the minimal set.
        expect(initial.filter((kv) => !/^(PATH|TZ|LANG|LC_ALL|PROCESS_SANDBOX_[A-Z_]+)=/.test(kv))).to.deep.equal([]);
      } finally {
        delete process.env.PS_TEST_SECRET;
      }
    });

    it('envPassthrough also adds to an env object; it is refused without env, and env must be an object or \'minimal\'', async () => {
      process.env.PS_TEST_PASSED = 'yes';
      try {
        const proxy = await createProxy({ ...capabilities, env: { ONLY: 'this' }, envPassthrough: [TEST_RUN_MARKER, 'PS_TEST_PASSED', 'PS_TEST_UNSET'] });
        const env = await proxy.env();
        expect(env).to.include({ ONLY: 'this', PS_TEST_PASSED: 'yes' });
        expect(env).to.not.have.property('PS_TEST_UNSET');
      } finally {
        delete process.env.PS_TEST_PASSED;
      }
      const without = await rejectionOf(ProcessProxy.create({ ...capabilities, envPassthrough: ['HOME'] }));
      expect(without).to.be.an.instanceOf(ConfigurationError);
      expect(without.option).to.equal('envPassthrough');
      const bad = await rejectionOf(ProcessProxy.create({ ...capabilities, env: 'none' }));
      expect(bad).to.be.an.instanceOf(ConfigurationError);
      expect(bad.option).to.equal('env');
    });
  });

  describe('user (Linux)', function () {
    before(function () {
      if (process.platform !== 'linux' || !isRoot) this.skip();
    });

    it(`runs the worker as uid ${NOBODY} with no supplementary groups; it serves calls`, async () => {
      const proxy = await createProxy({ ...capabilities, user: { uid: NOBODY, gid: NOBODY }, env: 'minimal', envPassthrough: [TEST_RUN_MARKER] });
      const pid = await proxy.pid();
      // Node's getgroups() always lists the effective gid; /proc shows no supplementary group.
      expect(await proxy.identity()).to.deep.equal({ uid: NOBODY, gid: NOBODY, groups: [NOBODY] });
      expect(status(pid, 'Groups')).to.equal('');
      expect(status(pid, 'Uid').split(/\s+/)).to.deep.equal([String(NOBODY), String(NOBODY), String(NOBODY), String(NOBODY)]);
      // It cannot read what only root can.
      expect((await rejectionOf(proxy.readFile('/etc/shadow'))).code).to.equal('EACCES');
      for (let i = 0; i < 20; i++) expect(await proxy.pid()).to.equal(pid);
    });

    it('the channel: an inherited socket, named nowhere; neither another user nor the worker\'s own user can open it through /proc', async () => {
      const proxy = await createProxy({ ...capabilities, user: { uid: NOBODY, gid: NOBODY } });
      const pid = await proxy.pid();
      expect(readlinkSync(`/proc/${pid}/fd/4`)).to.match(/^socket:\[\d+\]$/);
      expect(environ(pid).filter((kv) => /^PROCESS_SANDBOX_(PIPE|TOKEN)=/.test(kv))).to.deep.equal([]);
      for (const uid of [4242, NOBODY]) {
        const stranger = spawnSync(process.execPath, ['-e', `try { require('fs').openSync('/proc/${pid}/fd/4', 'r+'); console.log('opened') } catch (e) { console.log(e.code) }`], { uid, gid: uid, encoding: 'utf8' });
        expect(stranger.stdout.trim(), `uid ${uid}`).to.be.oneOf(['EACCES', 'ENXIO']);
      }
      for (let i = 0; i < 5; i++) expect(await proxy.pid()).to.equal(pid);
    });

    it('is refused with a ConfigurationError by a host without the privilege, and validated', async () => {
      const unprivileged = hostAs(NOBODY, { user: { uid: 1000, gid: 1000 } });
      expect(unprivileged.error).to.include({ name: 'ConfigurationError', option: 'user' });
      expect(unprivileged.error.message).to.match(/needs root \(or CAP_SETUID, CAP_SETGID\)/);
      for (const [user, option] of [[{ uid: -1, gid: 0 }, 'user.uid'], [{ uid: 1 }, 'user.gid'], [{ uid: 1, gid: 1, groups: [] }, 'user.groups'], ['nobody', 'user']]) {
        const error = await rejectionOf(ProcessProxy.create({ ...capabilities, user }));
        expect(error).to.be.an.instanceOf(ConfigurationError);
        expect(error.option).to.equal(option);
      }
    });
  });

  describe('isolateNetwork (Linux)', function () {
    before(function () {
      if (process.platform !== 'linux') this.skip();
    });

    it('the worker sees only a loopback device and cannot reach a TCP server of the host; it serves calls over its pipe', async () => {
      const server = await tcpServer();
      try {
        const port = server.address().port;
        // Control: the same server is reachable from the host's namespace.
        expect(await new Promise((resolve) => connect(port, '127.0.0.1').on('connect', function () { this.destroy(); resolve('connected'); }).on('error', (e) => resolve(e.code)))).to.equal('connected');
        const proxy = await createProxy({ ...capabilities, isolateNetwork: true });
        const pid = await proxy.pid();
        expect(await proxy.netDevices()).to.deep.equal(['lo']);
        expect(await proxy.interfaces()).to.deep.equal([]); // lo is down: no address at all
        const attempt = await proxy.connectTcp('127.0.0.1', port);
        expect(attempt).to.be.oneOf(['ENETUNREACH', 'ECONNREFUSED']);
        expect(statSync(`/proc/${pid}/ns/net`).ino).to.not.equal(statSync('/proc/self/ns/net').ino);
        expect(await proxy.pid()).to.equal(pid); // the pid is node's own: unshare exec'd it
      } finally {
        server.close();
      }
    });

    it('with user: the worker runs as that user inside the namespace', async function () {
      if (!isRoot) this.skip();
      const proxy = await createProxy({ ...capabilities, isolateNetwork: true, user: { uid: NOBODY, gid: NOBODY } });
      expect(await proxy.identity()).to.deep.equal({ uid: NOBODY, gid: NOBODY, groups: [NOBODY] });
      expect(status(await proxy.pid(), 'Groups')).to.equal('');
      expect(await proxy.netDevices()).to.deep.equal(['lo']);
    });

    it('an unprivileged host gets a user+network namespace where the kernel allows it, else a ConfigurationError', async function () {
      if (!isRoot) this.skip(); // needs to start the host as another user
      const result = hostAs(NOBODY, { isolateNetwork: true });
      if (result.error) {
        expect(result.error).to.include({ name: 'ConfigurationError', option: 'isolateNetwork' });
        expect(result.error.message).to.match(/unshare --user --net/);
      } else {
        expect(result.netDevices).to.deep.equal(['lo']);
      }
      // With user too, only the privileged way works.
      const withUser = hostAs(NOBODY, { isolateNetwork: true, user: { uid: NOBODY, gid: NOBODY } });
      expect(withUser.error?.option).to.be.oneOf(['user', 'isolateNetwork']);
    });
  });
});

// The channel between host and worker. POSIX: one end of a socketpair the worker inherits on
// descriptor 4, named nowhere (not in argv, not in the environment, not in the file system); a pool
// leaves no descriptor behind. A worker started without it says what is missing. (hostile.test.mjs
// covers the same-uid intruder and the Windows pipe listener.)
import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { openSync, closeSync, readFileSync, readlinkSync } from 'node:fs';
import { workerBinPath } from '@process-sandbox/worker';
import { PROTOCOL_VERSION } from '@process-sandbox/abstractions';
import { ProcessProxy, WorkerStartError } from '@process-sandbox/core';
import { disposeProxies, fixture, rejectionOf } from './support/pools.mjs';
import { environOf, isAlive, openFds, poll, waitFor } from './support/processes.mjs';

const torture = { workerModule: fixture('torture.mjs'), workerExport: 'Torture' };

describe('the channel between host and worker', function () {
  this.timeout(30_000);
  before(function () {
    // POSIX-specific: an inherited socket, checked through /proc/<pid>/environ and /proc/<pid>/fd (Windows: a named pipe, test/windows.test.mjs).
    if (process.platform === 'win32') this.skip();
  });
  afterEach(disposeProxies);

  it('is a socket the worker inherits on descriptor 4, named nowhere; pools leave no descriptor behind', async () => {
    // Warm up, so that what the first pool loads once (modules, the sampler's caches) is not counted.
    const warm = await ProcessProxy.create(torture);
    await ProcessProxy.poolOf(warm).dispose();
    const fdsBefore = openFds();
    for (let i = 0; i < 3; i++) {
      const proxy = await ProcessProxy.create({ ...torture, minPoolSize: 2, maxPoolSize: 2 });
      const pool = ProcessProxy.poolOf(proxy);
      for (const pid of pool.livePids()) {
        expect(readlinkSync(`/proc/${pid}/fd/4`), `worker ${pid}'s descriptor 4`).to.match(/^socket:\[\d+\]$/);
        expect(readFileSync(`/proc/${pid}/cmdline`, 'latin1')).to.not.match(/PROCESS_SANDBOX|\.sock|pipe/);
        const env = environOf(pid);
        expect(env.PROCESS_SANDBOX_CHANNEL_FD).to.equal('4');
        expect(Object.keys(env).filter((name) => /PIPE|TOKEN/.test(name))).to.deep.equal([]);
      }
      expect(await proxy.echo({ i })).to.deep.equal({ i });
      await pool.dispose();
    }
    const settled = await poll(() => openFds() <= fdsBefore, { timeoutMs: 5000 });
    expect(settled, `host descriptors: ${openFds()} after three pools, ${fdsBefore} before`).to.equal(true);
  });

  it('a worker started without its channel exits 64 and says what is missing', () => {
    const env = { ...process.env };
    for (const name of Object.keys(env)) if (name.startsWith('PROCESS_SANDBOX_') && name !== 'PROCESS_SANDBOX_TEST_RUN') delete env[name];
    const none = spawnSync(process.execPath, [workerBinPath], { env, encoding: 'utf8', timeout: 10_000 });
    expect(none.status).to.equal(64);
    expect(none.stderr).to.match(/started by @process-sandbox\/core; neither PROCESS_SANDBOX_CHANNEL_FD nor PROCESS_SANDBOX_PIPE and PROCESS_SANDBOX_TOKEN are set/);
    // Descriptor 4 is a file, not a socket.
    const file = openSync(new URL(import.meta.url), 'r');
    try {
      const wrong = spawnSync(process.execPath, [workerBinPath], { env: { ...env, PROCESS_SANDBOX_CHANNEL_FD: '4', PROCESS_SANDBOX_PARENT_GUARD: '0' }, stdio: ['ignore', 'pipe', 'pipe', 'ignore', file], encoding: 'utf8', timeout: 10_000 });
      expect(wrong.status).to.equal(64);
      expect(wrong.stderr).to.match(/descriptor 4 \(PROCESS_SANDBOX_CHANNEL_FD\) is not the channel to the host/);
    } finally {
      closeSync(file);
    }
  });

  for (const [what, reason] of [
    ['version', `protocol version ${PROTOCOL_VERSION + 1}, expected ${PROTOCOL_VERSION}`],
    ['kind', 'first message is kind 2, not Hello'],
    ['garbage', 'Undecodable frame'],
  ]) {
    it(`a worker whose first frame is not a good Hello (${what}) is answered nothing and killed; the start fails saying why`, async () => {
      const error = await rejectionOf(
        ProcessProxy.create({
          ...torture,
          execArgv: [new URL('./fixtures/bad-hello.mjs', import.meta.url).pathname],
          env: { ...process.env, BAD_HELLO: what },
          processStartTimeoutMs: 20_000,
        }),
      );
      expect(error).to.be.an.instanceOf(WorkerStartError);
      expect(error.message).to.include(`its channel failed before the handshake: ${reason}`);
      expect(error.stderrTail, 'the host answered nothing').to.not.match(/the host answered/);
      await waitFor(() => !isAlive(error.pid), `worker ${error.pid} to be gone`);
    });
  }
});

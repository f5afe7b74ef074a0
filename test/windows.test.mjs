// Windows only: what the Job Object guard (one job per worker) and the kernel32 health figures
// promise, with real processes. CI runs it with the real node.exe under Wine (.ci/windows-suite.sh);
// on any other platform it is skipped. Grandchildren are node processes (Windows has no `sleep`).
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import { CallTimeoutError, ProcessProxy, WorkerCrashedError, WorkerStartError } from '@process-sandbox/core';
import { createProxy, disposeProxies, fixture, nextEvent, rejectionOf } from './support/pools.mjs';
import { isAlive, underWine, waitFor, waitForExit } from './support/processes.mjs';

const torture = { workerModule: fixture('torture.mjs'), workerExport: 'Torture' };
const spawner = { workerModule: fixture('spawner.mjs'), workerExport: 'Spawner' };
const leaky = { workerModule: fixture('leaky.mjs'), workerExport: 'Leaky' };
/** Generous: a node.exe start under Wine takes ~0.4 s on an idle machine. */
const GONE_MS = 15_000;

/**
 * Runs test/fixtures/orphan-host.mjs in `mode`. `report` is its one JSON line; it rejects, with the
 * host's exit code and the end of its stderr, if stdout closes without one (stdout's end, not the
 * 'exit' event: a host that writes its line and exits at once may be seen exiting before the line
 * is read). `exited` is its exit code.
 */
function startHost(mode, scratch) {
  const child = spawn(process.execPath, [fileURLToPath(fixture('orphan-host.mjs')), mode, scratch], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (text) => {
    stderr = (stderr + text).slice(-4_000);
  });
  const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve(code ?? signal)));
  const report = new Promise((resolve, reject) => {
    const lines = createInterface({ input: child.stdout });
    lines.once('line', (line) => resolve(JSON.parse(line)));
    lines.once('close', async () => reject(new Error(`the host ended (exit ${await exited}) before reporting; its stderr: ${stderr || '(empty)'}`)));
  });
  // Ends our side of its pipes: another process may still hold their other ends (under Wine, a
  // conhost.exe that outlives the host was seen to), and an open pipe would keep the test run alive.
  const release = () => {
    if (isAlive(child.pid)) child.kill();
    child.stdout.destroy();
    child.stderr.destroy();
  };
  return { child, report, exited, stderr: () => stderr, release };
}

describe('Windows: Job Objects and kernel32 figures', function () {
  const wine = underWine;
  let processFigures;
  before(async function () {
    if (process.platform !== 'win32') this.skip(); // Windows only: Job Objects and kernel32
    ({ processFigures } = await import('../packages/core/dist/os/windows.js'));
  });
  afterEach(disposeProxies);

  it('pool basics: parallel calls run on two workers and return their values', async () => {
    const proxy = await createProxy({ ...torture, minPoolSize: 2, maxPoolSize: 2 });
    const pool = ProcessProxy.poolOf(proxy);
    const pids = await Promise.all([1, 2, 3, 4, 5, 6].map(() => proxy.pid()));
    expect(new Set(pids)).to.deep.equal(new Set(pool.livePids()));
    expect(pool.livePids()).to.have.length(2);
    expect(await proxy.echo({ a: [1, 'two', null], d: new Date(0) })).to.deep.equal({ a: [1, 'two', null], d: new Date(0) });
  });

  it('a 4 MiB value crosses the named pipe both ways', async () => {
    const proxy = await createProxy({ ...torture });
    const sent = Buffer.alloc(4 * 1024 * 1024);
    for (let i = 0; i < sent.length; i++) sent[i] = (i * 31) & 0xff;
    const back = await proxy.echo(sent);
    expect(Buffer.compare(Buffer.from(back), sent)).to.equal(0);
    const made = await proxy.buffer(4 * 1024 * 1024);
    expect(made.length).to.equal(4 * 1024 * 1024);
    expect(made.every((b) => b === 7)).to.equal(true);
  });

  it('a worker that exits mid-call: WorkerCrashedError with its exit code, and the next call runs on a new pid', async () => {
    const proxy = await createProxy({ ...torture, maxPoolSize: 1 });
    const first = await proxy.pid();
    const error = await rejectionOf(proxy.exit(3));
    expect(error).to.be.an.instanceOf(WorkerCrashedError);
    expect(error).to.include({ pid: first, exitCode: 3, method: 'exit' });
    const second = await proxy.pid();
    expect(second).to.not.equal(first);
    await waitForExit([first], GONE_MS);
  });

  it('a hung call: CallTimeoutError, and the worker and everything it started (detached too) are gone', async () => {
    const proxy = await createProxy({ ...spawner, maxPoolSize: 1, methodCallTimeoutMs: 2_000 });
    const worker = await proxy.pid();
    const started = [await proxy.spawnChild(), await proxy.spawnEscapee()];
    expect(started.every(isAlive)).to.equal(true);
    const error = await rejectionOf(proxy.spin());
    expect(error).to.be.an.instanceOf(CallTimeoutError);
    expect(error).to.include({ method: 'spin', pid: worker });
    await waitForExit([worker, ...started], GONE_MS);
  });

  it("recycling a worker takes its descendants with it (its job is terminated), detached ones included", async () => {
    const proxy = await createProxy({ ...spawner, maxPoolSize: 1, processRecycleThreshold: 3 });
    const pool = ProcessProxy.poolOf(proxy);
    const recycled = nextEvent(pool, 'workerRecycled');
    const worker = await proxy.pid();
    const started = [await proxy.spawnChild(), await proxy.spawnEscapee()];
    expect(await recycled).to.include({ pid: worker, reason: 'calls' });
    await waitForExit([worker, ...started], GONE_MS);
    expect(await proxy.pid()).to.not.equal(worker);
  });

  it('dispose() ends every worker and everything they started', async () => {
    const proxy = await createProxy({ ...spawner, minPoolSize: 2, maxPoolSize: 2 });
    const pool = ProcessProxy.poolOf(proxy);
    const workers = pool.livePids();
    const started = await Promise.all([proxy.spawnEscapee(), proxy.spawnEscapee(), proxy.spawnChild()]);
    expect(started.every(isAlive)).to.equal(true);
    await pool.dispose();
    await waitForExit([...workers, ...started], GONE_MS);
  });

  it('a host killed with taskkill /F takes its workers (spinning, blocked, idle) and their detached grandchildren along', async function () {
    const scratch = mkdtempSync(join(tmpdir(), 'ps-win-'));
    const host = startHost('three', scratch);
    try {
      const { workers, grandchildren } = await host.report;
      expect(workers).to.have.length(3);
      expect(grandchildren).to.have.length(4);
      expect([...workers, ...grandchildren].every(isAlive)).to.equal(true);
      execFileSync('taskkill', ['/F', '/PID', String(host.child.pid)], { stdio: 'ignore' });
      await host.exited;
      // Nothing in the workers asks for this (no watchdog on Windows): only the jobs' kill-on-close.
      await waitForExit([...workers, ...grandchildren], GONE_MS);
    } finally {
      host.release();
      rmSync(scratch, { recursive: true, force: true, maxRetries: 10 });
    }
  });

  it('a host that calls process.exit without disposing takes its workers (one blocked) and their grandchildren along', async function () {
    const scratch = mkdtempSync(join(tmpdir(), 'ps-win-'));
    const host = startHost('exit', scratch);
    try {
      const { workers, grandchildren } = await host.report;
      expect(workers).to.have.length(2);
      expect(grandchildren).to.have.length(2);
      expect(await host.exited, `the host's exit code (stderr: ${host.stderr()})`).to.equal(0);
      await waitForExit([...workers, ...grandchildren], GONE_MS);
    } finally {
      host.release();
      rmSync(scratch, { recursive: true, force: true, maxRetries: 10 });
    }
  });

  it("the host's sampler reads working set and CPU time from kernel32 (no wmic), and handle counts where Windows gives them", async () => {
    const proxy = await createProxy({ ...torture, maxPoolSize: 1, healthIntervalMs: 100 });
    const pool = ProcessProxy.poolOf(proxy);
    const pid = await proxy.pid();
    await proxy.retain(16);
    const figures = processFigures(pid);
    expect(figures.workingSetBytes).to.be.above(16 * 1024 * 1024);
    expect(figures.cpuMs).to.be.above(0);
    expect(figures.handles).to.be.a('number');
    expect(figures.privateBytes).to.be.a('number');
    // Wine 8 implements neither the handle count nor PrivateUsage (both read 0); Windows does.
    if (!wine) expect(figures.handles).to.be.above(0);
    if (!wine) expect(figures.privateBytes).to.be.above(16 * 1024 * 1024);
    const sampled = await waitFor(() => (pool.stats().workers[0]?.rssBytes ?? 0) > 16 * 1024 * 1024, 'a sampled resident size over 16 MiB', { timeoutMs: 10_000 });
    expect(sampled, 'the pool reports the worker working set').to.equal(true);
    expect(processFigures(999_999_999)).to.equal(undefined);
  });

  it('an off-heap leak past maxMemoryMB recycles the worker for memory; no call fails', async () => {
    const proxy = await createProxy({ ...leaky, maxPoolSize: 1, maxMemoryMB: 160, healthIntervalMs: 100 });
    const pool = ProcessProxy.poolOf(proxy);
    const recycled = nextEvent(pool, 'workerRecycled');
    const first = await proxy.pid();
    for (let i = 0; i < 8; i++) await proxy.leakOffHeap(32);
    expect(await recycled).to.include({ pid: first, reason: 'memory' });
    await waitForExit([first], GONE_MS);
  });

  it('a handle leak past maxHandles recycles the worker for handles (GetProcessHandleCount)', async function () {
    if (wine) this.skip(); // Wine 8's GetProcessHandleCount is a stub that reads 0: only Windows can show this
    const proxy = await createProxy({ ...leaky, maxPoolSize: 1, maxHandles: 400, healthIntervalMs: 100 });
    const pool = ProcessProxy.poolOf(proxy);
    const recycled = nextEvent(pool, 'workerRecycled');
    const first = await proxy.pid();
    for (let i = 0; i < 8; i++) await proxy.leakFds(100);
    expect(await recycled).to.include({ pid: first, reason: 'handles' });
  });

  it('a workerModule that does not exist, given as a Windows path: WorkerStartError saying so', async () => {
    const missing = join(tmpdir(), 'process-sandbox-nowhere', 'missing.mjs');
    expect(missing).to.match(/^[A-Za-z]:\\/);
    const error = await rejectionOf(ProcessProxy.create({ workerModule: missing, workerExport: 'X' }));
    expect(error).to.be.an.instanceOf(WorkerStartError);
    expect(error.message).to.include('workerModule not found');
  });
});

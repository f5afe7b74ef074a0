// Habits a user expects of a library: a quiet logger by default (per-call lines at trace), a proxy that
// says what it is when inspected or printed and is never mistaken for a promise, and an opt-in `unref`
// that lets a script with a forgotten pool end.
import { spawn } from 'node:child_process';
import { inspect } from 'node:util';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import { ProcessProxy } from '@process-sandbox/core';
import { createProxy, disposeProxies, fixture } from './support/pools.mjs';
import { isAlive, skipBecause, underWine, waitFor } from './support/processes.mjs';

const torture = { workerModule: fixture('torture.mjs'), workerExport: 'Torture', maxPoolSize: 1, healthIntervalMs: 0 };

/** A pino-like logger that keeps every line, trace included. */
function recordingLogger() {
  const lines = [];
  const at = (level) => (obj, msg) => lines.push({ level, obj, msg });
  return { lines, trace: at('trace'), debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}

describe('logging levels', function () {
  afterEach(disposeProxies);

  it('logs each call at trace, a worker\'s life at debug, and nothing per call above trace', async () => {
    const logger = recordingLogger();
    const proxy = await createProxy({ ...torture, logger });
    const pid = await proxy.pid();
    const before = logger.lines.length;
    for (let i = 0; i < 3; i++) await proxy.echo(i);
    const perCall = logger.lines.slice(before);
    expect(perCall.map((l) => `${l.level} ${l.obj.from}→${l.obj.to}`)).to.deep.equal(Array(3).fill(['trace idle→busy', 'trace busy→idle']).flat());
    expect(logger.lines.filter((l) => l.level === 'debug').map((l) => `${l.obj.from}→${l.obj.to}`)).to.include.members(['spawning→handshaking', 'handshaking→idle']);
    await ProcessProxy.poolOf(proxy).dispose();
    expect(logger.lines.some((l) => l.level === 'debug' && l.obj.pid === pid && l.obj.to === 'exited')).to.equal(true);
    expect(logger.lines.filter((l) => l.level === 'info' || l.level === 'warn' || l.level === 'error')).to.deep.equal([]);
  });

  it('gives a logger without trace, and console, no per-call line (console.trace prints stacks)', async () => {
    const withoutTrace = recordingLogger();
    delete withoutTrace.trace;
    const calls = { trace: 0, debug: 0 };
    const saved = { trace: console.trace, debug: console.debug };
    console.trace = () => calls.trace++;
    console.debug = () => calls.debug++;
    try {
      const a = await createProxy({ ...torture, logger: withoutTrace });
      const b = await createProxy({ ...torture, logger: console });
      const debugAfterStart = calls.debug;
      const linesAfterStart = withoutTrace.lines.length;
      for (let i = 0; i < 3; i++) await Promise.all([a.echo(i), b.echo(i)]);
      expect(withoutTrace.lines.length, 'lines logged by calls').to.equal(linesAfterStart);
      expect(calls.debug, 'console.debug lines logged by calls').to.equal(debugAfterStart);
      expect(debugAfterStart, 'console.debug got the lifecycle').to.be.above(0);
      await disposeProxies(); // its lifecycle lines still go to the stand-in console
      expect(calls.trace, 'console.trace is never called').to.equal(0);
    } finally {
      Object.assign(console, saved);
    }
  });

  it('refuses a logger whose trace is not a function', async () => {
    const error = await ProcessProxy.create({ ...torture, logger: { ...recordingLogger(), trace: 'loud' } }).catch((e) => e);
    expect(error).to.be.instanceOf(Error);
    expect(error.option).to.equal('logger');
  });
});

describe('an inspectable proxy that is never a thenable', function () {
  afterEach(disposeProxies);

  it('util.inspect, String(), template literals and toStringTag describe it, without a call to the worker', async () => {
    const proxy = await createProxy(torture);
    await proxy.echo(1);
    const pool = ProcessProxy.poolOf(proxy);
    const calls = pool.stats().totals.calls;
    const shown = inspect(proxy);
    expect(shown).to.match(/^ProcessProxy \{/);
    expect(shown).to.include(`module: ${inspect(fileURLToPath(fixture('torture.mjs')))}`).and.include("export: 'Torture'").and.include('workers: 1').and.include('maxPoolSize: 1').and.include("state: 'open'");
    const described = `[ProcessProxy Torture of ${fileURLToPath(fixture('torture.mjs'))}]`;
    expect(String(proxy)).to.equal(described);
    expect(`${proxy}`).to.equal(described);
    expect(Object.prototype.toString.call(proxy)).to.equal('[object ProcessProxy]');
    expect(inspect(ProcessProxy.with(proxy, { timeoutMs: 1000 }))).to.match(/^ProcessProxy view \{/);
    expect(inspect({ nested: proxy })).to.include('ProcessProxy {');
    expect(pool.stats().totals.calls, 'no call reached the worker').to.equal(calls);
    await pool.dispose();
    expect(inspect(proxy)).to.include("state: 'disposed'").and.include('workers: 0');
  });

  it('is not a thenable even when the worker serves a method named then', async () => {
    // The fake worker (test/fixtures/fake-worker.mjs) lists `then` among its methods in Ready.
    const fakeWorker = fileURLToPath(fixture('fake-worker.mjs'));
    const proxy = await createProxy({ workerModule: fixture('torture.mjs'), execArgv: [fakeWorker], maxPoolSize: 1, env: { ...process.env, FAKE_WORKER_EXTRA_METHODS: 'then,toString' } });
    // The host's gate drops `then` from the callable methods (docs/protocol.md, "The gate"); the proxy
    // must not be a thenable whatever the list says, which is what the rest of this test checks.
    expect([...ProcessProxy.poolOf(proxy).methods]).to.include('toString').and.not.include('then');
    expect(proxy.then).to.equal(undefined);
    expect('then' in proxy).to.equal(false);
    expect('echo' in proxy).to.equal(true);
    expect(await proxy).to.equal(proxy);
    expect(await Promise.resolve(proxy)).to.equal(proxy);
    expect(await proxy.echo('still serving')).to.equal('still serving');
    expect(await ProcessProxy.with(proxy, { timeoutMs: 1000 }).echo('view')).to.equal('view');
    const view = ProcessProxy.with(proxy, { timeoutMs: 1000 });
    expect(await view).to.equal(view);
    // A name the worker serves that JavaScript also probes (toString) is a remote method; String() still describes.
    expect(proxy.toString).to.be.a('function');
    expect(String(proxy)).to.match(/^\[ProcessProxy /);
  });
});

describe('unref: a forgotten pool does not keep a script alive', function () {
  before(function () {
    // Wine's node.exe dies with EBADF on its first write to a Unix pipe (docs/windows.md): the script's report cannot reach us.
    if (underWine) skipBecause(this, 'under Wine, node.exe cannot write to a pipe (EBADF)');
  });
  /** Runs the script, resolves with its first output line and the process. */
  function startScript(mode) {
    const child = spawn(process.execPath, [fileURLToPath(fixture('forgotten-pool.mjs')), mode], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
    const printed = new Promise((resolve, reject) => {
      child.stdout.on('data', (chunk) => {
        out += chunk;
        if (out.includes('\n')) resolve(JSON.parse(out.split('\n')[0]));
      });
      child.once('exit', () => reject(new Error(`the script exited without printing (${out})`)));
    });
    return { child, printed, exited };
  }

  it('with unref: true the script exits by itself once its calls are done, and its worker goes with it', async () => {
    const { printed, exited } = startScript('unref');
    const { pid, value, holding } = await printed;
    expect(value).to.equal('done');
    expect(holding, "the worker's process does not hold the script").to.not.include('ProcessWrap');
    expect(await exited).to.deep.equal({ code: 0, signal: null });
    await waitFor(() => !isAlive(pid), `worker ${pid} to end with its host`, { timeoutMs: 10_000 });
  });

  it('without it the pool keeps the script alive (until a signal ends it, workers included)', async () => {
    const { child, printed, exited } = startScript('ref');
    const { pid, value, holding } = await printed;
    expect(value).to.equal('done');
    // Its calls are done; only the idle pool is left, and its worker's process and pipes keep it running.
    expect(holding).to.include('ProcessWrap');
    expect(isAlive(pid)).to.equal(true);
    child.kill('SIGTERM');
    expect((await exited).signal).to.equal('SIGTERM');
    await waitFor(() => !isAlive(pid), `worker ${pid} to end with its host`, { timeoutMs: 10_000 });
  });

  it('refuses a non-boolean unref', async () => {
    const error = await ProcessProxy.create({ ...torture, unref: 'yes' }).catch((e) => e);
    expect(error.option).to.equal('unref');
    expect(error.message).to.match(/expected a boolean/);
  });
});

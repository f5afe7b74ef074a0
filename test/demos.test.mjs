// The demos a user runs first (`npm run demo`, `npm run demo:http`, samples/quick-demo.mjs), run as
// child processes exactly as a user would, with their output piped (not a TTY): each must exit 0
// and end with a summary in which every expectation held.
//
// The children inherit this process's environment, so the suite's test-run marker passes down to
// them and to their workers: the root hook fails a test that leaves any of them running.
import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { addonAvailable } from '../samples/legacy-addon/index.mjs';

const sample = (path) => fileURLToPath(new URL(`../samples/${path}`, import.meta.url));
const TIMEOUT_MS = 60_000;

/** Runs `script` with this process's node; resolves with its exit and output. Kills it after `timeoutMs`. */
function runScript(script, { env = {}, timeoutMs = TIMEOUT_MS - 5_000 } = {}) {
  return new Promise((resolve, reject) => {
    const childEnv = { ...process.env };
    for (const [key, value] of Object.entries(env)) {
      if (value === undefined) delete childEnv[key];
      else childEnv[key] = value;
    }
    const started = performance.now();
    const child = spawn(process.execPath, [script], { env: childEnv, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk) => (stderr += chunk));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr, ms: performance.now() - started });
    });
  });
}

/**
 * The summary the legacy-service demos end with (see samples/legacy-service/expectations.mjs):
 *   SUMMARY: <title>
 *     ✓ [label] explanation
 *   RESULT: PASS, 9 of 9 expectations held
 */
function parseSummary(stdout) {
  const lines = stdout.split('\n');
  const start = lines.findIndex((l) => l.startsWith('SUMMARY: '));
  if (start < 0) return undefined;
  const items = [];
  let result;
  for (const line of lines.slice(start + 1)) {
    const item = /^ {2}([✓✗]) \[([a-z-]+)\] (.+)$/.exec(line);
    if (item) {
      items.push({ ok: item[1] === '✓', label: item[2], explanation: item[3] });
      continue;
    }
    const end = /^RESULT: (PASS|FAIL), (\d+) of (\d+) expectations held$/.exec(line);
    if (end) result = { pass: end[1] === 'PASS', held: Number(end[2]), total: Number(end[3]) };
    break;
  }
  return { title: lines[start].slice('SUMMARY: '.length), items, result };
}

/** What to show when a demo fails: its exit and the end of its output. */
function report(run) {
  const tail = (text) => text.split('\n').slice(-40).join('\n');
  return `exit code ${run.code}, signal ${run.signal}, after ${(run.ms / 1000).toFixed(1)} s\n--- stdout (tail) ---\n${tail(run.stdout)}\n--- stderr (tail) ---\n${tail(run.stderr)}`;
}

/** Asserts a clean run whose summary holds exactly `labels`, all ✓. */
function expectAllHeld(run, labels) {
  expect(run.signal, report(run)).to.equal(null);
  expect(run.code, report(run)).to.equal(0);
  const summary = parseSummary(run.stdout);
  expect(summary, `no SUMMARY in the output\n${report(run)}`).to.not.equal(undefined);
  expect(summary.items.map((i) => i.label), report(run)).to.deep.equal(labels);
  const failed = summary.items.filter((i) => !i.ok);
  expect(failed, report(run)).to.deep.equal([]);
  expect(summary.result, report(run)).to.deep.equal({ pass: true, held: labels.length, total: labels.length });
  expect(run.stderr, 'nothing on stderr').to.equal('');
  return summary;
}

const LEGACY_DEMO_LABELS = ['normal-calls', 'concurrency', 'segfault', 'hang', 'memory-recycle', 'handles-recycle', 'progress-callback', 'row-cursor', 'pool-totals', 'host-unharmed', 'no-survivors'];
const HTTP_DEMO_LABELS = ['normal-requests', 'poisoned-requests', 'hung-request', 'server-stayed-up', 'concurrency', 'no-survivors'];

/** Checks of the main demo's output that do not depend on the backend. */
function expectLegacyDemo(run, backend) {
  const summary = expectAllHeld(run, LEGACY_DEMO_LABELS);
  expect(summary.title).to.include(backend === 'native' ? 'native C++ addon' : 'pure-JS stand-in');
  const segfault = summary.items.find((i) => i.label === 'segfault');
  expect(segfault.explanation).to.match(/WorkerCrashedError, signal SIGSEGV/);
  expect(summary.items.find((i) => i.label === 'hang').explanation).to.match(/CallTimeoutError/);
  expect(summary.items.find((i) => i.label === 'memory-recycle').explanation).to.match(/recycled for 'memory'/);
  expect(summary.items.find((i) => i.label === 'handles-recycle').explanation).to.match(/recycled for 'handles'/);
  // Not a TTY: periodic snapshots of the table, no cursor moves, not a flood.
  expect(run.stdout, 'no ANSI escapes when stdout is not a TTY').to.not.include('\x1b[');
  const snapshots = run.stdout.split('\n').filter((l) => /^── workers at \d+\.\d s/.test(l));
  const periodic = snapshots.filter((l) => l.includes('(periodic)')).length;
  expect(snapshots.length - periodic, 'table snapshots the demo asked for').to.be.within(3, 20);
  // Periodic ones at most every 4 s (the table's snapshotMs), however long the run took.
  expect(periodic, `periodic snapshots in ${Math.round(run.ms)} ms`).to.be.at.most(Math.ceil(run.ms / 4000) + 1);
  expect(run.stdout).to.match(/^\s*pid {2}state\s+calls {2}RSS MiB {2}fds {2}recycled {2}crashed$/m);
  expect(run.stdout.split('\n').length, 'output lines').to.be.below(400);
}

describe('demos', function () {
  this.timeout(TIMEOUT_MS);
  this.slow(20_000);

  it(`npm run demo: samples/legacy-service/demo.mjs exits 0 and every expectation of its summary held (${addonAvailable() ? 'native addon' : 'addon not built: the stand-in'})`, async () => {
    const run = await runScript(sample('legacy-service/demo.mjs'), { env: { LEGACY_SERVICE_BACKEND: undefined } });
    expectLegacyDemo(run, addonAvailable() ? 'native' : 'js');
    if (addonAvailable()) expect(run.stdout).to.include('Workers run the legacy C++ addon');
    else expect(run.stdout).to.include('NOTE: the legacy C++ addon is not built');
  });

  it('the main demo with the pure-JS stand-in (LEGACY_SERVICE_BACKEND=js), the fallback when the addon is not built', async () => {
    const run = await runScript(sample('legacy-service/demo.mjs'), { env: { LEGACY_SERVICE_BACKEND: 'js' } });
    expectLegacyDemo(run, 'js');
    expect(run.stdout).to.include('Workers run the pure-JS stand-in');
  });

  it('npm run demo:http: samples/legacy-service/http-demo.mjs exits 0; normal requests got 200, poisoned ones a 5xx naming the crash, the server stayed up', async () => {
    const run = await runScript(sample('legacy-service/http-demo.mjs'), { env: { LEGACY_SERVICE_BACKEND: undefined } });
    const summary = expectAllHeld(run, HTTP_DEMO_LABELS);
    expect(summary.items.find((i) => i.label === 'poisoned-requests').explanation).to.match(/got 5\d\d with a JSON error naming the crash \(WorkerCrashedError, SIGSEGV\)/);
    expect(summary.items.find((i) => i.label === 'normal-requests').explanation).to.match(/(\d+) of \1/);
    expect(run.stdout).to.match(/GET \/parse\?input=POISON → 502 \{"error":"WorkerCrashedError"/);
  });

  it('samples/quick-demo.mjs exits 0 and every one of its expectations held', async () => {
    const run = await runScript(sample('quick-demo.mjs'));
    expect(run.code, report(run)).to.equal(0);
    const ticks = run.stdout.split('\n').filter((l) => l.startsWith('✓ '));
    const crosses = run.stdout.split('\n').filter((l) => l.startsWith('✗ '));
    expect(crosses, report(run)).to.deep.equal([]);
    expect(ticks.length, report(run)).to.equal(7);
    expect(run.stdout).to.match(/^7 of 7 expectations held\.$/m);
    expect(run.stderr).to.equal('');
  });

  it('samples/wasm-plugin/demo.mjs exits 0: the plugin answers, its host call is audited, fib(40) runs out of fuel and the next call works', async () => {
    const run = await runScript(sample('wasm-plugin/demo.mjs'));
    expect(run.code, report(run)).to.equal(0);
    const lines = run.stdout.split('\n');
    for (const answer of ['5', '4', '300286872', 'Hello, WebAssembly!', 'fib(40): fuel limit, as expected']) expect(lines, report(run)).to.include(answer);
    expect(run.stdout, 'the granted host function ran in the worker').to.match(/\[worker \d+\] \[plugin\] WebAssembly/);
    expect(run.stdout).to.match(/greet: success, fuel \d+, host calls \[\{"fn":"log","args":\[\d+,11\]\}\]/);
    expect(run.stdout).to.match(/^6765 total fuel \d+$/m);
  });
});

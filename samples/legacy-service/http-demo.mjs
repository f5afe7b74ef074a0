// The HTTP demo (`npm run demo:http`): starts http-server.mjs on an ephemeral port of 127.0.0.1,
// fires a bounded number of concurrent client requests at it (normal ones, poisoned ones that
// segfault a worker, one that hangs a worker), and checks that every normal request got 200 with
// the right answer, that every poisoned one got a 5xx JSON error naming the crash, and that the
// server stayed up throughout. Then it closes the server, disposes the pool, checks that no worker
// process is left, prints a summary and exits 0 only if all of that held.
import { randomBytes, randomInt } from 'node:crypto';
import { isDeepStrictEqual } from 'node:util';
import { Expectations, describeError, sleep } from './expectations.mjs';
import { startLegacyServer, DEFAULT_POOL } from './http-server.mjs';
// The reference conversion (pure computation; the stand-in's defective functions never run here).
import { convert as referenceConvert } from './js-stand-in.mjs';
import { chooseBackend, describeBackend, fallbackNotice, survivors } from './service-host.mjs';
import { WorkerTable } from './worker-table.mjs';

const REQUESTS = 120; // normal requests
const POISONED = 4;
const CONCURRENCY = 8;
const HANG_MS = 5_000;
const WATCHDOG_MS = 60_000;

const started = performance.now();
const elapsed = () => `${((performance.now() - started) / 1000).toFixed(1)} s`;
const out = (line = '') => process.stdout.write(`${line}\n`);
const color = process.stdout.isTTY === true && !process.env.NO_COLOR;

const choice = chooseBackend();
out('process-sandbox · the legacy service over HTTP');
out();
if (choice.error) {
  out(`ERROR: ${choice.error}`);
  process.exit(1);
}
if (choice.fallback) {
  for (const line of fallbackNotice(choice.reason)) out(line);
  out();
}

const diagnostics = [];
const keep = (level) => (obj, msg) => diagnostics.push(`${level}: ${msg ?? JSON.stringify(obj)}`);
const logger = { debug() {}, info() {}, warn: keep('warn'), error: keep('error') };

const app = await startLegacyServer({ backend: choice.backend, logger });
out(`Server: ${app.url}, in this process (pid ${process.pid}); workers run ${describeBackend(choice.backend)}.`);
out(`Pool: ${Object.entries(DEFAULT_POOL).map(([k, v]) => `${k} ${v}`).join(', ')}.`);
// The workers' table, printed once the requests are answered (this demo's narration scrolls).
const table = new WorkerTable(app.pool, { live: false, snapshotMs: Infinity, since: started }).start();

const watchdog = setTimeout(() => {
  out(`\nFAIL: the HTTP demo did not finish within ${WATCHDOG_MS / 1000} s; giving up.`);
  for (const line of diagnostics.slice(-20)) out(`  ${line}`);
  process.exit(1);
}, WATCHDOG_MS);
watchdog.unref();

// ─── The requests ─────────────────────────────────────────────────────────────────────────────────

/** The plan: normal requests of three kinds, with the poisoned ones and the hang spread among them. */
const plan = [];
for (let i = 0; i < REQUESTS; i++) plan.push(['encode', 'decode', 'parse'][i % 3]);
for (let k = 0; k < POISONED; k++) plan.splice(Math.round(((k + 1) * plan.length) / (POISONED + 1)), 0, 'poison');
plan.splice(Math.round(plan.length / 2) + 3, 0, 'hang');

const results = { normal: [], poison: [], hang: [] };

async function request(path, init) {
  const response = await fetch(`${app.url}${path}`, init);
  const body = Buffer.from(await response.arrayBuffer());
  const json = (response.headers.get('content-type') ?? '').startsWith('application/json') ? JSON.parse(body.toString('utf8')) : undefined;
  return { status: response.status, body, json };
}

async function run(kind, n) {
  try {
    if (kind === 'encode' || kind === 'decode') {
      const bytes = randomBytes(randomInt(8 * 1024, 96 * 1024));
      const send = kind === 'encode' ? bytes : referenceConvert(bytes);
      const expected = kind === 'encode' ? referenceConvert(bytes) : bytes;
      const r = await request(`/convert?direction=${kind}`, { method: 'POST', body: send, headers: { 'content-type': 'application/octet-stream' } });
      results.normal.push({ kind, status: r.status, ok: r.status === 200 && r.body.equals(expected), detail: r.json?.message });
    } else if (kind === 'parse') {
      const input = `request=${n};client=http;flag`;
      const r = await request(`/parse?input=${encodeURIComponent(input)}`);
      const ok = r.status === 200 && isDeepStrictEqual(r.json?.result, { request: String(n), client: 'http', flag: true });
      results.normal.push({ kind, status: r.status, ok, detail: r.json?.message });
    } else if (kind === 'poison') {
      const r = await request('/parse?input=POISON');
      results.poison.push({ status: r.status, json: r.json });
      out(`  ${elapsed()}  GET /parse?input=POISON → ${r.status} ${JSON.stringify(r.json)}`);
    } else if (kind === 'hang') {
      const t0 = performance.now();
      const r = await request(`/sleep?ms=${HANG_MS}`);
      results.hang.push({ status: r.status, json: r.json, ms: performance.now() - t0 });
      out(`  ${elapsed()}  GET /sleep?ms=${HANG_MS} → ${r.status} after ${((performance.now() - t0) / 1000).toFixed(2)} s ${JSON.stringify(r.json)}`);
    }
  } catch (error) {
    // A request that got no HTTP response at all: the server was not there.
    (kind === 'poison' ? results.poison : kind === 'hang' ? results.hang : results.normal).push({ kind, status: 0, ok: false, detail: describeError(error) });
  }
}

// The server must answer /health throughout, while workers die underneath.
const health = { ok: 0, failed: 0, pids: new Set() };
let polling = true;
const poller = (async () => {
  while (polling) {
    try {
      const r = await request('/health');
      if (r.status === 200 && r.json?.ok) {
        health.ok++;
        health.pids.add(r.json.pid);
      } else health.failed++;
    } catch {
      health.failed++;
    }
    await sleep(100);
  }
})();

let maxBusy = 0;
const busyWatch = setInterval(() => {
  maxBusy = Math.max(maxBusy, app.pool.stats().workers.filter((w) => w.state === 'busy').length);
}, 20);

out();
out(`▶ ${elapsed()}  ${plan.length} requests, at most ${CONCURRENCY} at a time: ${REQUESTS} normal (POST /convert, GET /parse), ${POISONED} poisoned, 1 that hangs.`);
let next = 0;
await Promise.all(
  Array.from({ length: CONCURRENCY }, async () => {
    while (next < plan.length) {
      const n = next++;
      await run(plan[n], n);
    }
  }),
);
clearInterval(busyWatch);
const stats = await request('/stats').catch((error) => ({ status: 0, json: undefined, error }));
polling = false;
await poller;
out(`▶ ${elapsed()}  All requests answered. GET /stats → ${stats.status}; server counters ${JSON.stringify(stats.json?.server?.byStatus)}`);

table.stop('after the requests');
out(`▶ ${elapsed()}  Closing the server and disposing the pool.`);
const pids = [...app.startedPids];
await app.close();
const left = await survivors(pids, 3_000);
let refused = false;
try {
  await fetch(`${app.url}/health`, { signal: AbortSignal.timeout(2_000) });
} catch {
  refused = true;
}

// ─── The summary ──────────────────────────────────────────────────────────────────────────────────

const expectations = new Expectations();
const bad = results.normal.filter((r) => !r.ok);
expectations.check(
  'normal-requests',
  results.normal.length === REQUESTS && bad.length === 0,
  bad.length === 0
    ? `every normal request got 200 with the right answer: ${results.normal.length} of ${REQUESTS} (conversions checked against a reference computed here)`
    : `${bad.length} of ${results.normal.length} normal requests went wrong; first: ${bad[0].kind} → ${bad[0].status} ${bad[0].detail ?? ''}`,
);

const crashPids = new Set(results.poison.map((r) => r.json?.pid));
const poisonOk = results.poison.length === POISONED && results.poison.every((r) => r.status >= 500 && r.status < 600 && r.json?.error === 'WorkerCrashedError' && r.json?.signal === 'SIGSEGV' && r.json?.pid > 0);
expectations.check(
  'poisoned-requests',
  poisonOk,
  poisonOk
    ? `each of the ${POISONED} poisoned requests got ${[...new Set(results.poison.map((r) => r.status))].join('/')} with a JSON error naming the crash (WorkerCrashedError, SIGSEGV), from ${crashPids.size} different worker pids`
    : `poisoned requests got: ${results.poison.map((r) => `${r.status} ${r.json?.error ?? r.detail ?? ''} ${r.json?.signal ?? ''}`.trim()).join('; ')}`,
);

const hang = results.hang[0];
expectations.check(
  'hung-request',
  hang?.status === 504 && hang.json?.error === 'CallTimeoutError' && hang.ms < HANG_MS,
  `GET /sleep?ms=${HANG_MS} got ${hang?.status} ${hang?.json?.error ?? hang?.detail ?? ''} after ${((hang?.ms ?? 0) / 1000).toFixed(2)} s (methodCallTimeoutMs ${DEFAULT_POOL.methodCallTimeoutMs}): the worker was killed, not the server`,
);

const totals = stats.json?.pool?.totals;
const stayedUp = health.failed === 0 && health.ok > 0 && health.pids.size === 1 && health.pids.has(process.pid) && stats.status === 200;
expectations.check(
  'server-stayed-up',
  stayedUp && totals?.crashes === POISONED && totals?.timeouts === 1,
  `the server (pid ${process.pid}) answered all ${health.ok} health checks made during the run (${health.failed} failed) and GET /stats (${stats.status}): ${totals?.crashes} worker crashes and ${totals?.timeouts} timeout underneath`,
);

expectations.check(
  'concurrency',
  maxBusy >= 2,
  `requests were served concurrently: up to ${maxBusy} workers busy at once (${CONCURRENCY} clients, maxPoolSize ${DEFAULT_POOL.maxPoolSize})`,
);

expectations.check(
  'no-survivors',
  pids.length > 0 && left.length === 0 && refused,
  left.length === 0
    ? `after close, the server refuses connections${refused ? '' : ' (NOT: it still answered)'} and none of the ${pids.length} worker processes started is alive`
    : `after close, worker processes still alive: ${left.join(', ')}`,
);

out();
for (const line of expectations.summary(`the legacy service over HTTP (${choice.backend === 'native' ? 'native C++ addon' : 'pure-JS stand-in'}), ${elapsed()}`, { color })) out(line);
if (!expectations.allHeld && diagnostics.length > 0) {
  out('\nDiagnostics (last lines from the pool and the workers):');
  for (const line of diagnostics.slice(-20)) out(`  ${line}`);
}
process.exitCode = expectations.allHeld ? 0 : 1;

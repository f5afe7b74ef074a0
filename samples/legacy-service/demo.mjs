// The main demo (`npm run demo`): a legacy native library with every classic defect, served to
// concurrent callers through process-sandbox, while a live table shows what happens to the worker
// processes underneath.
//
//   1. Normal traffic: a few concurrent clients convert byte buffers and parse strings, and every
//      result is checked against a reference computed here, in the host.
//   2. While that traffic runs, the defects, one after the other:
//        a segfault      parse('POISON')          → WorkerCrashedError (SIGSEGV), only that call fails
//        a hang          blockingSleep(6000)      → CallTimeoutError after methodCallTimeoutMs, worker killed
//        a memory leak   leakMemory(64), repeated → the worker is recycled for 'memory' (maxMemoryMB)
//        an fd leak      leakFds(20), repeated    → the worker is recycled for 'handles' (maxHandles)
//      and the library's callbacks and cursor: a progress bar driven by its progress callback, and
//      its row cursor streamed to the host row by row (./streams-demo.mjs)
//   3. A summary of what was expected and what happened; exit code 0 only if all of it held,
//      including that no worker process is left alive after dispose.
//
// The workers run the real C++ addon (samples/legacy-addon) when it is built, else a pure-JS
// stand-in with the same defects (the demo says so, and how to build the addon).
// LEGACY_SERVICE_BACKEND=native|js forces one.
import { randomBytes, randomInt } from 'node:crypto';
import { isDeepStrictEqual } from 'node:util';
import { STREAM_WINDOW } from '@process-sandbox/abstractions';
import { CallTimeoutError, WorkerCrashedError } from '@process-sandbox/core';
import { Expectations, describeError, sleep } from './expectations.mjs';
// The reference for conversions: the stand-in's pure computation, identical byte for byte to the
// addon's. Only convert() is used here; the stand-in's defective functions never run in the host.
import { convert as referenceConvert } from './js-stand-in.mjs';
import { chooseBackend, describeBackend, fallbackNotice, MiB, openLegacyService, ownFds, survivors } from './service-host.mjs';
import { WorkerTable } from './worker-table.mjs';
import { showCallbacksAndStreams } from './streams-demo.mjs';

/** The pool's configuration: the limits the defects will run into. */
const POOL = {
  minPoolSize: 2,
  maxPoolSize: 4,
  methodCallTimeoutMs: 2_000, // the hang is killed after this
  maxMemoryMB: 160, // a worker whose resident memory reaches this is recycled
  maxHandles: 64, // a worker with this many open descriptors is recycled
  healthIntervalMs: 200, // how often the host measures each worker (RSS, descriptors)
  shutdownGraceMs: 2_000,
};
const CLIENTS = 3;
const HANG_MS = 6_000;
const LEAK_MB = 64;
const LEAK_FDS = 20;
const MAX_LEAK_CALLS = 10;
/** If the whole demo takes longer than this, something is wrong: say so and fail. */
const WATCHDOG_MS = 60_000;

const started = performance.now();
const elapsed = () => `${((performance.now() - started) / 1000).toFixed(1)} s`;
const out = (line = '') => process.stdout.write(`${line}\n`);
const color = process.stdout.isTTY === true && !process.env.NO_COLOR;
const bold = (text) => (color ? `\x1b[1m${text}\x1b[0m` : text);

// ─── Which library the workers load ───────────────────────────────────────────────────────────────

const choice = chooseBackend();
out(bold('process-sandbox · the legacy service demo'));
out('A legacy native library that segfaults, hangs and leaks memory and file descriptors, served to');
out('concurrent callers from a pool of worker processes. The host process never runs it.');
out();
if (choice.error) {
  out(`ERROR: ${choice.error}`);
  process.exit(1);
}
if (choice.fallback) {
  for (const line of fallbackNotice(choice.reason)) out(line);
  out();
}
out(`Workers run ${describeBackend(choice.backend)}.`);
out(`Pool: ${Object.entries(POOL).map(([k, v]) => `${k} ${v}`).join(', ')}.`);
out(`Host: pid ${process.pid}.`);
out();

// Diagnostics from the pool and the workers' own output, shown only if something goes wrong.
const diagnostics = [];
const keep = (level) => (obj, msg) => diagnostics.push(`${level}: ${msg ?? JSON.stringify(obj)}`);
const logger = { debug() {}, info() {}, warn: keep('warn'), error: keep('error') };

const hostBefore = { rss: process.memoryUsage.rss(), fds: ownFds() };
const svc = await openLegacyService({ backend: choice.backend, ...POOL, logger });
const { service, pool } = svc;
const table = new WorkerTable(pool, { since: started }).start();
const log = (line) => table.log(line);

const watchdog = setTimeout(() => {
  table.stop('watchdog');
  out(`\nFAIL: the demo did not finish within ${WATCHDOG_MS / 1000} s; giving up.`);
  for (const line of diagnostics.slice(-20)) out(`  ${line}`);
  process.exit(1);
}, WATCHDOG_MS);
watchdog.unref();

process.once('SIGINT', () => {
  table.stop('interrupted');
  out('\nInterrupted: disposing the pool…');
  svc.close().finally(() => process.exit(130));
});

// ─── Every call the demo makes goes through here ──────────────────────────────────────────────────

/** Every outcome, by kind: what the summary checks against. */
const calls = { normal: 0, normalOk: 0, normalProblems: [], crashErrors: [] };

/** Runs one call; records WorkerCrashedErrors wherever they come from. Resolves { value } or { error, ms }. */
async function settle(promise) {
  const t0 = performance.now();
  try {
    return { value: await promise, ms: performance.now() - t0 };
  } catch (error) {
    if (error instanceof WorkerCrashedError) calls.crashErrors.push(error);
    return { error, ms: performance.now() - t0 };
  }
}

/** A normal call: it must succeed, and `check(value)` must hold. */
async function normal(what, promise, check) {
  calls.normal++;
  const { value, error } = await settle(promise);
  if (error) calls.normalProblems.push(`${what} failed: ${describeError(error)}`);
  else if (!check(value)) calls.normalProblems.push(`${what} returned a wrong result`);
  else calls.normalOk++;
  return value;
}

/** Concurrent clients calling convert() and parse() with correct inputs until stopped. */
function startTraffic() {
  let running = true;
  const client = async (id) => {
    for (let n = 1; running; n++) {
      if (n % 3 === 0) {
        const input = `client=${id};request=${n};flag`;
        await normal(`parse('${input}')`, service.parse(input), (v) => isDeepStrictEqual({ ...v }, { client: String(id), request: String(n), flag: true }));
      } else {
        const bytes = randomBytes(randomInt(8 * 1024, 128 * 1024));
        const encoded = await normal(`convert(${bytes.length} bytes)`, service.convert(bytes), (v) => Buffer.isBuffer(v) && v.equals(referenceConvert(bytes)));
        if (encoded) await normal(`convert(${bytes.length} bytes, 'decode')`, service.convert(encoded, 'decode'), (v) => Buffer.isBuffer(v) && v.equals(bytes));
      }
      await sleep(randomInt(5, 25));
    }
  };
  const clients = Promise.all(Array.from({ length: CLIENTS }, (_, i) => client(i + 1)));
  return async () => {
    running = false;
    await clients;
  };
}

/** Watches how many workers are busy at once, to show that calls really ran concurrently. */
let maxBusy = 0;
const busyWatch = setInterval(() => {
  const busy = pool.stats().workers.filter((w) => w.state === 'busy').length;
  maxBusy = Math.max(maxBusy, busy);
}, 20);
busyWatch.unref();

/** Recycles as they happen, with the RSS or descriptor count the worker had reached. */
const recycles = [];
pool.on('workerRecycled', ({ pid, reason }) => {
  const w = pool.stats().workers.find((x) => x.pid === pid);
  recycles.push({ pid, reason, rssBytes: w?.rssBytes, handles: w?.handles, calls: w?.calls });
});

async function waitUntil(predicate, timeoutMs) {
  const deadline = performance.now() + timeoutMs;
  while (!predicate() && performance.now() < deadline) await sleep(20);
  return predicate();
}

const expectations = new Expectations();
const facts = {};

try {
  table.snapshot('started');

  // ─── 1. Concurrent normal traffic ─────────────────────────────────────────────────────────────────

  log(`▶ ${elapsed()}  ${CLIENTS} clients start calling convert() and parse() concurrently; every result is checked.`);
  const pids = await Promise.all(Array.from({ length: 6 }, () => normal('pid()', service.pid(), (p) => p > 0 && p !== process.pid)));
  facts.servingPids = new Set(pids.filter(Boolean));
  const stopTraffic = startTraffic();
  await sleep(2_000);
  table.snapshot('normal traffic');

  // ─── 2a. A segfault ─────────────────────────────────────────────────────────────────────────────

  log(`▶ ${elapsed()}  Defect: a segfault. parse('POISON') writes through a null pointer in whichever worker runs it.`);
  facts.poison = await settle(service.parse('POISON'));
  if (facts.poison.error) {
    log(`  → rejected with ${describeError(facts.poison.error)}`);
    facts.poisonPidGone = facts.poison.error.pid > 0 && (await survivors([facts.poison.error.pid])).length === 0;
  } else {
    log(`  → unexpectedly returned ${JSON.stringify(facts.poison.value)}`);
  }
  log('  The host and the other calls carry on; a fresh worker takes its place.');
  await sleep(1_000);
  table.snapshot('after the segfault');

  // ─── 2b. A hang ─────────────────────────────────────────────────────────────────────────────────

  log(`▶ ${elapsed()}  Defect: a hang. blockingSleep(${HANG_MS}) blocks the worker's only thread; methodCallTimeoutMs is ${POOL.methodCallTimeoutMs}.`);
  facts.hang = await settle(service.blockingSleep(HANG_MS));
  if (facts.hang.error) {
    log(`  → rejected after ${(facts.hang.ms / 1000).toFixed(2)} s with ${describeError(facts.hang.error)}`);
    facts.hangPidGone = facts.hang.error.pid > 0 && (await survivors([facts.hang.error.pid])).length === 0;
  } else {
    log(`  → unexpectedly returned ${facts.hang.value} after ${(facts.hang.ms / 1000).toFixed(2)} s`);
  }
  await sleep(800);
  table.snapshot('after the hang');

  // ─── 2c. A memory leak ──────────────────────────────────────────────────────────────────────────

  log(`▶ ${elapsed()}  Defect: a memory leak. leakMemory(${LEAK_MB}) mallocs ${LEAK_MB} MiB and never frees it; maxMemoryMB is ${POOL.maxMemoryMB}.`);
  facts.memory = await leakUntilRecycled('memory', () => service.leakMemory(LEAK_MB), (total) => `that worker has now leaked ${total} MiB`);
  table.snapshot('after the memory leak');

  // ─── 2d. A descriptor leak ──────────────────────────────────────────────────────────────────────

  log(`▶ ${elapsed()}  Defect: a file-descriptor leak. leakFds(${LEAK_FDS}) opens /dev/null ${LEAK_FDS} times and never closes; maxHandles is ${POOL.maxHandles}.`);
  facts.handles = await leakUntilRecycled('handles', () => service.leakFds(LEAK_FDS), (opened) => `opened ${opened} more descriptors`);
  table.snapshot('after the descriptor leak');

  // ─── 2e. Callbacks and streams ──────────────────────────────────────────────────────────────────

  log(`▶ ${elapsed()}  Callbacks and streams: the library's progress callback and its row cursor, across the process boundary.`);
  facts.streams = await showCallbacksAndStreams(service, log);
  table.snapshot('after callbacks and streams');

  // ─── 3. Traffic goes on, then stops ─────────────────────────────────────────────────────────────

  log(`▶ ${elapsed()}  Normal traffic goes on for a moment, then stops.`);
  await sleep(1_200);
  await stopTraffic();
  clearInterval(busyWatch);
  facts.totals = pool.stats().totals;
  table.stop('before dispose');

  out(`▶ ${elapsed()}  Disposing the pool: every worker process must exit.`);
  facts.started = [...svc.startedPids];
  await svc.close();
  facts.survivors = await survivors(facts.started, 3_000);
  facts.livePids = pool.livePids();
  // The host's health sampler (pidusage) keeps a /proc/<pid>/stat reader open per worker for about
  // a second after its last sample; give those a moment to close before counting descriptors.
  await waitUntil(() => hostBefore.fds === undefined || ownFds() <= hostBefore.fds + 2, 3_000);
  facts.hostAfter = { rss: process.memoryUsage.rss(), fds: ownFds() };
  out(`  → disposed; ${facts.started.length} worker processes were started in all, ${facts.survivors.length} still alive.`);
} catch (error) {
  table.stop('error');
  out(`\nThe demo itself failed: ${error?.stack ?? error}`);
  expectations.check('demo', false, `the demo script threw: ${describeError(error)}`);
  await svc.close().catch(() => {});
  facts.started ??= [...svc.startedPids];
  facts.survivors ??= await survivors(facts.started, 3_000);
}

/** Calls `leak` until the pool recycles a worker for `reason` (or MAX_LEAK_CALLS). */
async function leakUntilRecycled(reason, leak, describe) {
  const result = { reason, calls: 0, failed: [], recycle: undefined, pidGone: false };
  for (let i = 0; i < MAX_LEAK_CALLS && !result.recycle; i++) {
    result.calls++;
    const { value, error } = await settle(leak());
    if (error) {
      result.failed.push(error);
      log(`  → failed: ${describeError(error)}`);
    } else {
      log(`  → ${describe(value)}`);
    }
    // Soft limits never interrupt a call: the worker is retired when it is next idle, which the
    // host's health sampling may notice a moment after the reply.
    await waitUntil(() => recycles.some((r) => r.reason === reason), 600);
    result.recycle = recycles.find((r) => r.reason === reason);
  }
  const r = result.recycle;
  if (r) {
    const measure = reason === 'memory' ? `its RSS reached ${Math.round((r.rssBytes ?? 0) / MiB)} MiB` : `it had ${r.handles ?? '?'} open descriptors`;
    log(`  ↻ worker ${r.pid} recycled (${reason}): ${measure}. The leak leaves with the process; no call failed.`);
    result.pidGone = (await survivors([r.pid], 3_000)).length === 0;
  } else {
    log(`  → no worker was recycled for '${reason}' after ${result.calls} calls`);
  }
  return result;
}

// ─── The summary ──────────────────────────────────────────────────────────────────────────────────

const t = facts.totals;
if (t && facts.hostAfter) {
  const problems = calls.normalProblems;
  expectations.check(
    'normal-calls',
    problems.length === 0 && calls.normal >= 20 && calls.normalOk === calls.normal,
    problems.length === 0
      ? `every normal call succeeded with the right result: ${calls.normalOk} of ${calls.normal} (conversions matched a reference computed in the host)`
      : `${problems.length} of ${calls.normal} normal calls went wrong; first: ${problems[0]}`,
  );

  expectations.check(
    'concurrency',
    maxBusy >= 2 && facts.servingPids.size >= 2 && !facts.servingPids.has(process.pid),
    `calls ran concurrently: up to ${maxBusy} workers busy at once for ${CLIENTS} clients; 6 simultaneous pid() calls were served by ${facts.servingPids.size} processes, none of them the host`,
  );

  const poison = facts.poison?.error;
  const onlyPoison = calls.crashErrors.length === 1 && calls.crashErrors[0] === poison;
  expectations.check(
    'segfault',
    poison instanceof WorkerCrashedError && poison.signal === 'SIGSEGV' && poison.method === 'parse' && onlyPoison && facts.poisonPidGone,
    poison instanceof WorkerCrashedError
      ? `exactly the poisoned call failed: WorkerCrashedError, signal ${poison.signal}, worker ${poison.pid} ${facts.poisonPidGone ? 'gone' : 'STILL ALIVE'}; ${calls.crashErrors.length - (onlyPoison ? 1 : 0)} other calls saw a crash`
      : `parse('POISON') did not reject with WorkerCrashedError: ${facts.poison?.error ? describeError(poison) : 'it returned'}`,
  );

  const hang = facts.hang?.error;
  expectations.check(
    'hang',
    hang instanceof CallTimeoutError && facts.hang.ms < HANG_MS && facts.hangPidGone,
    hang instanceof CallTimeoutError
      ? `blockingSleep(${HANG_MS}) rejected with CallTimeoutError after ${(facts.hang.ms / 1000).toFixed(2)} s (methodCallTimeoutMs ${POOL.methodCallTimeoutMs}); worker ${hang.pid} ${facts.hangPidGone ? 'was killed' : 'is STILL ALIVE'}`
      : `blockingSleep(${HANG_MS}) did not reject with CallTimeoutError: ${hang ? describeError(hang) : `it returned after ${(facts.hang?.ms / 1000).toFixed(2)} s`}`,
  );

  for (const { label, what, limit } of [
    { label: 'memory-recycle', what: facts.memory, limit: `maxMemoryMB ${POOL.maxMemoryMB}` },
    { label: 'handles-recycle', what: facts.handles, limit: `maxHandles ${POOL.maxHandles}` },
  ]) {
    const r = what?.recycle;
    const reached = r && (what.reason === 'memory' ? `RSS ${Math.round((r.rssBytes ?? 0) / MiB)} MiB` : `${r.handles} descriptors`);
    expectations.check(
      label,
      r !== undefined && what.failed.length === 0 && what.pidGone,
      r
        ? `worker ${r.pid} was recycled for '${what.reason}' at ${reached} (${limit}) after ${what.calls} leaking calls, ${what.failed.length} of which failed; ${what.pidGone ? 'it has exited' : 'it is STILL ALIVE'}`
        : `no worker was recycled for '${what?.reason}' after ${what?.calls} leaking calls (${limit})`,
    );
  }

  const { progress, rows, early } = facts.streams ?? {};
  expectations.check(
    'progress-callback',
    progress?.calls === 32 && progress.ordered && progress.last === 100 && progress.correct,
    progress
      ? `convertWithProgress() called the host's callback ${progress.calls} times, in order, up to ${progress.last}%, and its result matched the reference`
      : 'convertWithProgress() did not run',
  );
  expectations.check(
    'row-cursor',
    rows?.count === 50_000 && rows.wrong === 0 && rows.maxBuffered <= STREAM_WINDOW && early?.read === 100 && early.openAfter === 0,
    rows
      ? `rows() streamed ${rows.count} rows (${rows.wrong} wrong, ${rows.perSecond} rows/s), never more than ${rows.maxBuffered} buffered in the host (window ${STREAM_WINDOW}); a reader that stopped after ${early?.read} rows left ${early?.openAfter} cursors open`
      : 'rows() did not run',
  );

  expectations.check(
    'pool-totals',
    t.failed === 2 && t.crashes === 1 && t.timeouts === 1 && t.recycles.memory >= 1 && t.recycles.handles >= 1,
    `the pool's own totals agree: ${t.calls} calls, ${t.succeeded} succeeded, ${t.failed} failed (the segfault and the hang), ${t.crashes} crash, ${t.timeouts} timeout, recycles: memory ${t.recycles.memory}, handles ${t.recycles.handles}`,
  );

  const hostRssGrowth = (facts.hostAfter.rss - hostBefore.rss) / MiB;
  const leakedMb = (facts.memory?.calls ?? 0) * LEAK_MB;
  const leakedFds = (facts.handles?.calls ?? 0) * LEAK_FDS;
  const fdsBack = hostBefore.fds === undefined || facts.hostAfter.fds <= hostBefore.fds + 2;
  expectations.check(
    'host-unharmed',
    fdsBack,
    `the host (pid ${process.pid}) called no legacy code: its open descriptors went ${hostBefore.fds ?? '?'} → ${facts.hostAfter.fds ?? '?'} while workers leaked ${leakedFds}; its RSS moved by ${hostRssGrowth.toFixed(0)} MiB while workers leaked ${leakedMb} MiB`,
  );
}

expectations.check(
  'no-survivors',
  facts.started.length > 0 && facts.survivors.length === 0 && (facts.livePids ?? []).length === 0,
  facts.survivors.length === 0
    ? `after dispose, none of the ${facts.started.length} worker processes the pool started is alive (checked through ${process.platform === 'linux' ? '/proc' : 'kill(pid, 0)'})`
    : `after dispose, worker processes still alive: ${facts.survivors.join(', ')}`,
);

out();
for (const line of expectations.summary(`the legacy service demo (${choice.backend === 'native' ? 'native C++ addon' : 'pure-JS stand-in'}), ${elapsed()}`, { color })) out(line);
if (!expectations.allHeld && diagnostics.length > 0) {
  out('\nDiagnostics (last lines from the pool and the workers):');
  for (const line of diagnostics.slice(-20)) out(`  ${line}`);
}
process.exitCode = expectations.allHeld ? 0 : 1;

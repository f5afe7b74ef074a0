// The chaos engine shared by test/chaos.test.mjs (the quick version) and test/soak.mjs (the long
// one): a seeded random mix of normal calls and faults, kept under load against a pool of two
// workers, with every call's settlement counted and checked against what its kind implies.
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { CallTimeoutError, ProcessProxy, RemoteError, WorkerCrashedError } from '@process-sandbox/core';
import { fixture } from './pools.mjs';
import { readFileSync } from 'node:fs';
import { isAlive, markedProcesses, openFds, poll } from './processes.mjs';

/** The start time of `pid` (clock ticks since boot), which tells a process from a later one with its recycled pid. */
function startTime(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}

/** mulberry32: a small seeded PRNG, so a failing mix can be replayed from its seed. */
export function prng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The seed: CHAOS_SEED from the environment (to replay), else a fresh one. */
export function chaosSeed() {
  const given = process.env.CHAOS_SEED;
  if (given !== undefined && given !== '') {
    const seed = Number(given);
    if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) throw new Error(`CHAOS_SEED must be a whole number from 0 to 2^32-1, got '${given}'`);
    return seed;
  }
  return Math.floor(Math.random() * 0x100000000);
}

/** Share of each kind of call, per thousand. */
export const DEFAULT_MIX = Object.freeze({
  normal: 880,
  thrown: 50,
  exit: 15,
  segv: 15,
  hang: 14,
  leakMemory: 13,
  leakFds: 13,
});

export const KINDS = Object.keys(DEFAULT_MIX);

/** Pool settings of the chaos runs. */
export const POOL = Object.freeze({
  maxPoolSize: 2,
  minPoolSize: 2,
  // Normal calls never come near this; only the hang calls time out, on their own per-call limit.
  methodCallTimeoutMs: 30_000,
  hangTimeoutMs: 250,
  // A fresh worker sits at ~50 MiB resident; one leakMemory call (96 MiB) takes it past the limit.
  maxMemoryMB: 128,
  leakMemoryMB: 96,
  // A fresh worker has ~25 descriptors open; one leakFds call (48) takes it past the limit.
  maxHandles: 64,
  leakFds: 48,
  healthIntervalMs: 200,
});

/** Forces a full garbage collection, so that RSS reflects what is retained, not what is garbage. */
let gc;
export function collectGarbage() {
  if (!gc) {
    setFlagsFromString('--expose-gc');
    gc = runInNewContext('gc');
  }
  gc();
}

function hostFootprint() {
  collectGarbage();
  const { rss, heapUsed } = process.memoryUsage();
  return { fds: openFds(), rssBytes: rss, heapUsedBytes: heapUsed };
}

/** What a kind of call must end with: undefined when it did, else what went wrong. */
function verify(record, settled) {
  const { kind, tag } = record;
  const { ok, value, error } = settled;
  const wrong = (what) => `${kind} call #${tag}: ${what}`;
  const describe = () => (ok ? `value ${JSON.stringify(value)}` : `${error?.constructor?.name} ${error?.code}: ${error?.message}`);
  switch (kind) {
    case 'normal':
    case 'leakMemory':
    case 'leakFds':
      if (!ok) return wrong(`expected a value, got ${describe()}`);
      if (value?.tag !== tag) return wrong(`got another call's answer: ${describe()}`);
      return undefined;
    case 'thrown':
      if (ok || !(error instanceof RemoteError)) return wrong(`expected a RemoteError, got ${describe()}`);
      if (error.code !== 'E_CHAOS' || !error.message.includes(`chaos thrown ${tag}`)) return wrong(`got another call's error: ${describe()}`);
      return undefined;
    case 'exit':
      if (ok || !(error instanceof WorkerCrashedError)) return wrong(`expected a WorkerCrashedError, got ${describe()}`);
      if (error.exitCode !== record.exitCode || error.method !== 'exit') return wrong(`expected exit code ${record.exitCode} of exit(), got ${describe()}`);
      return undefined;
    case 'segv':
      if (ok || !(error instanceof WorkerCrashedError)) return wrong(`expected a WorkerCrashedError, got ${describe()}`);
      if (error.signal !== 'SIGSEGV' || error.method !== 'segv') return wrong(`expected SIGSEGV in segv(), got ${describe()}`);
      return undefined;
    case 'hang':
      if (ok || !(error instanceof CallTimeoutError)) return wrong(`expected a CallTimeoutError, got ${describe()}`);
      if (error.method !== 'hang') return wrong(`got another call's timeout: ${describe()}`);
      return undefined;
    default:
      return wrong('unknown kind');
  }
}

/**
 * Runs the mix. Stops issuing calls after `calls` calls or once `durationMs` has passed, whichever
 * comes first; then waits for every call to settle (at most `settleTimeoutMs`), disposes the pool,
 * and measures what is left. Returns the report; asserts nothing itself.
 */
export async function runChaos({
  seed,
  calls = 3000,
  durationMs = Infinity,
  concurrency = 16,
  mix = DEFAULT_MIX,
  settleTimeoutMs = 60_000,
  progress,
} = {}) {
  const random = prng(seed);
  const thresholds = [];
  let sum = 0;
  for (const kind of KINDS) thresholds.push([kind, (sum += mix[kind] ?? 0)]);
  // Crash calls (exit, segv) come as they are drawn, bursts included: a worker killed by the call it
  // ran is that call's failure, never a start-up crash loop, so the circuit breaker must stay closed.
  const pick = () => {
    const r = random() * sum;
    return thresholds.find(([, t]) => r < t)[0];
  };

  // Warm-up: the host's own modules and first-use allocations are not what we measure.
  const warm = await ProcessProxy.create({ workerModule: fixture('chaos.mjs'), workerExport: 'Chaos', maxPoolSize: 1 });
  await warm.normal(0, 0);
  await ProcessProxy.poolOf(warm).dispose();
  const before = hostFootprint();

  const proxy = await ProcessProxy.create({
    workerModule: fixture('chaos.mjs'),
    workerExport: 'Chaos',
    maxPoolSize: POOL.maxPoolSize,
    minPoolSize: POOL.minPoolSize,
    methodCallTimeoutMs: POOL.methodCallTimeoutMs,
    maxMemoryMB: POOL.maxMemoryMB,
    maxHandles: POOL.maxHandles,
    healthIntervalMs: POOL.healthIntervalMs,
    // CHAOS_PIPELINE_DEPTH=<n>: the run with that many calls sent ahead to a busy worker.
    ...(process.env.CHAOS_PIPELINE_DEPTH ? { pipelineDepth: Number(process.env.CHAOS_PIPELINE_DEPTH) } : {}),
  });
  const pool = ProcessProxy.poolOf(proxy);
  const hanging = ProcessProxy.with(proxy, { timeoutMs: POOL.hangTimeoutMs });
  // Every worker ever started, by pid and start time: pids are recycled (pid_max is often 32768).
  const workers = new Map();
  const track = (pid) => workers.set(`${pid}/${startTime(pid)}`, pid);
  for (const pid of pool.livePids()) track(pid);
  pool.on('workerStarted', ({ pid }) => track(pid));
  const events = { callSettled: 0, outcomes: {}, crashes: 0, timeouts: 0, recycled: {}, circuitOpen: 0 };
  pool.on('callSettled', ({ outcome }) => {
    events.callSettled++;
    events.outcomes[outcome] = (events.outcomes[outcome] ?? 0) + 1;
  });
  // How each worker ended, by pid, kept from its exit until a crash call that ran on it claims it.
  const crashedPending = new Set();
  const recycledPending = new Map();
  const exits = new Map();
  pool.on('workerExited', ({ pid }) => {
    exits.set(pid, { crashed: crashedPending.has(pid), retiredFor: recycledPending.get(pid) });
    crashedPending.delete(pid);
    recycledPending.delete(pid);
  });
  // Normal calls issued and unsettled when a worker was killed under another call: queued, or sent
  // ahead to the dying worker. Each must still succeed (checked like every normal call).
  const witnesses = () => {
    for (const record of unsettled.values()) if (record.kind === 'normal') record.witnessedKill = true;
  };
  pool.on('workerCrashed', ({ pid }) => {
    events.crashes++;
    crashedPending.add(pid);
    witnesses();
  });
  pool.on('callTimedOut', () => {
    events.timeouts++;
    witnesses();
  });
  pool.on('workerRecycled', ({ pid, reason }) => {
    events.recycled[reason] = (events.recycled[reason] ?? 0) + 1;
    recycledPending.set(pid, reason);
  });
  // Crash calls whose worker the pool did not count as crashed: it had been retired (recycled) already.
  const crashesOnRetired = [];

  const issued = Object.fromEntries(KINDS.map((k) => [k, 0]));
  const succeeded = Object.fromEntries(KINDS.map((k) => [k, 0]));
  const failed = Object.fromEntries(KINDS.map((k) => [k, 0]));
  const outcomes = {}; // by kind: { 'value' | error class name: count }
  const mismatches = [];
  const unsettled = new Map(); // tag -> record
  const witnessed = { succeeded: 0, failed: 0 };
  let settledTwice = 0;
  let settlements = 0;
  const started = performance.now();
  let inFlight = 0;
  let wake;

  const send = (tag) => {
    const kind = pick(tag);
    const record = { tag, kind, settlements: 0 };
    let promise;
    switch (kind) {
      case 'normal':
        promise = proxy.normal(tag, random() < 0.8 ? 0 : Math.floor(random() * 4));
        break;
      case 'thrown':
        promise = proxy.thrown(tag);
        break;
      case 'exit':
        record.exitCode = 3 + Math.floor(random() * 60);
        promise = proxy.exit(record.exitCode);
        break;
      case 'segv':
        promise = proxy.segv();
        break;
      case 'hang':
        promise = hanging.hang(random() < 0.5);
        break;
      case 'leakMemory':
        promise = proxy.leakMemory(tag, POOL.leakMemoryMB);
        break;
      case 'leakFds':
        promise = proxy.leakFds(tag, POOL.leakFds);
        break;
    }
    issued[kind]++;
    unsettled.set(tag, record);
    inFlight++;
    const settle = (result) => {
      record.settlements++;
      settlements++;
      if (record.settlements > 1) {
        settledTwice++;
        return;
      }
      unsettled.delete(tag);
      inFlight--;
      (result.ok ? succeeded : failed)[kind]++;
      if (record.witnessedKill) (result.ok ? witnessed.succeeded++ : witnessed.failed++);
      const name = result.ok ? 'value' : result.error?.constructor?.name ?? 'non-error';
      outcomes[kind] ??= {};
      outcomes[kind][name] = (outcomes[kind][name] ?? 0) + 1;
      const problem = verify(record, result);
      if (problem && mismatches.length < 50) mismatches.push(problem);
      else if (problem) mismatches.length++;
      if (result.error?.code === 'ERR_PS_CIRCUIT_OPEN') events.circuitOpen++;
      if ((kind === 'exit' || kind === 'segv') && result.error instanceof WorkerCrashedError) {
        // The worker's exit was reported (synchronously, right after the rejection) before this runs.
        const exit = exits.get(result.error.pid);
        exits.delete(result.error.pid);
        if (!exit?.crashed) crashesOnRetired.push({ tag, kind, pid: result.error.pid, retiredFor: exit?.retiredFor });
      }
      wake?.();
    };
    promise.then((value) => settle({ ok: true, value }), (error) => settle({ ok: false, error }));
  };

  let tag = 0;
  let lastReport = started;
  while (tag < calls && performance.now() - started < durationMs) {
    while (inFlight >= concurrency) await new Promise((resolve) => (wake = resolve));
    send(++tag);
    // Let replies in now and then; issuing is otherwise synchronous up to the window.
    if (tag % concurrency === 0) await new Promise((resolve) => setImmediate(resolve));
    if (progress && performance.now() - lastReport > 10_000) {
      lastReport = performance.now();
      const { fds, rssBytes, heapUsedBytes } = hostFootprint();
      progress({ calls: tag, elapsedMs: Math.round(lastReport - started), workersStarted: workers.size, hostFds: fds, hostRssMiB: Math.round(rssBytes / 1048576), hostHeapMiB: +(heapUsedBytes / 1048576).toFixed(1) });
    }
  }
  const issuing = performance.now() - started;
  // Not a throwing wait: calls still unsettled at the deadline are reported by checkReport.
  await poll(() => inFlight === 0, { timeoutMs: settleTimeoutMs, intervalMs: 20 });
  const runMs = performance.now() - started;
  const stats = pool.stats();
  // Late double settlements would show up here.
  await new Promise((resolve) => setTimeout(resolve, 50));

  await pool.dispose();
  const disposedAt = performance.now();
  const survivors = () => [...workers].filter(([key, pid]) => isAlive(pid) && key === `${pid}/${startTime(pid)}`).map(([, pid]) => pid);
  await poll(() => survivors().length === 0, { timeoutMs: 10_000, intervalMs: 20 });
  const aliveAfter = survivors();
  const markedAfter = markedProcesses();

  // The host's footprint: poll until it is back near the baseline, or the deadline passes.
  let after = hostFootprint();
  const fdSlack = 2;
  const rssSlackBytes = 48 * 1024 * 1024;
  const footprintDeadline = Date.now() + 10_000;
  while ((after.fds > before.fds + fdSlack || after.rssBytes > before.rssBytes + rssSlackBytes) && Date.now() < footprintDeadline) {
    await new Promise((resolve) => setTimeout(resolve, 250));
    after = hostFootprint();
  }

  return {
    seed,
    calls: tag,
    issuingMs: Math.round(issuing),
    runMs: Math.round(runMs),
    disposeMs: Math.round(performance.now() - disposedAt),
    issued,
    succeeded,
    failed,
    outcomes,
    mismatches,
    settlements,
    settledTwice,
    unsettled: [...unsettled.values()],
    events,
    totals: stats.totals,
    circuit: stats.circuit,
    workersStarted: workers.size,
    crashesOnRetired,
    normalCallsThroughKills: witnessed,
    aliveAfter,
    markedAfter,
    host: { before, after, fdSlack, rssSlackBytes },
  };
}

/** The report as a few readable lines. */
export function summarize(report) {
  const mb = (b) => `${(b / 1048576).toFixed(1)} MiB`;
  const kinds = KINDS.map((k) => `${k} ${report.issued[k]}`).join(', ');
  const lines = [
    `chaos report (seed ${report.seed})`,
    `  ${report.calls} calls in ${(report.runMs / 1000).toFixed(1)} s: ${kinds}`,
    `  outcomes by kind: ${JSON.stringify(report.outcomes)}`,
    `  normal calls in flight (queued or sent ahead) while another call's worker was killed: ${report.normalCallsThroughKills.succeeded} succeeded, ${report.normalCallsThroughKills.failed} failed`,
    `  settlements ${report.settlements} (twice: ${report.settledTwice}, never: ${report.unsettled.length}); mismatches ${report.mismatches.length}`,
    `  pool: crashes ${report.totals.crashes} (+${report.crashesOnRetired.length} on workers already retired), timeouts ${report.totals.timeouts}, recycles ${JSON.stringify(report.totals.recycles)}, circuit ${report.circuit}`,
    `  workers started ${report.workersStarted}; alive after dispose: ${report.aliveAfter.length}; marked processes left: ${report.markedAfter.length}`,
    `  host fds ${report.host.before.fds} -> ${report.host.after.fds}; host RSS ${mb(report.host.before.rssBytes)} -> ${mb(report.host.after.rssBytes)}, V8 heap used ${mb(report.host.before.heapUsedBytes)} -> ${mb(report.host.after.heapUsedBytes)} (after a forced GC)`,
  ];
  return lines.join('\n');
}

/** Every check the chaos runs must pass, as a list of failures (empty: all passed). */
export function checkReport(r) {
  const problems = [];
  if (r.unsettled.length > 0) problems.push(`${r.unsettled.length} call(s) never settled: ${r.unsettled.slice(0, 5).map((c) => `${c.kind} #${c.tag}`).join(', ')}`);
  if (r.settledTwice > 0) problems.push(`${r.settledTwice} second settlement(s)`);
  if (r.settlements !== r.calls) problems.push(`${r.settlements} settlements for ${r.calls} calls`);
  if (r.events.callSettled !== r.calls) problems.push(`${r.events.callSettled} callSettled events for ${r.calls} calls`);
  if (r.totals.calls !== r.calls) problems.push(`the pool counted ${r.totals.calls} calls, ${r.calls} were made`);
  if (r.mismatches.length > 0) problems.push(`${r.mismatches.length} call(s) with the wrong outcome, e.g. ${r.mismatches.slice(0, 5).join(' | ')}`);
  if (r.normalCallsThroughKills.failed > 0) problems.push(`${r.normalCallsThroughKills.failed} normal call(s) failed that were in flight while another call's worker was killed`);
  if (r.events.circuitOpen > 0) problems.push(`the circuit breaker opened (${r.events.circuitOpen} calls refused)`);
  // Each exit/segv call ends its worker, counted as a crash, except (known gap, see docs/reliability.md)
  // when that worker had already been retired by a leak and ran the call while draining: it then counts
  // as a recycle only. The call itself still gets its WorkerCrashedError (checked above).
  const unexplained = r.crashesOnRetired.filter((c) => c.retiredFor === undefined);
  if (unexplained.length > 0) problems.push(`crash calls whose worker was neither counted as crashed nor retired: ${JSON.stringify(unexplained)}`);
  if (r.totals.crashes !== r.issued.exit + r.issued.segv - r.crashesOnRetired.length) {
    problems.push(`${r.totals.crashes} crashes counted for ${r.issued.exit + r.issued.segv} exit/segv calls (${r.crashesOnRetired.length} on retired workers)`);
  }
  if (r.totals.timeouts !== r.issued.hang) problems.push(`${r.totals.timeouts} timeouts for ${r.issued.hang} hang calls`);
  for (const [kind, reason] of [['leakMemory', 'memory'], ['leakFds', 'handles']]) {
    const recycles = r.totals.recycles[reason];
    // One recycle per leaking worker: at least one, at most one per leak call (two leaks can meet in one worker).
    if (r.issued[kind] > 0 && (recycles < 1 || recycles > r.issued[kind])) problems.push(`${recycles} '${reason}' recycles for ${r.issued[kind]} ${kind} calls`);
  }
  if (r.aliveAfter.length > 0) problems.push(`worker(s) alive after dispose: ${r.aliveAfter.join(', ')}`);
  if (r.host.after.fds > r.host.before.fds + r.host.fdSlack) problems.push(`host descriptors ${r.host.before.fds} -> ${r.host.after.fds}`);
  if (r.host.after.rssBytes > r.host.before.rssBytes + r.host.rssSlackBytes) problems.push(`host RSS ${r.host.before.rssBytes} -> ${r.host.after.rssBytes}`);
  return problems;
}

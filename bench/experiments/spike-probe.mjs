#!/usr/bin/env node
/**
 * Which calls are slow during steady recycling, and why (docs/benchmarks.md, "Issue 15: the corked
 * pipeline", recycling spike). The compare workload (one caller, a call every 20 ms, a worker retired
 * after every 5 calls), with each call's circumstances logged:
 *
 *   node bench/experiments/spike-probe.mjs [CALLS=300] [--no-recycle] [--json]
 *
 * With --no-recycle, the same without processRecycleThreshold: the machine's own tail, as a control.
 *
 * Per call: its latency; the n-th call of the worker that served it (1 = its first); whether a free
 * worker was idle when the call was made; the spares and their states; how long since the serving
 * worker became ready; how late the 20 ms timer fired (the host's own event-loop delay); how many
 * workers were starting. Prints the slowest calls and the median latency by each circumstance.
 */
import { readFileSync } from 'node:fs';
import { ProcessProxy } from '@process-sandbox/core';

const now = () => Number(process.hrtime.bigint()) / 1e6;

const args = process.argv.slice(2);
const calls = Number(args.find((a) => /^\d+$/.test(a)) ?? 300);
const every = 5;
const gapMs = 20;
delete process.env.NODE_EXTRA_CA_CERTS;

const proxy = await ProcessProxy.create({
  workerModule: new URL('./spike-worker.mjs', import.meta.url),
  workerExport: 'Probe',
  minPoolSize: 1,
  maxPoolSize: 1,
  ...(args.includes('--no-recycle') ? {} : { processRecycleThreshold: every }),
});
const pool = ProcessProxy.poolOf(proxy);
const spawnedAt = new Map();
const readyAt = new Map();
const startMs = [];
pool.on('workerStarted', ({ pid }) => spawnedAt.set(pid, performance.now()));
pool.on('workerReady', ({ pid }) => {
  readyAt.set(pid, performance.now());
  if (spawnedAt.has(pid)) startMs.push(performance.now() - spawnedAt.get(pid));
});
const served = new Map();
// As bench/compare.mjs: past the first retirement, then four more at the measured pace, unmeasured.
for (let i = 0; i < every * 2; i++) await proxy.stamp(i);
for (let i = 0; i < every * 4; i++) {
  await new Promise((resolve) => setTimeout(resolve, gapMs));
  await proxy.stamp(i);
}

const rows = [];
for (let i = 0; i < calls; i++) {
  const t = performance.now();
  await new Promise((resolve) => setTimeout(resolve, gapMs));
  const late = performance.now() - t - gapMs;
  const s = pool.stats();
  const free = s.workers.some((w) => w.state === 'idle' && !w.spare);
  const spares = s.workers.filter((w) => w.spare).map((w) => w.state[0]).join('');
  const starting = s.workers.filter((w) => w.state === 'spawning' || w.state === 'handshaking').length;
  const running = Number(readFileSync('/proc/loadavg', 'utf8').split(' ')[3].split('/')[0]);
  const h0 = now();
  const t0 = performance.now();
  const [, pid, ran] = await proxy.stamp(i);
  const ms = performance.now() - t0;
  const there = ran - h0;
  const back = now() - ran;
  const nth = (served.get(pid) ?? 0) + 1;
  served.set(pid, nth);
  rows.push({ i, ms, there, back, running, nth, free, spares, starting, sinceReady: readyAt.has(pid) ? t0 - readyAt.get(pid) : NaN, late });
}
await pool.dispose();

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.floor(s.length / 2)] : NaN;
};
const pct = (xs, p) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(p * s.length))];
};
const all = rows.map((r) => r.ms);
const summary = {
  calls,
  load: (await import('node:os')).loadavg()[0],
  p50: median(all),
  p99: pct(all, 0.99),
  startMsMedian: median(startMs),
  // per n-th call of a worker: median latency (host→method + method→host), p90 latency (of method→host)
  byNth: Object.fromEntries(
    [1, 2, 3, 4, 5].map((n) => {
      const of = rows.filter((r) => r.nth === n);
      const f = (k) => +median(of.map((r) => r[k])).toFixed(2);
      return [n, `${f('ms')} (${f('there')} + ${f('back')}), p90 ${pct(of.map((r) => r.ms), 0.9).toFixed(2)} (back p90 ${pct(of.map((r) => r.back), 0.9).toFixed(2)})`];
    }),
  ),
  freeYes: median(rows.filter((r) => r.free).map((r) => r.ms)),
  freeNo: median(rows.filter((r) => !r.free).map((r) => r.ms)),
  noFreeCalls: rows.filter((r) => !r.free).length,
  // the calls over 3× the median, by what they had in common
  over3x: (() => {
    const slow = rows.filter((r) => r.ms > 3 * median(all));
    return { calls: slow.length, noFreeWorker: slow.filter((r) => !r.free).length, firstOnWorker: slow.filter((r) => r.free && r.nth === 1).length, other: slow.filter((r) => r.free && r.nth > 1).length };
  })(),
  thereP50: median(rows.map((r) => r.there)),
  backP50: median(rows.map((r) => r.back)),
  runnableP50: median(rows.map((r) => r.running)),
};
if (args.includes('--json')) console.log(JSON.stringify({ summary, rows }));
else {
  console.log(summary);
  console.log('slowest calls:');
  for (const r of [...rows].sort((a, b) => b.ms - a.ms).slice(0, 12)) {
    console.log(`  #${r.i} ${r.ms.toFixed(2)} ms (there ${r.there.toFixed(2)}, back ${r.back.toFixed(2)}) runnable=${r.running} nth=${r.nth} free=${r.free} spares=${r.spares || '-'} starting=${r.starting} sinceReady=${r.sinceReady.toFixed(0)} ms timerLate=${r.late.toFixed(1)} ms`);
  }
}

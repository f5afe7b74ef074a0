#!/usr/bin/env node
/**
 * Where a worker's start goes, next to the floor, interleaved round by round on the same machine
 * (docs/benchmarks.md, "Worker start"):
 *
 *   node bench/experiments/worker-start.mjs [ROUNDS=15] [--marks]
 *
 *   floor   `node -e` + connect (bench/lib/floor.mjs): spawn → connected → one echo back
 *   start   ProcessProxy.create() → first echo result, one worker (created: create() resolved, the
 *           worker Ready), each from create()
 *   --marks the worker also runs with `-r bench/experiments/start-marks.cjs`, which records
 *           process.uptime() (from the worker's exec) when the preload runs, when the worker's own
 *           code starts, when its Hello is written, when Init arrives and when Ready is sent;
 *           the worker runtime is read as it is built (no change to it): the marks come from
 *           wrapping the channel's socket writes and reads
 *
 * NODE_EXTRA_CA_CERTS is unset for every child, as bench/compare.mjs does. Prints median (min–max)
 * per stage, and the load average at the start and the end.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ProcessProxy } from '@process-sandbox/core';
import { startFloor } from '../lib/floor.mjs';

const args = process.argv.slice(2);
const rounds = Number(args.find((a) => /^\d+$/.test(a)) ?? 15);
const withMarks = args.includes('--marks');
delete process.env.NODE_EXTRA_CA_CERTS;
const dir = mkdtempSync(join(os.tmpdir(), 'ps-start-'));
const marksFile = join(dir, 'marks.log');
const MARKS = fileURLToPath(new URL('./start-marks.cjs', import.meta.url));

async function floor() {
  const t0 = performance.now();
  const h = await startFloor(dir);
  const connected = performance.now() - t0;
  if ((await h.call('echo', 7)) !== 7) throw new Error('wrong echo');
  const firstResult = performance.now() - t0;
  await h.close();
  return { connected, firstResult };
}

async function start() {
  const t = {};
  rmSync(marksFile, { force: true });
  const t0 = performance.now();
  const proxy = await ProcessProxy.create({
    workerModule: new URL('../workers/sandbox.mjs', import.meta.url),
    workerExport: 'Echo',
    minPoolSize: 1,
    maxPoolSize: 1,
    ...(withMarks ? { execArgv: ['-r', MARKS], env: { ...process.env, START_MARKS: marksFile } } : {}),
  });
  const pool = ProcessProxy.poolOf(proxy);
  t.created = performance.now() - t0;
  if ((await proxy.echo(7)) !== 7) throw new Error('wrong echo');
  t.firstResult = performance.now() - t0;
  await pool.dispose();
  if (withMarks) {
    for (const line of readFileSync(marksFile, 'utf8').trim().split('\n')) {
      const [name, ms] = line.split('\t');
      t[`worker: ${name}`] ??= Number(ms);
    }
  }
  return t;
}

const rows = {};
const push = (name, values) => {
  for (const [k, v] of Object.entries(values)) (rows[`${name} ${k}`] ??= []).push(v);
};
const load0 = os.loadavg()[0];
await start(); // loads core in this process, so that no round pays for it
for (let r = 0; r < rounds; r++) {
  const order = [() => floor().then((v) => push('floor', v)), () => start().then((v) => push('start', v))];
  for (let i = 0; i < order.length; i++) await order[(i + r) % order.length]();
}
rmSync(dir, { recursive: true, force: true });
const median = (a) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];
for (const [name, values] of Object.entries(rows)) {
  console.log(`${name.padEnd(40)} ${median(values).toFixed(1).padStart(7)} ms  (${Math.min(...values).toFixed(1)}–${Math.max(...values).toFixed(1)})`);
}
console.log(`rounds ${rounds}; load average ${load0.toFixed(2)} → ${os.loadavg()[0].toFixed(2)} on ${os.cpus().length} cores; node ${process.version}`);

#!/usr/bin/env node
/**
 * Where a worker's start goes, against the floor, interleaved round by round on the same machine:
 *
 *   node bench/experiments/worker-start.mjs [ROUNDS] [BIN...]
 *
 *   floor   `node -e <connect>`: spawn → a Unix socket connected (nothing loaded but Node itself)
 *   start   ProcessProxy.create() → first echo result, one worker, with the stages the pool reports:
 *           spawn (workerStarted) and ready (workerReady), relative to create()
 *   BIN     with PROCESS_SANDBOX_WORKER_BIN unset, the bin core ships; each extra BIN argument adds a
 *           row spawning `node BIN` with no channel (it exits 64 after loading): module loading alone
 *
 * Prints median (min–max) per row, and the 1-minute load average at the start and the end.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import os from 'node:os';
import { join } from 'node:path';
import { ProcessProxy } from '@process-sandbox/core';

const [roundsArg, ...bins] = process.argv.slice(2);
const rounds = Number(roundsArg ?? 15);
const dir = mkdtempSync(join(os.tmpdir(), 'ps-start-'));
const path = join(dir, 'floor.sock');
const server = createServer();
await new Promise((resolve) => server.listen(path, resolve));
const FLOOR = `require('net').connect(${JSON.stringify(path)}).on('data', function (d) { this.end(d); })`;

async function floor() {
  const t0 = performance.now();
  const child = spawn(process.execPath, ['-e', FLOOR], { stdio: 'ignore' });
  const socket = await new Promise((resolve) => server.once('connection', resolve));
  const connected = performance.now() - t0;
  await new Promise((resolve) => child.once('exit', resolve).on('error', resolve) && socket.end('x'));
  return { connected };
}

async function bin(file) {
  const t0 = performance.now();
  const child = spawn(process.execPath, [file], { stdio: 'ignore' });
  await new Promise((resolve) => child.once('exit', resolve));
  return { exited: performance.now() - t0 };
}

async function start() {
  const t = {};
  const t0 = performance.now();
  const created = ProcessProxy.create({
    workerModule: new URL('../workers/sandbox.mjs', import.meta.url),
    workerExport: 'Echo',
    minPoolSize: 1,
    maxPoolSize: 1,
  });
  const proxy = await created;
  const pool = ProcessProxy.poolOf(proxy);
  t.created = performance.now() - t0;
  if ((await proxy.echo(7)) !== 7) throw new Error('wrong echo');
  t.firstResult = performance.now() - t0;
  await pool.dispose();
  return t;
}

const rows = {};
const push = (name, values) => {
  for (const [k, v] of Object.entries(values)) (rows[`${name} ${k}`] ??= []).push(v);
};
const load0 = os.loadavg()[0];
for (let r = 0; r < rounds; r++) {
  const order = [() => floor().then((v) => push('floor', v)), () => start().then((v) => push('start', v)), ...bins.map((b) => () => bin(b).then((v) => push(b, v)))];
  for (let i = 0; i < order.length; i++) await order[(i + r) % order.length]();
}
server.close();
rmSync(dir, { recursive: true, force: true });
const median = (a) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];
for (const [name, values] of Object.entries(rows)) {
  console.log(`${name.padEnd(40)} ${median(values).toFixed(1).padStart(7)} ms  (${Math.min(...values).toFixed(1)}–${Math.max(...values).toFixed(1)})`);
}
console.log(`rounds ${rounds}; load average ${load0.toFixed(2)} → ${os.loadavg()[0].toFixed(2)} on ${os.cpus().length} cores; node ${process.version}`);

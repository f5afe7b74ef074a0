#!/usr/bin/env node
/**
 * Experiment behind docs/benchmarks.md's sequential analysis: what starting the child detached (its
 * own session, so on Linux its own scheduling autogroup, as process-sandbox starts its workers) does
 * to a sequential ping-pong, with no library code at all.
 *
 * The raw socket ping-pong (bench/lib's framing and child), one child per mode, 20 interleaved
 * blocks of 500 calls. Prints per mode: p50 and mean round trip, and the mean wall time spent inside
 * socket.write() (where the writer is preempted when the child it wakes runs on its vCPU).
 *
 * Usage: node bench/experiments/detached-pingpong.mjs
 */
import { fork } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import os from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { FrameReader, INVOKE, decodeFrame, frame } from '../lib/framing.mjs';

const CHILD = fileURLToPath(new URL('../lib/raw-child.mjs', import.meta.url));
const dir = mkdtempSync(join(os.tmpdir(), 'detached-pingpong-'));

async function start(detached) {
  const path = join(dir, `${detached ? 'detached' : 'plain'}.sock`);
  const server = createServer();
  await new Promise((resolve) => server.listen(path, resolve));
  const proc = fork(CHILD, ['socket', path], { execArgv: [], stdio: ['ignore', 'inherit', 'inherit', 'ipc'], detached });
  const exited = new Promise((resolve) => proc.once('exit', resolve));
  const socket = await new Promise((resolve) => server.once('connection', resolve));
  server.close();
  let pending;
  const reader = new FrameReader((bytes) => pending(decodeFrame(bytes)));
  socket.on('data', (chunk) => reader.push(chunk));
  let id = 0;
  const side = {
    writeMs: 0,
    call: (x) =>
      new Promise((resolve) => {
        pending = ([, , value]) => resolve(value);
        const bytes = frame([INVOKE, ++id, 'echo', [x]]);
        const t0 = performance.now();
        socket.write(bytes);
        side.writeMs += performance.now() - t0;
      }),
    close: async () => {
      socket.end();
      await exited;
    },
  };
  return side;
}

const sides = { 'ordinary child': await start(false), 'detached child': await start(true) };
const latencies = Object.fromEntries(Object.keys(sides).map((k) => [k, []]));
try {
  for (const side of Object.values(sides)) for (let i = 0; i < 2000; i++) await side.call(i);
  for (const side of Object.values(sides)) side.writeMs = 0;
  for (let b = 0; b < 20; b++) {
    for (const [name, side] of b % 2 ? Object.entries(sides) : Object.entries(sides).reverse()) {
      for (let i = 0; i < 500; i++) {
        const t0 = performance.now();
        if ((await side.call(i)) !== i) throw new Error('wrong echo');
        latencies[name].push((performance.now() - t0) * 1000);
      }
    }
  }
  for (const [name, l] of Object.entries(latencies)) {
    l.sort((a, b) => a - b);
    const mean = l.reduce((a, b) => a + b, 0) / l.length;
    console.log(`${name.padEnd(15)} p50 ${l[l.length >> 1].toFixed(1).padStart(6)} µs   mean ${mean.toFixed(1).padStart(6)} µs   inside write() ${((sides[name].writeMs * 1000) / l.length).toFixed(1).padStart(5)} µs per call`);
  }
  console.log(`load average ${os.loadavg().map((v) => v.toFixed(2)).join(' / ')}; /proc/sys/kernel/sched_autogroup_enabled applies`);
} finally {
  for (const side of Object.values(sides)) await side.close();
  rmSync(dir, { recursive: true, force: true });
}

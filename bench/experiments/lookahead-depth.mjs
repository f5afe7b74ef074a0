#!/usr/bin/env node
/**
 * Experiment behind docs/benchmarks.md's throughput analysis: how far can one-call lookahead go?
 *
 * The raw socket ping-pong (bench/lib's framing and child) with 2 children and 64 callers, allowing
 * up to DEPTH requests in flight per child (the child still answers them one at a time), optionally
 * corking the frames written to a child in one tick into one write; process-sandbox (pool of 2, its
 * one-call lookahead) measured in the same run, interleaved.
 *
 *   depth 1            one request at a time per child (the one-at-a-time floor)
 *   depth 2            the next request sent before the current one returns (one-call lookahead)
 *   depth 2 detached   the same, children started detached (as process-sandbox starts its workers)
 *   depth 10 corked    ten in flight per child, frames of one tick in one write
 *
 * Usage: node bench/experiments/lookahead-depth.mjs [rounds=7] [ms=500] [side]   (build first: npx tsc -b)
 *   side   only that one (e.g. 'depth 2'), to profile it: node --cpu-prof … 1 5000 'depth 2'
 */
import { fork } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import os from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ProcessProxy } from '@process-sandbox/core';
import { FrameReader, INVOKE, decodeFrame, frame } from '../lib/framing.mjs';

const CHILD = fileURLToPath(new URL('../lib/raw-child.mjs', import.meta.url));
const dir = mkdtempSync(join(os.tmpdir(), 'lookahead-depth-'));
const rounds = Number(process.argv[2] ?? 7);
const ms = Number(process.argv[3] ?? 500);
const only = process.argv[4];

async function rawPool(size, depth, cork, detached) {
  const path = join(dir, `${Math.random().toString(36).slice(2)}.sock`);
  const server = createServer();
  await new Promise((resolve) => server.listen(path, resolve));
  const children = [];
  const queue = [];
  let nextId = 1;
  const pump = () => {
    for (const c of children) {
      let corked = false;
      while (queue.length > 0 && c.inFlight.length < depth) {
        if (cork && !corked) {
          c.socket.cork();
          corked = true;
          process.nextTick(() => c.socket.uncork());
        }
        const request = queue.shift();
        c.inFlight.push(request);
        c.socket.write(frame([INVOKE, request.id, 'echo', [request.x]]));
      }
    }
  };
  for (let i = 0; i < size; i++) {
    const proc = fork(CHILD, ['socket', path], { execArgv: [], stdio: ['ignore', 'inherit', 'inherit', 'ipc'], detached });
    const socket = await new Promise((resolve) => server.once('connection', resolve));
    const c = { proc, socket, inFlight: [], exited: new Promise((resolve) => proc.once('exit', resolve)) };
    const reader = new FrameReader((bytes) => {
      const [, id, value] = decodeFrame(bytes);
      const request = c.inFlight.shift();
      if (request.id !== id) throw new Error(`reply ${id} does not answer request ${request.id}`);
      request.resolve(value);
      pump();
    });
    socket.on('data', (chunk) => reader.push(chunk));
    children.push(c);
  }
  server.close();
  return {
    call: (x) => new Promise((resolve) => (queue.push({ id: nextId++, x, resolve }), pump())),
    close: async () => {
      for (const c of children) c.socket.end();
      await Promise.all(children.map((c) => c.exited));
    },
  };
}

async function throughput(pool, durationMs) {
  let completed = 0;
  let value = 0;
  const t0 = performance.now();
  const deadline = t0 + durationMs;
  await Promise.all(
    Array.from({ length: 64 }, async () => {
      while (performance.now() < deadline) {
        const x = value++;
        if ((await pool.call(x)) !== x) throw new Error('wrong echo');
        completed++;
      }
    }),
  );
  return (completed * 1000) / (performance.now() - t0);
}

const makers = {
  'process-sandbox': async () => {
    const proxy = await ProcessProxy.create({ workerModule: new URL('../workers/sandbox.mjs', import.meta.url), workerExport: 'Echo', minPoolSize: 2, maxPoolSize: 2 });
    return { call: (x) => proxy.echo(x), close: () => ProcessProxy.poolOf(proxy).dispose() };
  },
  'depth 1': () => rawPool(2, 1, false, false),
  'depth 2': () => rawPool(2, 2, false, false),
  'depth 2 detached': () => rawPool(2, 2, false, true),
  'depth 10 corked': () => rawPool(2, 10, true, false),
};
if (only !== undefined && !(only in makers)) {
  console.error(`unknown side ${only}; known: ${Object.keys(makers).join(', ')}`);
  process.exit(2);
}
const sides = [];
for (const [name, make] of Object.entries(makers)) if (only === undefined || name === only) sides.push({ name, pool: await make() });
try {
  for (const side of sides) await throughput(side.pool, 300);
  const results = Object.fromEntries(sides.map((s) => [s.name, []]));
  for (let r = 0; r < rounds; r++) for (const side of r % 2 ? sides : [...sides].reverse()) results[side.name].push(Math.round(await throughput(side.pool, ms)));
  for (const [name, values] of Object.entries(results)) {
    values.sort((a, b) => a - b);
    console.log(`${name.padEnd(18)} median ${String(values[values.length >> 1]).padStart(7)} calls/s   (${values.join(' ')})`);
  }
  console.log(`load average ${os.loadavg().map((v) => v.toFixed(2)).join(' / ')}`);
} finally {
  for (const side of sides) await side.pool.close();
  rmSync(dir, { recursive: true, force: true });
}

#!/usr/bin/env node
/**
 * Experiment behind docs/benchmarks.md's 1 MiB analysis: what the framing costs a 1 MiB echo over a
 * Unix socket between two Node processes, with the same bytes on the wire.
 *
 *   msgpack  the raw floor of bench/compare.mjs: MessagePack-encode (a copy into the encoder's
 *            buffer), then copy into a length-prefixed frame: one write of one buffer
 *   writev   the 4-byte length prefix and the payload written as two buffers under cork (one
 *            writev, no user-space copy of the payload on the way out)
 *
 * Both sides assemble incoming frames with bench/lib's FrameReader (one copy). Also prints the speed
 * of a 1 MiB memcpy (Buffer.copy) and of the socket itself (512 MiB streamed one way in 1 MiB
 * writes, nothing decoded) for scale: a round trip moves the payload twice, one way after the other.
 *
 * Usage: node bench/experiments/framing-1mib.mjs [round trips=500]
 */
import { fork } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import os from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { FrameReader, decodeFrame, frame } from '../lib/framing.mjs';

const N = 1 << 20;

function writeRaw(socket, payload) {
  const header = Buffer.allocUnsafe(4);
  header.writeUInt32BE(payload.length);
  socket.cork();
  socket.write(header);
  socket.write(payload);
  socket.uncork();
}

if (process.argv[2] === 'sink') {
  const socket = connect(process.argv[3]);
  let received = 0;
  socket.on('data', (chunk) => {
    received += chunk.length;
    if (received >= 512 * N) socket.end();
  });
  socket.on('close', () => process.exit(0));
} else if (process.argv[2] === 'child') {
  const mode = process.argv[4];
  const socket = connect(process.argv[3]);
  const reader = new FrameReader((bytes) => {
    if (mode === 'msgpack') socket.write(frame(decodeFrame(bytes)));
    else writeRaw(socket, bytes);
  });
  socket.on('data', (chunk) => reader.push(chunk));
  socket.on('close', () => process.exit(0));
} else {
  const count = Number(process.argv[2] ?? 500);
  const payload = Buffer.alloc(N, 1);
  const copy = Buffer.alloc(N);
  let t0 = performance.now();
  for (let i = 0; i < 2000; i++) payload.copy(copy);
  const copyUs = ((performance.now() - t0) / 2000) * 1000;
  console.log(`memcpy of 1 MiB: ${copyUs.toFixed(1)} µs (${(N / copyUs / 1e3).toFixed(1)} GB/s, hot in cache)`);
  const dir = mkdtempSync(join(os.tmpdir(), 'framing-1mib-'));
  try {
    {
      const path = join(dir, 'oneway.sock');
      const server = createServer();
      await new Promise((resolve) => server.listen(path, resolve));
      const child = fork(fileURLToPath(import.meta.url), ['sink', path], { execArgv: [] });
      const exited = new Promise((resolve) => child.once('exit', resolve));
      const socket = await new Promise((resolve) => server.once('connection', resolve));
      server.close();
      t0 = performance.now();
      let sent = 0;
      const pump = () => {
        while (sent < 512) {
          sent++;
          if (!socket.write(payload)) return void socket.once('drain', pump);
        }
      };
      pump();
      await exited;
      console.log(`the socket alone, one way: ${((512 * N) / ((performance.now() - t0) / 1000) / 1e9).toFixed(2)} GB/s`);
    }
    for (const mode of ['msgpack', 'writev', 'msgpack', 'writev']) {
      const path = join(dir, `${mode}-${Math.random().toString(36).slice(2)}.sock`);
      const server = createServer();
      await new Promise((resolve) => server.listen(path, resolve));
      const child = fork(fileURLToPath(import.meta.url), ['child', path, mode], { execArgv: [] });
      const exited = new Promise((resolve) => child.once('exit', resolve));
      const socket = await new Promise((resolve) => server.once('connection', resolve));
      server.close();
      let pending;
      const reader = new FrameReader((bytes) => pending(bytes));
      socket.on('data', (chunk) => reader.push(chunk));
      const call = (i) =>
        new Promise((resolve) => {
          pending = (bytes) => resolve(mode === 'msgpack' ? decodeFrame(bytes)[1] : bytes);
          if (mode === 'msgpack') socket.write(frame([i, payload]));
          else writeRaw(socket, payload);
        });
      for (let i = 0; i < 50; i++) await call(i);
      t0 = performance.now();
      for (let i = 0; i < count; i++) if ((await call(i)).length !== N) throw new Error('short echo');
      const ms = performance.now() - t0;
      console.log(`${mode.padEnd(8)} ${((ms / count) * 1000).toFixed(0)} µs per 1 MiB round trip, ${((N * count) / (ms / 1000) / 1e6).toFixed(0)} MB/s`);
      socket.end();
      await exited;
    }
    console.log(`load average ${os.loadavg().map((v) => v.toFixed(2)).join(' / ')}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

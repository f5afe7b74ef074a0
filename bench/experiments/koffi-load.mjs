#!/usr/bin/env node
/**
 * What loading koffi costs a fresh process, through koffi's own loader (`require('koffi')`) and by
 * its binary directly, as the one koffi loader does on glibc Linux (packages/abstractions/src/koffi.ts,
 * koffiBinary): each in a fresh `node`, alternating, then libc loaded and prctl declared, as the
 * worker's guards need (docs/benchmarks.md, "Worker start").
 *
 *   node bench/experiments/koffi-load.mjs [PAIRS=20]
 */
import { execFileSync } from 'node:child_process';
import os from 'node:os';

const pairs = Number(process.argv[2] ?? 20);
const child = (mode) => `
const { createRequire } = require('node:module');
const { dirname, join } = require('node:path');
const t0 = performance.now();
let koffi;
const from = createRequire(${JSON.stringify(new URL('../../packages/worker/package.json', import.meta.url).pathname)});
if (${JSON.stringify(mode)} === 'binary') {
  const koffiDir = dirname(from.resolve('koffi'));
  const { version } = JSON.parse(require('node:fs').readFileSync(join(koffiDir, 'package.json'), 'utf8'));
  const binaries = dirname(createRequire(join(koffiDir, 'index.cjs')).resolve('@koromix/koffi-linux-' + process.arch + '/package.json'));
  const m = { exports: {} };
  process.dlopen(m, join(binaries, 'linux_' + process.arch, 'koffi.node'));
  if (m.exports.version !== version) throw new Error('version');
  koffi = m.exports;
} else koffi = from('koffi');
koffi.load('libc.so.6').func('int prctl(int option, unsigned long a2, unsigned long a3, unsigned long a4, unsigned long a5)');
process.stdout.write(String(performance.now() - t0));`;
if (process.platform !== 'linux') throw new Error('Linux only (the direct load is glibc Linux only)');
const env = { ...process.env };
delete env.NODE_EXTRA_CA_CERTS;
const times = { loader: [], binary: [] };
const load0 = os.loadavg()[0];
for (let i = 0; i < pairs; i++) {
  for (const mode of i % 2 ? ['binary', 'loader'] : ['loader', 'binary']) {
    times[mode].push(Number(execFileSync(process.execPath, ['-e', child(mode)], { env, encoding: 'utf8' })));
  }
}
const median = (a) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];
for (const [mode, t] of Object.entries(times)) {
  console.log(`${mode === 'loader' ? "koffi's loader (require('koffi'))" : 'its binary directly'}: median ${median(t).toFixed(1)} ms (${Math.min(...t).toFixed(1)}–${Math.max(...t).toFixed(1)})`);
}
const ratios = times.binary.map((b, i) => b / times.loader[i]);
console.log(`binary / loader, per pair: median ${median(ratios).toFixed(2)}×; ${pairs} pairs; load average ${load0.toFixed(2)} → ${os.loadavg()[0].toFixed(2)} on ${os.cpus().length} cores`);

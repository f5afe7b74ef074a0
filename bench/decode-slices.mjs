#!/usr/bin/env node
/**
 * Decoding a large frame in slices (SlicedDecode, as the channel does for frames of 64 KiB or more)
 * against decoding it at once (decodeValue): throughput of each and their ratio, and the longest
 * slice, on payloads of ~8 MiB of different shapes. Both decode the same bytes, alternately, for
 * several rounds; the best round of each is kept (the machine is shared; the best is the least
 * disturbed). CPU time (process.cpuUsage), not wall time, so other processes do not count.
 *
 * Usage: node bench/decode-slices.mjs [--rounds=N]   (build first: npx tsc -b)
 */
import { decodeValue, encodeValue } from '../packages/abstractions/dist/index.js';
import { SlicedDecode } from '../packages/abstractions/dist/codec.js';

const rounds = Number(process.argv.find((a) => a.startsWith('--rounds='))?.slice(9) ?? 5);
const MiB = 1024 * 1024;
const cpuMs = () => {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1000;
};

const payloads = {
  'records (200 k × {id, name, tags})': () => Array.from({ length: 200_000 }, (_, i) => ({ id: i, name: `row ${i}`, tags: ['a', 'b'] })),
  'numbers (1 M doubles)': () => Array.from({ length: 1_000_000 }, (_, i) => i + 0.5),
  'small integers (8 M)': () => new Array(8_000_000).fill(7),
  'one string (4 M × é)': () => 'é'.repeat(4 * MiB),
  'a Map (300 k entries)': () => new Map(Array.from({ length: 300_000 }, (_, i) => [i, `v${i}`])),
};

async function sliced(bytes) {
  const decode = new SlicedDecode(bytes);
  let longest = 0;
  let total = 0;
  for (;;) {
    const start = cpuMs();
    const done = decode.step();
    const spent = cpuMs() - start;
    longest = Math.max(longest, spent);
    total += spent;
    if (done) break;
    await new Promise((resolve) => setImmediate(resolve));
  }
  return { total, longest, slices: decode.slices };
}

console.log(`| payload | frame | at once | in slices | throughput in slices ÷ at once | slices | longest slice (CPU) |`);
console.log(`|---|---:|---:|---:|---:|---:|---:|`);
for (const [name, make] of Object.entries(payloads)) {
  const bytes = Buffer.from(encodeValue(make()));
  let once = Infinity;
  let best = { total: Infinity, longest: 0, slices: 0 };
  for (let r = 0; r < rounds; r++) {
    const start = cpuMs();
    decodeValue(bytes);
    once = Math.min(once, cpuMs() - start);
    const s = await sliced(bytes);
    if (s.total < best.total) best = s;
  }
  const rate = (ms) => `${(bytes.length / MiB / (ms / 1000)).toFixed(0)} MiB/s`;
  console.log(`| ${name} | ${(bytes.length / MiB).toFixed(1)} MiB | ${rate(once)} | ${rate(best.total)} | ${(once / best.total).toFixed(2)} | ${best.slices} | ${best.longest.toFixed(1)} ms |`);
}

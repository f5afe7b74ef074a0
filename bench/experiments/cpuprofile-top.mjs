#!/usr/bin/env node
/**
 * Summarises a .cpuprofile (from node --cpu-prof): busy time by category (the library's packages,
 * msgpack, Node internals, GC, native code such as writeBuffer, the socket write) and the top
 * functions by self time. Used for the analysis in docs/benchmarks.md.
 *
 * Usage: node bench/experiments/cpuprofile-top.mjs FILE.cpuprofile [top=30] [calls]
 *   with `calls`, also prints each figure per call (µs)
 */
import { readFileSync } from 'node:fs';

const [file, topArg, callsArg] = process.argv.slice(2);
const profile = JSON.parse(readFileSync(file, 'utf8'));
const calls = callsArg ? Number(callsArg) : undefined;
const byId = new Map(profile.nodes.map((n) => [n.id, n]));
const self = new Map();
for (let i = 0; i < profile.samples.length; i++) {
  const id = profile.samples[i];
  self.set(id, (self.get(id) ?? 0) + (profile.timeDeltas[i + 1] ?? 0) / 1000);
}
const short = (url) => url.replace(/^file:\/\/.*?\/(packages|bench|samples|scratch)\//, '$1/').replace(/^.*node_modules\//, '');
const category = ({ url, functionName }) => {
  if (!url) return functionName.startsWith('(') ? functionName : '(native)';
  if (url.startsWith('node:')) return url.split('/').slice(0, 3).join('/');
  if (url.includes('@msgpack')) return 'msgpack';
  for (const pkg of ['core', 'abstractions', 'worker']) if (url.includes(`packages/${pkg}/`)) return `@process-sandbox/${pkg}`;
  return short(url);
};
const byFunction = new Map();
const byCategory = new Map();
let busy = 0;
let idle = 0;
for (const [id, ms] of self) {
  const frame = byId.get(id).callFrame;
  if (frame.functionName === '(idle)') {
    idle += ms;
    continue;
  }
  busy += ms;
  const key = `${frame.functionName || '(anonymous)'} ${short(frame.url)}${frame.url ? `:${frame.lineNumber + 1}` : ''}`;
  byFunction.set(key, (byFunction.get(key) ?? 0) + ms);
  const c = category(frame);
  byCategory.set(c, (byCategory.get(c) ?? 0) + ms);
}
const line = (ms, name) => `${ms.toFixed(1).padStart(9)} ms ${((100 * ms) / busy).toFixed(1).padStart(5)} %${calls ? ` ${((ms * 1000) / calls).toFixed(2).padStart(8)} µs/call` : ''}  ${name}`;
console.log(`${file}: ${(busy + idle).toFixed(0)} ms profiled, ${busy.toFixed(0)} ms busy, ${idle.toFixed(0)} ms idle${calls ? `; ${((busy * 1000) / calls).toFixed(2)} µs busy per call` : ''}`);
console.log('busy time by category:');
for (const [name, ms] of [...byCategory].sort((a, b) => b[1] - a[1]).slice(0, 15)) console.log(line(ms, name));
console.log('top functions by self time:');
for (const [name, ms] of [...byFunction].sort((a, b) => b[1] - a[1]).slice(0, Number(topArg ?? 30))) console.log(line(ms, name));

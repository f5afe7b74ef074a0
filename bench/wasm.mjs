#!/usr/bin/env node
/**
 * WebAssembly implementations (issue 18): the sample plugin (samples/wasm-plugin) against the same
 * functions in JavaScript (samples/wasm-plugin/plugin.mjs), measured three ways, several rounds
 * each, the variants taking turns within every round:
 *
 *   call overhead   sequential `add(1, 2)` through a pool of one worker: p50 and mean per call (µs),
 *                   for the JS plugin, the WASM plugin, and the WASM plugin with fuel
 *   fuel cost       the plugin's functions run in this process by the worker's own loader
 *                   (packages/worker/dist/wasm-implementation.js: the same ABI and instrumentation,
 *                   no IPC), with and without fuel: fib(30) (calls), wordCount and checksum over
 *                   4 MiB (loops); the least time of 9 runs, and fuel's cost in %
 *   load time       ProcessProxy.create() to the first answer, per variant (a worker spawned,
 *                   the module loaded, one call); and the worker's loader alone, in this process
 *
 * Usage: node bench/wasm.mjs [--rounds=N] [--write]   (after npm run build)
 *   --write  rewrites its section of docs/benchmarks.md with the results, the machine and the command
 * Every result is checked against the JavaScript plugin's; exits 1 on a mismatch.
 */
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { ProcessProxy } from '@process-sandbox/core';
import { writeSection } from './lib/docs.mjs';
import { loadText, machineInfo } from './lib/machine.mjs';
import { spread, summarise } from './lib/stats.mjs';
import { plugin as js } from '../samples/wasm-plugin/plugin.mjs';

const { loadWasmImplementation } = await import(new URL('../packages/worker/dist/wasm-implementation.js', import.meta.url).href);

const args = process.argv.slice(2);
const write = args.includes('--write');
const rounds = Number(args.find((a) => a.startsWith('--rounds='))?.slice(9) ?? 7);
const WASM = fileURLToPath(new URL('../samples/wasm-plugin/plugin.wasm', import.meta.url));
const JS = fileURLToPath(new URL('../samples/wasm-plugin/plugin.mjs', import.meta.url));
const HOST = fileURLToPath(new URL('../samples/wasm-plugin/host-functions.mjs', import.meta.url));
const hostFunctions = { module: HOST, grant: ['log'] };
const FUEL = Number.MAX_SAFE_INTEGER;

const variants = {
  js: { workerModule: JS, workerExport: 'plugin' },
  wasm: { workerModule: WASM, wasm: { hostFunctions } },
  'wasm + fuel': { workerModule: WASM, wasm: { hostFunctions, fuelPerCall: FUEL } },
};

let mismatches = 0;
function check(what, actual, expected) {
  if (actual !== expected) {
    mismatches++;
    console.error(`MISMATCH ${what}: ${actual} !== ${expected}`);
  }
}

// ─── call overhead and load time, through the pool ───────────────────────────

async function poolRound(name, options, calls) {
  const started = performance.now();
  const proxy = await ProcessProxy.create({ ...options, minPoolSize: 1, maxPoolSize: 1, healthIntervalMs: 0 });
  try {
    check(`${name} first add`, await proxy.add(1, 2), 3);
    const loadMs = performance.now() - started;
    for (let i = 0; i < 200; i++) await proxy.add(i, 1); // warm-up
    const latencies = new Float64Array(calls);
    for (let i = 0; i < calls; i++) {
      const t = performance.now();
      const sum = await proxy.add(i, 2);
      latencies[i] = (performance.now() - t) * 1000;
      if (sum !== i + 2) check(`${name} add`, sum, i + 2);
    }
    return { loadMs, ...summarise(latencies) };
  } finally {
    await ProcessProxy.poolOf(proxy).dispose();
  }
}

// ─── fuel's cost, in this process ────────────────────────────────────────────

const text = 'lorem ipsum dolor sit amet, consectetur\tadipiscing\nelit '.repeat(4 * 18_725).slice(0, 4 << 20);
const bytes = Buffer.from(text);
const workloads = {
  'fib(30)': [(p) => p.fib(30), js.fib(30)],
  'wordCount(4 MiB)': [(p) => p.wordCount(text), js.wordCount(text)],
  'checksum(4 MiB)': [(p) => p.checksum(bytes), js.checksum(bytes)],
};

async function loadInProcess(fuel) {
  const t = performance.now();
  const { implementation } = await loadWasmImplementation(WASM, { wasm: { auditHostCalls: false, hostFunctions, ...(fuel ? { fuelPerCall: FUEL } : {}) } });
  return { implementation, ms: performance.now() - t };
}

async function timeRuns(fn, runs) {
  const times = [];
  for (let i = 0; i < runs; i++) {
    const t = performance.now();
    await fn();
    times.push(performance.now() - t);
  }
  // The least disturbed run: on a shared machine the others measure the neighbours too.
  return spread(times).min;
}

// ─── the run ─────────────────────────────────────────────────────────────────

const calls = 2000;
const pool = Object.fromEntries(Object.keys(variants).map((k) => [k, []]));
const compute = Object.fromEntries(Object.keys(workloads).map((k) => [k, { js: [], wasm: [], fuel: [] }]));
const loads = { plain: [], fuel: [] };
const machine = machineInfo();
const loadBefore = loadText();
const firstFuelLoad = (await loadInProcess(true)).ms; // binaryen imported here, once per process
for (let round = 0; round < rounds; round++) {
  for (const [name, options] of Object.entries(variants)) pool[name].push(await poolRound(name, options, calls));
  const plain = await loadInProcess(false);
  const fueled = await loadInProcess(true);
  loads.plain.push(plain.ms);
  loads.fuel.push(fueled.ms);
  for (const [name, [run, expected]] of Object.entries(workloads)) {
    check(`${name} wasm`, await run(plain.implementation), expected);
    check(`${name} fuel`, await run(fueled.implementation), expected);
    compute[name].js.push(await timeRuns(() => run(js), 9));
    compute[name].wasm.push(await timeRuns(() => run(plain.implementation), 9));
    compute[name].fuel.push(await timeRuns(() => run(fueled.implementation), 9));
  }
  console.error(`round ${round + 1}/${rounds} done`);
}

const f = (v, d = 1) => (v === undefined ? '–' : v.toFixed(d));
const med = (values) => spread(values).median;
const range = (values) => `${f(spread(values).median)} (${f(spread(values).min)}–${f(spread(values).max)})`;

const lines = [];
lines.push('## WebAssembly plugins (bench/wasm.mjs)', '');
lines.push(
  `The sample plugin (samples/wasm-plugin: WAT built with wabt) against the same functions in JavaScript (samples/wasm-plugin/plugin.mjs), ${rounds} rounds, the variants taking turns in each round; medians of the rounds, with min–max. "Fuel" is \`wasm.fuelPerCall\` (binaryen instrumentation). Command: \`node bench/wasm.mjs --rounds=${rounds} --write\` (after \`npm run build\`).`,
  '',
);
lines.push('### Call overhead: sequential `add(1, 2)` through one worker', '');
lines.push('| Plugin | p50 (µs) | mean (µs) | p50 / JS |', '| --- | --- | --- | --- |');
const jsP50 = med(pool.js.map((r) => r.p50));
for (const [name, results] of Object.entries(pool)) {
  lines.push(`| ${name} | ${range(results.map((r) => r.p50))} | ${range(results.map((r) => r.mean))} | ${f(med(results.map((r) => r.p50)) / jsP50, 2)}x |`);
}
lines.push('', '### Fuel instrumentation cost: in-process runs (no IPC), ms per run', '');
lines.push(
  'Each round takes the least of 9 runs; the table gives the median of the rounds (min–max). Fuel\'s cost compares the least disturbed runs of the whole benchmark (min against min): on a shared machine the medians measure the neighbours too.',
  '',
);
lines.push('| Workload | JS | WASM | WASM + fuel | fuel cost (min vs min) | WASM / JS (min vs min) |', '| --- | --- | --- | --- | --- | --- |');
const pct = (a, b) => { const v = ((a - b) / b) * 100; return `${v >= 0 ? '+' : ''}${f(v)} %`; };
for (const [name, r] of Object.entries(compute)) {
  const min = (v) => spread(v).min;
  lines.push(`| ${name} | ${range(r.js)} | ${range(r.wasm)} | ${range(r.fuel)} | ${pct(min(r.fuel), min(r.wasm))} | ${f(min(r.wasm) / min(r.js), 2)}x |`);
}
lines.push('', '### Load time', '');
lines.push('| What | ms |', '| --- | --- |');
for (const [name, results] of Object.entries(pool)) lines.push(`| \`create()\` to the first answer: ${name} | ${range(results.map((r) => r.loadMs))} |`);
lines.push(`| the worker's loader alone, in process: WASM | ${range(loads.plain)} |`);
lines.push(`| the worker's loader alone, in process: WASM + fuel (binaryen already loaded) | ${range(loads.fuel)} |`);
lines.push(`| the worker's loader alone, in process: WASM + fuel, first in a process (binaryen imported) | ${f(firstFuelLoad)} (once) |`);
lines.push('', `Machine: ${machine.cpu}, ${machine.cores} cores, ${machine.memory}, ${machine.os}, Node ${machine.node}; library ${machine.revision}. Load average before: ${loadBefore}; after: ${loadText()}.`);
const markdown = lines.join('\n');
console.log(markdown);
if (write) writeSection(fileURLToPath(new URL('../docs/benchmarks.md', import.meta.url)), 'wasm', markdown);
process.exitCode = mismatches > 0 ? 1 : 0;

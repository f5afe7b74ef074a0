#!/usr/bin/env node
/**
 * What each isolation level costs at start-up: ProcessProxy.create() (one worker, minPoolSize 1) to
 * the first call's answer, then dispose(), for no level, 'standard', 'high' and 'maximum', taking
 * turns in every round so that a noisy neighbour hits all of them. Ratios are against 'standard' in
 * the same run. Linux, as root (the levels above 'standard' need CAP_SYS_ADMIN): a level the machine
 * refuses is reported as refused, with the reason.
 *
 *   node bench/isolation-startup.mjs [--rounds=N] [--write]
 *     --rounds=N  rounds (default 15)
 *     --write     rewrite its section of docs/benchmarks.md with the results, the machine and this command
 *
 * Exits 0 when every call returned the right value; 1 otherwise. Every pool is disposed before it exits.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeSection } from './lib/docs.mjs';
import { loadText, machineInfo } from './lib/machine.mjs';
import { spread } from './lib/stats.mjs';

const args = process.argv.slice(2);
const rounds = Number(args.find((a) => a.startsWith('--rounds='))?.slice(9) ?? 15);
const write = args.includes('--write');
if (!Number.isInteger(rounds) || rounds < 1 || args.some((a) => a !== '--write' && !a.startsWith('--rounds='))) {
  console.error('usage: node bench/isolation-startup.mjs [--rounds=N] [--write]');
  process.exit(2);
}

const { ProcessProxy } = await import('@process-sandbox/core');
// Internal modules, for the wrappers alone: the command line each level builds, up to node.
const { resolveOptions } = await import('../packages/core/dist/options.js');
const { workerCommand } = await import('../packages/core/dist/worker-command.js');
const workerModule = new URL('./workers/sandbox.mjs', import.meta.url);
mkdirSync('/var/tmp', { recursive: true });
const writable = mkdtempSync(join('/var/tmp', 'process-sandbox-bench-'));
const LEVELS = {
  none: {},
  standard: { isolation: 'standard' },
  high: { isolation: 'high' },
  maximum: { isolation: 'maximum', writablePaths: [writable] },
  // The parts apart: a level also changes what the worker does at start (env, the permission model).
  'high, env: process.env': { isolation: 'high', env: process.env },
  'maximum, permissions: false': { isolation: 'maximum', writablePaths: [writable], permissions: false },
};

/** ms from create() to the first call's answer; the pool disposed after. */
async function once(options) {
  const t0 = performance.now();
  const proxy = await ProcessProxy.create({ workerModule, workerExport: 'Echo', minPoolSize: 1, maxPoolSize: 1, ...options });
  const answer = await proxy.echo(42);
  const ms = performance.now() - t0;
  await ProcessProxy.poolOf(proxy).dispose();
  if (answer !== 42) throw new Error(`wrong answer ${answer}`);
  return ms;
}

/** ms to run the level's wrappers (unshare, the mounts, setpriv …) with /bin/true in node's place. */
function wrappersOnce(options) {
  const resolved = resolveOptions({ workerModule: fileURLToPath(workerModule), ...options });
  const command = workerCommand(resolved);
  const line = [command.file, ...command.args];
  const node = line.indexOf(resolved.execPath);
  if (node === 0) return undefined; // no wrapper
  const t0 = performance.now();
  const result = spawnSync(line[0], [...line.slice(1, node), '/bin/true'], { env: command.options.env, stdio: 'ignore' });
  const ms = performance.now() - t0;
  if (result.status !== 0) throw new Error(`the wrappers failed: ${line.slice(0, node).join(' ')} (status ${result.status})`);
  return ms;
}

const wrapperSamples = Object.fromEntries(Object.keys(LEVELS).map((l) => [l, []]));
const samples = Object.fromEntries(Object.keys(LEVELS).map((l) => [l, []]));
const refused = {};
let failed = false;
const loadBefore = loadText();
try {
  for (const [level, options] of Object.entries(LEVELS)) {
    try {
      await once(options); // warm-up: probes, the file cache
    } catch (error) {
      refused[level] = error.message;
    }
  }
  for (let round = 0; round < rounds; round++) {
    for (const [level, options] of Object.entries(LEVELS)) {
      if (refused[level]) continue;
      try {
        samples[level].push(await once(options));
        for (let i = 0; i < 5; i++) wrapperSamples[level].push(wrappersOnce(options));
      } catch (error) {
        console.error(`${level}: ${error.message}`);
        failed = true;
      }
    }
  }
} finally {
  rmSync(writable, { recursive: true, force: true });
}

const base = spread(samples.standard);
const fmt = (v) => (v === undefined ? '—' : v.toFixed(v < 10 ? 1 : 0));
const rows = Object.keys(LEVELS).map((level) => {
  if (refused[level]) return `| \`${level}\` | refused: ${refused[level].replaceAll('|', '\\|')} | | | | | |`;
  const s = spread(samples[level]);
  const w = spread(wrapperSamples[level]);
  const ratio = (a, b) => (a && b ? (a / b).toFixed(2) : '—');
  return `| \`${level}\` | ${fmt(s.median)} | ${fmt(s.min)} | ${fmt(s.max)} | ${ratio(s.median, base?.median)} | ${ratio(s.min, base?.min)} | ${w ? `${fmt(w.median)} (${fmt(w.min)}–${fmt(w.max)})` : '0 (none)'} |`;
});
const machine = machineInfo();
const markdown = `## Isolation levels at start-up (bench/isolation-startup.mjs)

\`ProcessProxy.create()\` with one worker (bench/workers/sandbox.mjs) to the answer of its first call,
per level, ${rounds} rounds, the levels taking turns in each round; ms. Ratio: median against
\`'standard'\` in the same run, and min against min (the least disturbed start). "Wrappers alone":
the programs a level puts before node (setpriv, unshare, the read-only remounts), run ${rounds * 5}
times with \`/bin/true\` in node's place, ms. Command: \`node bench/isolation-startup.mjs --rounds=${rounds} --write\`
(as root, after \`npm run build\`).

| Level | median | min | max | median / standard's | min / standard's | wrappers alone: median (min–max) |
| --- | --- | --- | --- | --- | --- | --- |
${rows.join('\n')}

Machine: ${machine.cpu}, ${machine.cores} cores, ${machine.memory}, ${machine.os}, Node ${machine.node};
library ${machine.revision}. Load average before: ${loadBefore}; after: ${loadText()}.`;
console.log(markdown);
if (write) writeSection(fileURLToPath(new URL('../docs/benchmarks.md', import.meta.url)), 'isolation-startup', markdown);
process.exit(failed ? 1 : 0);

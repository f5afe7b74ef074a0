#!/usr/bin/env node
/**
 * Experiment behind the default of `pipelineDepth` (docs/benchmarks.md, "Lookahead depth"): the
 * throughput of process-sandbox pools that differ only in how many calls they send ahead to a busy
 * worker, with 64 concurrent callers echoing small values, measured in interleaved rounds (the
 * depths take turns within every round, in an order that rotates) so that a noisy neighbour hits all.
 *
 * Usage: node bench/experiments/pipeline-depth.mjs [rounds=5] [ms=500] [workers=2] [depths=0,1,2,4,8,16]
 * (build first: npx tsc -b). Prints the median calls/s per depth (min–max) and the ratio to depth 1.
 */
import { ProcessProxy } from '@process-sandbox/core';
import { spread } from '../lib/stats.mjs';

const rounds = Number(process.argv[2] ?? 5);
const ms = Number(process.argv[3] ?? 500);
const workers = Number(process.argv[4] ?? 2);
const depths = (process.argv[5] ?? '0,1,2,4,8,16').split(',').map(Number);
const CALLERS = 64;
const workerModule = new URL('../workers/sandbox.mjs', import.meta.url);

async function throughput(proxy, durationMs) {
  let completed = 0;
  let next = 1;
  const deadline = performance.now() + durationMs;
  const t0 = performance.now();
  const loop = async () => {
    while (performance.now() < deadline) {
      const x = next++;
      if ((await proxy.echo(x)) !== x) throw new Error(`echo(${x}) returned something else`);
      completed++;
    }
  };
  await Promise.all(Array.from({ length: CALLERS }, loop));
  return (completed * 1000) / (performance.now() - t0);
}

const pools = [];
try {
  for (const depth of depths) {
    const proxy = await ProcessProxy.create({ workerModule, workerExport: 'Echo', minPoolSize: workers, maxPoolSize: workers, pipelineDepth: depth });
    await throughput(proxy, 300); // warm-up
    pools.push({ depth, proxy, results: [] });
  }
  for (let r = 0; r < rounds; r++) {
    for (let i = 0; i < pools.length; i++) {
      const side = pools[(i + r) % pools.length];
      side.results.push(await throughput(side.proxy, ms));
    }
    console.error(`round ${r + 1}/${rounds}: ${pools.map((p) => `depth ${p.depth} ${Math.round(p.results.at(-1))}`).join(', ')} calls/s`);
  }
  const one = pools.find((p) => p.depth === 1);
  console.log(`${workers} worker(s), ${CALLERS} callers, ${rounds} rounds of ${ms} ms, interleaved`);
  for (const p of pools) {
    const s = spread(p.results);
    const vsOne = one ? spread(p.results.map((v, r) => v / one.results[r])) : undefined;
    console.log(`depth ${String(p.depth).padStart(2)}: ${Math.round(s.median)} calls/s (${Math.round(s.min)}–${Math.round(s.max)})${vsOne ? `, ${vsOne.median.toFixed(2)}x depth 1 (${vsOne.min.toFixed(2)}–${vsOne.max.toFixed(2)})` : ''}`);
  }
} finally {
  await Promise.all(pools.map((p) => ProcessProxy.poolOf(p.proxy).dispose()));
}

#!/usr/bin/env node
/**
 * A fresh worker's first calls against its later ones (docs/benchmarks.md, "Recycling spike"):
 *
 *   WAIT=400 node bench/experiments/first-call.mjs
 *
 * 12 times: a pool of one worker (bench/experiments/spike-worker.mjs), WAIT ms after create()
 * (default 400), four calls 20 ms apart. Prints per call (1st … 4th) the median latency and its
 * split: host → the method starting, the method → the host holding the result (CLOCK_MONOTONIC in
 * both processes), and every latency.
 */
import { ProcessProxy } from '@process-sandbox/core';
delete process.env.NODE_EXTRA_CA_CERTS;
const now = () => Number(process.hrtime.bigint()) / 1e6;
const res = [[], [], [], []];
for (let i = 0; i < 12; i++) {
  const proxy = await ProcessProxy.create({ workerModule: new URL('./spike-worker.mjs', import.meta.url), workerExport: 'Probe', minPoolSize: 1, maxPoolSize: 1 });
  const pool = ProcessProxy.poolOf(proxy);
  await new Promise((r) => setTimeout(r, Number(process.env.WAIT ?? 400)));
  for (let k = 0; k < 4; k++) {
    await new Promise((r) => setTimeout(r, 20));
    const h0 = now();
    const [, , ran] = await proxy.stamp(k);
    const h1 = now();
    res[k].push([h1 - h0, ran - h0, h1 - ran]);
  }
  await pool.dispose();
}
const med = (xs) => xs.sort((a, b) => a - b)[xs.length >> 1].toFixed(2);
res.forEach((r, k) => console.log(`call ${k + 1}: total ${med(r.map((x) => x[0]))} there ${med(r.map((x) => x[1]))} back ${med(r.map((x) => x[2]))}  all: ${r.map((x) => x[0].toFixed(1)).join(' ')}`));

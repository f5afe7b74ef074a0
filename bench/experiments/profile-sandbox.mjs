#!/usr/bin/env node
/**
 * A process-sandbox workload to profile, host and workers alike:
 *
 *   node --cpu-prof --cpu-prof-dir=prof/host bench/experiments/profile-sandbox.mjs MODE CALLS [WORKER_PROFILE_DIR]
 *
 *   MODE  seq   one worker, one caller, echo(i) one after the other
 *         tput  two workers, 64 concurrent callers (the pipelined path)
 *         mib   one worker, echo of a 1 MiB Buffer one after the other
 *
 * With WORKER_PROFILE_DIR (absolute), the workers run with --cpu-prof too. Then:
 *   node bench/experiments/cpuprofile-top.mjs prof/host/*.cpuprofile 30 CALLS
 */
import { ProcessProxy } from '@process-sandbox/core';

const [mode, callsArg, workerDir] = process.argv.slice(2);
const calls = Number(callsArg);
if (!['seq', 'tput', 'mib'].includes(mode) || !(calls > 0)) {
  console.error('usage: profile-sandbox.mjs seq|tput|mib CALLS [WORKER_PROFILE_DIR]');
  process.exit(2);
}
const workers = mode === 'tput' ? 2 : 1;
const proxy = await ProcessProxy.create({
  workerModule: new URL('../workers/sandbox.mjs', import.meta.url),
  workerExport: 'Echo',
  minPoolSize: workers,
  maxPoolSize: workers,
  execArgv: workerDir ? ['--cpu-prof', `--cpu-prof-dir=${workerDir}`] : [],
});
try {
  const t0 = performance.now();
  if (mode === 'seq') {
    for (let i = 0; i < calls; i++) if ((await proxy.echo(i)) !== i) throw new Error('wrong echo');
  } else if (mode === 'tput') {
    let issued = 0;
    await Promise.all(
      Array.from({ length: 64 }, async () => {
        while (issued < calls) {
          const x = issued++;
          if ((await proxy.echo(x)) !== x) throw new Error('wrong echo');
        }
      }),
    );
  } else {
    const payload = Buffer.alloc(1 << 20, 5);
    for (let i = 0; i < calls; i++) if ((await proxy.echo(payload)).length !== payload.length) throw new Error('wrong echo');
  }
  const ms = performance.now() - t0;
  const rate = mode === 'mib' ? `${((calls * 1.048576) / (ms / 1000)).toFixed(0)} MB/s` : `${Math.round((calls / ms) * 1000)} calls/s`;
  console.log(`${mode}: ${calls} calls in ${ms.toFixed(0)} ms, ${((ms * 1000) / calls).toFixed(1)} µs per call, ${rate}`);
} finally {
  await ProcessProxy.poolOf(proxy).dispose();
}

// The long chaos run: `npm run soak`. Same engine and checks as test/chaos.test.mjs, for minutes and
// tens of thousands of calls. Bounded: it stops issuing calls at SOAK_MINUTES (default 5) or
// SOAK_CALLS (default 100 000), whichever comes first, and a watchdog ends the process if settling
// and clean-up take more than two minutes beyond that. Exit status 0 when every check passed.
//
//   npm run soak                          # 5 minutes
//   SOAK_MINUTES=1 npm run soak           # shorter
//   CHAOS_SEED=1234 npm run soak          # replay a mix
//   GATE_FUZZ_PROCESS_RUNS=500 npm run soak   # fewer forged replies through fake workers (default 2 000)
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { chaosSeed, checkReport, runChaos, summarize } from './support/chaos.mjs';
import { markedProcesses } from './support/processes.mjs';

const minutes = Number(process.env.SOAK_MINUTES ?? 5);
const maxCalls = Number(process.env.SOAK_CALLS ?? 100_000);
if (!(minutes > 0) || !(maxCalls > 0)) {
  console.error('SOAK_MINUTES and SOAK_CALLS must be positive numbers');
  process.exit(2);
}
const seed = chaosSeed();
const durationMs = minutes * 60_000;
const watchdog = setTimeout(() => {
  console.error(`soak: still not finished ${minutes} min + 2 min after start; giving up`);
  process.exit(3);
}, durationMs + 120_000 + Number(process.env.GATE_FUZZ_PROCESS_RUNS ?? 2000) * 1000);
watchdog.unref();

console.log(`soak: seed ${seed} (replay: CHAOS_SEED=${seed}), up to ${minutes} min or ${maxCalls} calls, pool of 2`);
const started = Date.now();
const report = await runChaos({
  seed,
  calls: maxCalls,
  durationMs,
  progress: ({ calls, elapsedMs, workersStarted, hostFds, hostRssMiB, hostHeapMiB }) =>
    console.log(`  … ${calls} calls after ${Math.round(elapsedMs / 1000)} s, ${workersStarted} workers started; host: ${hostFds} fds, RSS ${hostRssMiB} MiB, V8 heap used ${hostHeapMiB} MiB (after GC)`),
});
console.log(summarize(report));
console.log(`  wall time ${((Date.now() - started) / 1000).toFixed(1)} s (issuing ${(report.issuingMs / 1000).toFixed(1)} s, dispose ${report.disposeMs} ms)`);

const problems = checkReport(report);

// The gate's fuzz (test/fuzz-worker-messages.test.mjs) with many more cases than `npm test` runs:
// GATE_FUZZ_RUNS messages in process (default 50 000) and GATE_FUZZ_PROCESS_RUNS forged replies
// through fake-worker processes (default 2 000).
const gateEnv = { GATE_FUZZ_RUNS: process.env.GATE_FUZZ_RUNS ?? '50000', GATE_FUZZ_PROCESS_RUNS: process.env.GATE_FUZZ_PROCESS_RUNS ?? '2000' };
console.log(`soak: the gate's fuzz, ${gateEnv.GATE_FUZZ_RUNS} messages in process and ${gateEnv.GATE_FUZZ_PROCESS_RUNS} through fake workers`);
const gateFuzz = spawnSync(process.execPath, [createRequire(import.meta.url).resolve('mocha/bin/mocha.js'), 'test/fuzz-worker-messages.test.mjs'], {
  cwd: fileURLToPath(new URL('..', import.meta.url)),
  env: { ...process.env, ...gateEnv },
  stdio: 'inherit',
});
if (gateFuzz.status !== 0) problems.push(`the gate's fuzz failed (exit ${gateFuzz.status ?? gateFuzz.signal})`);

const stray = markedProcesses();
if (stray.length > 0) problems.push(`processes of this run still alive: ${stray.join(', ')}`);
if (problems.length > 0) {
  console.error(`soak FAILED (seed ${seed}):\n  - ${problems.join('\n  - ')}`);
  process.exit(1);
}
console.log('soak passed');
process.exit(0);

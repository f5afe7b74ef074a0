// The long chaos run: `npm run soak`. Same engine and checks as test/chaos.test.mjs, for minutes and
// tens of thousands of calls. Bounded: it stops issuing calls at SOAK_MINUTES (default 5) or
// SOAK_CALLS (default 100 000), whichever comes first, and a watchdog ends the process if settling
// and clean-up take more than two minutes beyond that. Exit status 0 when every check passed.
//
//   npm run soak                          # 5 minutes
//   SOAK_MINUTES=1 npm run soak           # shorter
//   CHAOS_SEED=1234 npm run soak          # replay a mix
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
}, durationMs + 120_000);
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
const stray = markedProcesses();
if (stray.length > 0) problems.push(`processes of this run still alive: ${stray.join(', ')}`);
if (problems.length > 0) {
  console.error(`soak FAILED (seed ${seed}):\n  - ${problems.join('\n  - ')}`);
  process.exit(1);
}
console.log('soak passed');
process.exit(0);

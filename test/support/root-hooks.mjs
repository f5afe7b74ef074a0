// Suite-wide rule: a test that leaves a worker process (or anything a worker spawned) running fails.
// Every process a test run starts carries its marker (see processes.mjs). After each test, the
// marked processes that do not belong to a pool the suite keeps open on purpose (made in a `before`
// through support/pools.mjs) get a short grace to finish exiting; any still alive then are killed,
// so that later tests start clean, and the test fails naming them. After the last test, nothing
// marked may be alive at all. Before the first, the worker bundle must be as new as what it is built
// from (support/worker-bundle.mjs).
import { openPoolPids } from './pools.mjs';
import { commandLine, isAlive, markedProcesses, poll, underWine, withDescendants } from './processes.mjs';
import { bundleProblem } from './worker-bundle.mjs';

async function failOnSurvivors(allowed) {
  const strays = () => {
    const keep = allowed();
    return markedProcesses().filter((pid) => !keep.has(pid));
  };
  const clean = await poll(() => strays().length === 0, { timeoutMs: 5000, intervalMs: 25 });
  if (clean) return;
  const left = strays();
  const described = left.map((pid) => `${pid} (${commandLine(pid)})`);
  for (const pid of left) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {}
  }
  await poll(() => left.every((p) => !isAlive(p)), { timeoutMs: 2000 });
  // Under Wine, the conhost.exe that Wine itself starts beside a console process sometimes stays
  // after a worker that crashed early (twice in a few runs at load 8-10, never unloaded): Wine's
  // console host, not a process the library or a worker started (Windows makes conhost itself and
  // ends it with its last client; only a real Windows run can show it does). It is ended like any
  // survivor, and said, but not counted as one.
  const ours = underWine ? described.filter((d) => !/\(conhost\.exe\)$/i.test(d)) : described;
  if (ours.length < described.length) process.stderr.write(`[root-hooks] ended Wine's leftover console host: ${described.filter((d) => !ours.includes(d)).join('; ')}\n`);
  if (ours.length > 0) throw new Error(`left ${ours.length} process(es) running: ${ours.join('; ')}`);
}

export const mochaHooks = {
  beforeAll() {
    // Every test of a worker would run stale code, and pass or fail for the wrong reason.
    const problem = process.platform === 'win32' ? undefined : bundleProblem();
    if (problem) throw new Error(problem);
  },
  async afterEach() {
    await failOnSurvivors(() => withDescendants(openPoolPids()));
  },
  async afterAll() {
    await failOnSurvivors(() => new Set());
    // Mocha runs without --exit, so a handle some test left open keeps the run from ending: after a
    // while, say what still holds the event loop (this timer itself does not).
    setTimeout(() => {
      const handles = process._getActiveHandles().map((h) => `${h.constructor?.name}${h.pid ? ` pid ${h.pid} (${h.spawnargs?.join(' ')})` : ''}${h.remoteAddress || h._pipeName ? ` ${h.remoteAddress ?? h._pipeName}` : ''}`);
      process.stderr.write(`[root-hooks] the run has not ended 30 s after the last test; still open: ${process.getActiveResourcesInfo().join(', ')}; handles: ${handles.join('; ')}\n`);
    }, 30_000).unref();
  },
};

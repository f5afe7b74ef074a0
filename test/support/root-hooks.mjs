// Suite-wide rule: a test that leaves a worker process (or anything a worker spawned) running fails.
// Every process a test run starts carries its marker (see processes.mjs). After each test, the
// marked processes that do not belong to a pool the suite keeps open on purpose (made in a `before`
// through support/pools.mjs) get a short grace to finish exiting; any still alive then are killed,
// so that later tests start clean, and the test fails naming them. After the last test, nothing
// marked may be alive at all. Before the first, the worker bundle must be as new as what it is built
// from (support/worker-bundle.mjs).
import { openPoolPids } from './pools.mjs';
import { commandLine, isAlive, markedProcesses, poll, withDescendants } from './processes.mjs';
import { bundleProblem } from './worker-bundle.mjs';

async function failOnSurvivors(allowed) {
  const strays = () => {
    const keep = allowed();
    return markedProcesses().filter((pid) => !keep.has(pid));
  };
  const clean = await poll(() => strays().length === 0, { timeoutMs: 5000, intervalMs: 25 });
  if (clean) return;
  // Wine starts a conhost.exe beside console processes and ends it on its own once their last one is
  // gone: on a loaded machine, seconds later (seen once, at load 8). It gets a longer grace, not a pass.
  if (process.platform === 'win32' && strays().every((pid) => /conhost\.exe$/i.test(commandLine(pid)))) {
    if (await poll(() => strays().length === 0, { timeoutMs: 20_000, intervalMs: 100 })) return; // (the hook has 30 s)
  }
  const left = strays();
  const described = left.map((pid) => `${pid} (${commandLine(pid)})`);
  for (const pid of left) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {}
  }
  await poll(() => left.every((p) => !isAlive(p)), { timeoutMs: 2000 });
  throw new Error(`left ${left.length} process(es) running: ${described.join('; ')}`);
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

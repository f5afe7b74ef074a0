// Suite-wide rule: a test that leaves a worker process (or anything a worker spawned) running fails.
// After each test, processes carrying this run's marker get a short grace to finish exiting; any
// still alive then are killed (so later tests start clean) and the test is failed, naming them.
import { commandLine, isAlive, markedProcesses, waitFor } from './processes.mjs';

export const mochaHooks = {
  async afterEach() {
    const survivors = await waitFor(
      () => {
        const left = markedProcesses();
        return left.length === 0 ? [] : false;
      },
      { timeoutMs: 3000, intervalMs: 25 },
    );
    if (survivors) return;
    const left = markedProcesses();
    const described = left.map((pid) => `${pid} (${commandLine(pid)})`);
    for (const pid of left) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {}
    }
    await waitFor(() => left.every((p) => !isAlive(p)), { timeoutMs: 2000 });
    throw new Error(`The test left ${left.length} process(es) running: ${described.join('; ')}`);
  },
};

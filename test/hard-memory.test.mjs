// hardMemoryLimitMB holds while a call runs: a worker allocating as fast as it can is stopped
// within 2x the limit (the host reads a running worker's resident size every few ms on Linux,
// not once per healthIntervalMs). This bounds memory, not time: the figure asserted is the host's
// own reading that triggered the kill. The worker's true peak (VmHWM, read while the kill has it
// stopped) is printed alongside, for docs/reliability.md.
import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import { ProcessProxy, ResourceLimitError } from '@process-sandbox/core';
import { createProxy, disposeProxies, fixture, rejectionOf } from './support/pools.mjs';
import { isAlive, skipBecause, waitFor } from './support/processes.mjs';

const { armedMemoryWatches } = await import(new URL('../packages/core/dist/memory-watch.js', import.meta.url).href);

const leaky = { workerModule: fixture('leaky.mjs'), workerExport: 'Leaky' };
const LIMIT_MB = 300;

/** Peak resident MiB of `pid` over its life (VmHWM), or undefined once it is gone. */
function peakMiB(pid) {
  try {
    const kb = Number(/^VmHWM:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]);
    return Number.isFinite(kb) ? Math.round(kb / 1024) : undefined;
  } catch {
    return undefined;
  }
}

describe('hardMemoryLimitMB while a call runs', function () {
  this.timeout(30_000);
  afterEach(disposeProxies);

  it(`a worker allocating 64 MiB blocks flat out with hardMemoryLimitMB ${LIMIT_MB} is killed below 2x the limit, three times running`, async function () {
    if (process.platform !== 'linux') skipBecause(this, 'the running-call watch reads /proc; elsewhere the sampler alone enforces the limit');
    // The default healthIntervalMs (1 s): what stops the worker is the watch, not the sampler.
    const proxy = await createProxy({ ...leaky, maxPoolSize: 1, hardMemoryLimitMB: LIMIT_MB });
    const pool = ProcessProxy.poolOf(proxy);
    const figures = [];
    for (let round = 0; round < 3; round++) {
      const pid = await proxy.pid();
      let peak;
      // Emitted just before the kill; the next turn finds the worker stopped (SIGSTOP) but not yet reaped.
      const onRecycled = (event) => {
        if (event.pid === pid) setImmediate(() => (peak = peakMiB(pid)));
      };
      pool.on('workerRecycled', onRecycled);
      const error = await rejectionOf(proxy.allocateFast());
      pool.off('workerRecycled', onRecycled);
      expect(error).to.be.an.instanceOf(ResourceLimitError);
      expect(error).to.include({ limit: 'hardMemory', pid, method: 'allocateFast' });
      const seen = Number(/resident memory (\d+) MiB reached hardMemoryLimitMB \(300\)/.exec(error.message)?.[1]);
      expect(seen).to.be.at.least(LIMIT_MB);
      expect(seen).to.be.below(2 * LIMIT_MB);
      await waitFor(() => !isAlive(pid), `worker ${pid} to end`, { timeoutMs: 5000 });
      figures.push(`${seen} MiB seen${peak === undefined ? '' : `, ${peak} MiB peak (VmHWM)`}`);
    }
    console.log(`      (limit ${LIMIT_MB} MiB: ${figures.join('; ')})`);
    expect(pool.stats().totals.recycles.hardMemory).to.equal(3);
  });

  it('the watch ticks only while a call runs: armed by a running call, disarmed when it returns, never in an idle pool', async function () {
    if (process.platform !== 'linux') skipBecause(this, 'the running-call watch reads /proc; elsewhere there is none');
    const base = armedMemoryWatches();
    const proxy = await createProxy({ workerModule: fixture('torture.mjs'), workerExport: 'Torture', maxPoolSize: 1, hardMemoryLimitMB: LIMIT_MB });
    expect(armedMemoryWatches(), 'idle after start').to.equal(base);
    for (let round = 0; round < 2; round++) {
      // Long enough to be seen running by a poll every 10 ms, however loaded the machine.
      const call = proxy.delayed(round, 1500);
      await waitFor(() => armedMemoryWatches() === base + 1, 'the watch to be armed while the call runs');
      expect(await call).to.equal(round);
      // The worker went idle before its caller got the value: the watch is already at rest.
      expect(armedMemoryWatches(), 'idle after the call').to.equal(base);
    }
  });
});

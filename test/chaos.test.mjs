// Chaos: a seeded random mix of normal calls and every kind of fault, under load, against a pool of
// two workers (the engine and its checks: support/chaos.mjs; the long version: `npm run soak`).
// The seed is printed; CHAOS_SEED=<seed> replays the same mix (the timing, of course, differs).
import { expect } from 'chai';
import { chaosSeed, checkReport, runChaos, summarize } from './support/chaos.mjs';
import { disposeProxies } from './support/pools.mjs';

const CALLS = Number(process.env.CHAOS_CALLS ?? 3000);

describe('chaos', function () {
  before(function () {
    // POSIX-specific: its fault mix includes SIGSEGV (no such signal on Windows) and a /proc descriptor baseline.
    if (process.platform === 'win32') this.skip();
  });
  this.timeout(120_000);
  afterEach(disposeProxies);

  it(`${CALLS} calls, about one in nine a fault of one of six kinds: every call settles exactly once as its kind implies, no worker survives, the host is back to its baseline`, async () => {
    const seed = chaosSeed();
    console.log(`      chaos seed ${seed} (replay with CHAOS_SEED=${seed})`);
    const report = await runChaos({ seed, calls: CALLS });
    console.log(summarize(report).replace(/^/gm, '      '));

    expect(checkReport(report), `seed ${seed}`).to.deep.equal([]);
    // The mix really contained every kind of fault, and each did what it should.
    for (const kind of ['thrown', 'exit', 'segv', 'hang', 'leakMemory', 'leakFds']) expect(report.issued[kind], kind).to.be.above(0);
    expect(report.outcomes.normal).to.deep.equal({ value: report.issued.normal });
    expect(report.outcomes.thrown).to.deep.equal({ RemoteError: report.issued.thrown });
    expect(report.outcomes.hang).to.deep.equal({ CallTimeoutError: report.issued.hang });
    expect(report.totals).to.include({ calls: report.calls, succeeded: report.issued.normal + report.issued.leakMemory + report.issued.leakFds });
    expect(report.aliveAfter).to.deep.equal([]);
    expect(report.markedAfter).to.deep.equal([]);
  });
});

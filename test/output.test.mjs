// A worker's stdout and stderr are hostile input too: whatever it prints, the host stays up, its
// memory stays flat, lines are cut at MAX_LINE_BYTES, and the logger gets a bounded rate with an
// honest count of what was dropped.
import { expect } from 'chai';
import { createProxy, disposeProxies, fixture, memoryLogger } from './support/pools.mjs';
import { waitFor } from './support/processes.mjs';

const printer = { workerModule: fixture('printer.mjs'), workerExport: 'Printer', maxPoolSize: 1, methodCallTimeoutMs: 120_000 };
const MiB = 1024 * 1024;
const MAX_LINE_BYTES = 16 * 1024;
const LINES_PER_SECOND = 100;

/** Samples this process's RSS every few ms while `run` goes on; resolves with its result and the peak. */
async function peakRss(run) {
  let peak = process.memoryUsage().rss;
  const timer = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 5);
  try {
    const result = await run();
    return { result, peak: Math.max(peak, process.memoryUsage().rss) };
  } finally {
    clearInterval(timer);
  }
}

describe('worker output', function () {
  this.timeout(180_000);
  afterEach(disposeProxies);

  it('600 MiB without a newline on stdout and 300 MiB on stderr: the host stays up and flat, the line is cut with a marker, the call returns', async () => {
    const logger = memoryLogger();
    const proxy = await createProxy({ ...printer, logger });
    const pid = await proxy.pid();
    // Warm up (the first MiBs grow the heap and the stream machinery to their working size): what is
    // measured is whether memory grows with what the worker prints.
    await proxy.flood('stdout', 32);
    await proxy.flood('stderr', 32);
    globalThis.gc?.();
    const before = process.memoryUsage().rss;
    const { result, peak } = await peakRss(async () => [await proxy.flood('stdout', 600), await proxy.flood('stderr', 300)]);
    const after = process.memoryUsage().rss;
    console.log(`      host RSS: before ${(before / MiB).toFixed(0)} MiB, peak ${(peak / MiB).toFixed(0)} MiB (+${((peak - before) / MiB).toFixed(1)}), after ${(after / MiB).toFixed(0)} MiB`);
    expect(result).to.deep.equal([600, 300]);
    expect(peak - before, 'host RSS growth while the worker printed 900 MiB').to.be.below(64 * MiB);

    const cut = await waitFor(() => {
      const lines = logger.lines.filter((l) => l.obj.pid === pid && l.obj.truncatedBytes > 32 * MiB);
      return lines.length === 2 ? lines : undefined;
    }, 'one truncated line per stream in the log');
    expect(cut, 'one truncated line per stream').to.have.length(2);
    const [out, err] = [cut.find((l) => l.obj.stream === 'stdout'), cut.find((l) => l.obj.stream === 'stderr')];
    expect(out.obj.truncatedBytes).to.equal(600 * MiB - MAX_LINE_BYTES);
    expect(out.msg).to.equal(`[worker ${pid}] ${'x'.repeat(MAX_LINE_BYTES)}… [truncated ${600 * MiB - MAX_LINE_BYTES} bytes]`);
    expect(out.level).to.equal('info');
    expect(err.obj.truncatedBytes).to.equal(300 * MiB - MAX_LINE_BYTES);
    expect(err.level).to.equal('warn');
    expect(await proxy.pid(), 'the worker still serves').to.equal(pid);
  });

  it('10^5 short lines: the logger gets at most the rate budget, and one line counts exactly what was dropped', async () => {
    const logger = memoryLogger();
    const proxy = await createProxy({ ...printer, logger });
    const pid = await proxy.pid();
    const started = performance.now();
    expect(await proxy.lines(100_000)).to.equal(100_000);
    const report = await waitFor(() => logger.lines.find((l) => l.obj.pid === pid && l.obj.droppedLines !== undefined), 'the dropped-lines report', { timeoutMs: 10_000 });
    const elapsedS = (performance.now() - started) / 1000;
    expect(report, 'a dropped-lines report').to.not.equal(undefined);
    const logged = logger.lines.filter((l) => l.obj.pid === pid && /^\[worker \d+\] line \d+$/.test(l.msg));
    console.log(`      ${logged.length} lines logged, ${report.obj.droppedLines} dropped and reported, within ${elapsedS.toFixed(2)} s`);
    // A burst of one second's worth, then the refill rate.
    expect(logged.length).to.be.at.most(LINES_PER_SECOND + Math.ceil(LINES_PER_SECOND * elapsedS));
    expect(logged.length).to.be.at.least(LINES_PER_SECOND);
    expect(logged[0].msg).to.equal(`[worker ${pid}] line 0`);
    // Every line is either logged or counted.
    const reports = logger.lines.filter((l) => l.obj.pid === pid && l.obj.droppedLines !== undefined);
    const dropped = reports.reduce((n, r) => n + r.obj.droppedLines, 0);
    expect(logged.length + dropped).to.equal(100_000);
    expect(report.msg).to.match(/dropped \d+ lines \(\d+ bytes\) of output: over 100 lines\/s or 1 MiB\/s/);
  });

  it('a logger that throws does not break the pool', async () => {
    const throwing = { debug() {}, info() { throw new Error('logger broke'); }, warn() { throw new Error('logger broke'); }, error() {} };
    const proxy = await createProxy({ ...printer, logger: throwing });
    expect(await proxy.lines(10)).to.equal(10);
    expect(await proxy.flood('stderr', 1)).to.equal(1);
    expect(await proxy.lines(10)).to.equal(10);
  });
});

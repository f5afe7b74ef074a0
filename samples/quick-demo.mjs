// The quick demo: an interface implemented in samples/calculator, called as if it were local, while
// it runs in worker processes — including one that crashes and one that hangs.
import { CallTimeoutError, ProcessProxy, RemoteError, WorkerCrashedError } from '@process-sandbox/core';

const calc = await ProcessProxy.create({
  workerModule: new URL('./calculator/calculator.mjs', import.meta.url),
  workerExport: 'CalculatorImpl',
  minPoolSize: 2,
  maxPoolSize: 2,
  methodCallTimeoutMs: 1_000,
});
const pool = ProcessProxy.poolOf(calc);
const expectations = [];
const expect = (what, ok) => {
  expectations.push({ what, ok });
  console.log(`${ok ? '✓' : '✗'} ${what}`);
};

try {
  expect('add(1, 2) is 3, computed in a worker process', (await calc.add(1, 2)) === 3 && (await calc.pid()) !== process.pid);

  const squares = await Promise.all([1, 2, 3, 4, 5, 6].map((x) => calc.slowSquare(x, 100)));
  expect(`six concurrent calls over two workers: ${squares.join(', ')}`, squares.join() === '1,4,9,16,25,36');

  try {
    await calc.divide(1, 0);
    expect('divide(1, 0) throws', false);
  } catch (error) {
    expect(`divide(1, 0) throws a RemoteError keeping the remote ${error.remoteName} and its code ${error.code}`, error instanceof RemoteError && error.code === 'E_DIV_ZERO');
  }

  const before = await calc.pid();
  try {
    await calc.crash();
    expect('crash() rejects', false);
  } catch (error) {
    expect(`crash() kills its worker (${error.message}); only that call fails`, error instanceof WorkerCrashedError && error.exitCode === 3);
  }
  expect('the next call is served by a fresh worker', (await calc.add(2, 2)) === 4 && (await calc.pid()) !== before);

  try {
    await calc.slowSquare(9, 5_000);
    expect('a hanging call times out', false);
  } catch (error) {
    expect(`a call that hangs past methodCallTimeoutMs is killed: ${error.message}`, error instanceof CallTimeoutError);
  }
  expect('and the pool carries on', (await calc.add(20, 22)) === 42);

  const { totals, workers } = pool.stats();
  console.log('\nworkers:', workers.map((w) => `pid ${w.pid} ${w.state} calls=${w.calls} rss=${Math.round((w.rssBytes ?? 0) / 1048576)}MiB`).join('; '));
  console.log('totals:', JSON.stringify(totals));
} finally {
  await pool.dispose();
}

const failed = expectations.filter((e) => !e.ok);
console.log(`\n${expectations.length - failed.length} of ${expectations.length} expectations held${failed.length ? `; failed: ${failed.map((f) => f.what).join('; ')}` : ''}.`);
process.exitCode = failed.length ? 1 : 0;

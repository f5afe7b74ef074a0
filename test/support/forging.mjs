// A pool of fake workers (fixtures/fake-worker.mjs) whose `forge(script)` method answers with
// whatever messages the test scripts, and the checks every hostile-message test makes: the host
// is alive (nothing uncaught), the call settles exactly once with a typed error, the next call
// works, and the broken worker's process is gone.
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import { ProcessProxy, ProtocolError, WorkerCrashedError } from '@process-sandbox/core';
import { createProxy, fixture, memoryLogger, nextEvent } from './pools.mjs';
import { waitForExit } from './processes.mjs';

export const fakeWorker = { workerModule: fixture('torture.mjs'), execArgv: [fileURLToPath(new URL('../fixtures/fake-worker.mjs', import.meta.url))] };

/** Counts a promise's settlements. */
export function counted(promise) {
  const entry = { settlements: 0, value: undefined, error: undefined };
  entry.done = promise.then(
    (value) => {
      entry.settlements++;
      entry.value = value;
    },
    (error) => {
      entry.settlements++;
      entry.error = error;
    },
  );
  return entry;
}

/** Records anything that escapes into the host as uncaught, for as long as the returned stop() is not called. */
export function watchUncaught() {
  const escaped = [];
  const onException = (error) => escaped.push(error);
  const onRejection = (error) => escaped.push(error);
  process.on('uncaughtExceptionMonitor', onException);
  process.on('unhandledRejection', onRejection);
  return {
    escaped,
    stop() {
      process.off('uncaughtExceptionMonitor', onException);
      process.off('unhandledRejection', onRejection);
    },
  };
}

export async function forgingPool(options = {}) {
  const logger = memoryLogger();
  const proxy = await createProxy({ ...fakeWorker, maxPoolSize: 1, logger, ...options });
  const pool = ProcessProxy.poolOf(proxy);
  const settled = [];
  pool.on('callSettled', (e) => settled.push(e));
  return { proxy, pool, logger, settled, calls: 0 };
}

/**
 * Has the worker answer one call with `script`, and asserts that it is killed for a protocol error
 * matching `why`: the call rejects once with WorkerCrashedError caused by that ProtocolError, the
 * crash is reported with reason 'protocol', the process is gone, and the next call works.
 */
export async function expectProtocolKill(ctx, script, why, label = JSON.stringify(script).slice(0, 120)) {
  const { proxy, pool } = ctx;
  const pid = await warmWorker(ctx);
  const crashed = nextEvent(pool, 'workerCrashed');
  const entry = counted(proxy.forge(script));
  ctx.calls++;
  await entry.done;
  expect(entry.error, `${label}: rejected`).to.be.an.instanceOf(WorkerCrashedError);
  expect(entry.error, label).to.include({ pid, method: 'forge' });
  expect(entry.error.cause, `${label}: the cause`).to.be.an.instanceOf(ProtocolError);
  expect(entry.error.cause.message, label).to.match(why);
  expect(entry.error.message, label).to.match(/protocol error/);
  const event = await crashed;
  expect(event, label).to.include({ pid, reason: 'protocol', method: 'forge' });
  await waitForExit([pid]);
  await expectServing(ctx, label);
  expect(entry.settlements, `${label}: settlements`).to.equal(1);
  return entry.error;
}

/**
 * Has the worker serve YOUNG_CALLS (3) calls first and returns its pid: a worker that dies younger
 * counts toward the pool's circuit breaker, which opens after three such deaths in a row (a crash
 * loop). Forging workers that served are not a crash loop, so one pool can take many forgeries.
 */
export async function warmWorker(ctx) {
  const pid = await ctx.proxy.pid();
  await ctx.proxy.echo('warm');
  await ctx.proxy.echo('warm');
  ctx.calls += 3;
  expect(await ctx.proxy.pid(), 'one worker served the warm-up calls').to.equal(pid);
  ctx.calls++;
  return pid;
}

/** The pool still serves, and every call made so far settled exactly once. */
export async function expectServing(ctx, label = '') {
  const token = `next-${ctx.calls}`;
  ctx.calls++;
  expect(await ctx.proxy.echo(token), `${label}: the next call`).to.equal(token);
  expect(ctx.settled.length, `${label}: callSettled events (one per call)`).to.equal(ctx.calls);
}

/**
 * The hooks every hostile-worker suite shares: nothing may escape into the host as an uncaught
 * exception or unhandled rejection while a test runs, and every pool is disposed after it.
 */
export function forbidEscapes(disposeProxies) {
  let uncaught;
  beforeEach(() => (uncaught = watchUncaught()));
  afterEach(async () => {
    uncaught.stop();
    await disposeProxies();
    expect(uncaught.escaped, 'exceptions or rejections that escaped into the host').to.deep.equal([]);
  });
}

import { readFileSync } from 'node:fs';
import { expect } from 'chai';
import { CallTimeoutError, ProcessProxy, WorkerCrashedError } from '@process-sandbox/core';
import { createProxy, disposeProxies, fixture, gate, nextEvent, rejectionOf } from './support/pools.mjs';
import { isAlive, waitFor, waitForExit } from './support/processes.mjs';

const torture = { workerModule: fixture('torture.mjs'), workerExport: 'Torture' };

/** Whether `pid` has exited (a zombie nobody reaped yet counts), read synchronously from /proc. */
function deadOrZombie(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
    return stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z');
  } catch {
    return true;
  }
}

describe('crashes and timeouts', function () {
  afterEach(disposeProxies);

  it('process.exit(3): rejects the running call with the exit code; the next call runs on a new pid', async () => {
    const proxy = await createProxy({ ...torture, maxPoolSize: 1 });
    const pid = await proxy.pid();
    const error = await rejectionOf(proxy.exit(3));
    expect(error).to.be.an.instanceOf(WorkerCrashedError);
    expect(error.code).to.equal('ERR_PS_WORKER_CRASHED');
    expect(error).to.include({ pid, exitCode: 3, signal: null, method: 'exit' });
    expect(isAlive(pid)).to.equal(false);
    const next = await proxy.pid();
    expect(next).to.not.equal(pid);
    expect(await proxy.echo('alive')).to.equal('alive');
  });

  it('SIGSEGV: rejects the running call with the signal; the next call runs on a new pid', async function () {
    if (process.platform === 'win32') this.skip(); // POSIX signal: process.kill(pid, 'SIGSEGV') is ENOSYS on Windows
    const proxy = await createProxy({ ...torture, maxPoolSize: 1 });
    const pid = await proxy.pid();
    const error = await rejectionOf(proxy.segfault());
    expect(error).to.be.an.instanceOf(WorkerCrashedError);
    expect(error).to.include({ pid, exitCode: null, signal: 'SIGSEGV', method: 'segfault' });
    expect(await proxy.pid()).to.not.equal(pid);
  });

  it('an uncaught throw in a timer after the reply: the call succeeded, the crash is reported, the next call runs on a new pid', async () => {
    const proxy = await createProxy({ ...torture, maxPoolSize: 1 });
    const pool = ProcessProxy.poolOf(proxy);
    const pid = await proxy.pid();
    const crashed = nextEvent(pool, 'workerCrashed');
    expect(await proxy.throwLater(20)).to.equal('replied');
    const event = await crashed;
    expect(event).to.include({ pid, exitCode: 70 });
    expect(event.detail).to.include('thrown from a timer after the reply');
    expect(await proxy.pid()).to.not.equal(pid);
    expect(pool.stats().totals).to.include({ crashes: 1, failed: 0 });
  });

  it('an unhandled rejection after the reply is reported and the worker replaced', async () => {
    const proxy = await createProxy({ ...torture, maxPoolSize: 1 });
    const pool = ProcessProxy.poolOf(proxy);
    const pid = await proxy.pid();
    const crashed = nextEvent(pool, 'workerCrashed');
    await proxy.rejectLater(10);
    expect((await crashed).detail).to.include('unhandled rejection after the reply');
    expect(await proxy.pid()).to.not.equal(pid);
  });

  it('a fatal error during a call becomes the cause of the WorkerCrashedError', async () => {
    const proxy = await createProxy({ ...torture, maxPoolSize: 1 });
    // The call arms a timer that throws, and never returns: the fatal error lands during it.
    const error = await rejectionOf(proxy.fatalDuringCall());
    expect(error).to.be.an.instanceOf(WorkerCrashedError);
    expect(error.exitCode).to.equal(70);
    expect(error.cause?.message).to.equal('thrown from a timer during the call');
  });

  it('only the running call fails: queued calls survive a crash and run exactly once on a live worker', async () => {
    const proxy = await createProxy({ ...torture, maxPoolSize: 1 });
    const first = proxy.exit(1);
    const queued = Array.from({ length: 20 }, (_, i) => proxy.exclusive(i, 0));
    expect(await rejectionOf(first)).to.be.an.instanceOf(WorkerCrashedError);
    expect(await Promise.all(queued)).to.deep.equal([...Array(20).keys()]);
    // Exactly once: the replacement saw each index once, in order.
    expect(await proxy.order()).to.deep.equal([...Array(20).keys()]);
  });

  it('a synchronous infinite loop times out, its worker is killed and replaced', async () => {
    const proxy = await createProxy({ ...torture, maxPoolSize: 1, methodCallTimeoutMs: 1000 });
    const pool = ProcessProxy.poolOf(proxy);
    const pid = await proxy.pid();
    const timedOut = nextEvent(pool, 'callTimedOut');
    const queued = proxy.echo('after the hang');
    const started = Date.now();
    const error = await rejectionOf(proxy.spin());
    // Not before its timeout (no upper bound: that would be a claim about the machine's load).
    expect(Date.now() - started).to.be.at.least(950);
    expect(error).to.be.an.instanceOf(CallTimeoutError);
    expect(error).to.include({ code: 'ERR_PS_CALL_TIMEOUT', method: 'spin', timeoutMs: 1000, pid });
    expect(await timedOut).to.include({ pid, method: 'spin' });
    await waitForExit([pid]);
    // The call queued behind the hang was not lost.
    expect(await queued).to.equal('after the hang');
    expect(await proxy.pid()).to.not.equal(pid);
    expect(pool.stats().totals.timeouts).to.equal(1);
  });

  it('a worker that died before its call timed out is a crash, even when the host only looks after the timeout (busy or descheduled)', async function () {
    if (process.platform !== 'linux') this.skip(); // whether the worker is dead is read from /proc, without turning the loop
    const proxy = await createProxy({ workerModule: fixture('crasher.mjs'), workerExport: 'Crasher', maxPoolSize: 1, methodCallTimeoutMs: 300 });
    const pid = await proxy.pid();
    const called = performance.now();
    const outcome = rejectionOf(proxy.busyThenSignal(0, 'SIGSEGV'));
    // Let the Invoke be written, then hold this thread (its loop does not turn) until the worker is
    // dead and the call's timeout has passed: its timer, its EOF and its exit are all due at once.
    for (let i = 0; i < 5; i++) await new Promise((resolve) => setImmediate(resolve));
    const deadline = performance.now() + 60_000;
    while (!deadOrZombie(pid)) {
      if (performance.now() > deadline) throw new Error(`worker ${pid} did not die of its SIGSEGV within 60 s`);
    }
    while (performance.now() < called + 300 + 200);
    const error = await outcome;
    expect(error, String(error)).to.be.an.instanceOf(WorkerCrashedError);
    expect(error.signal).to.equal('SIGSEGV');
    expect(error.pid).to.equal(pid);
  });

  it('the timeout clock starts when the call reaches a worker, not when it is queued', async () => {
    const proxy = await createProxy({ ...torture, maxPoolSize: 1, methodCallTimeoutMs: 1000 });
    const pool = ProcessProxy.poolOf(proxy);
    // The worker is held by a call with a timeout of its own, until the test opens the gate...
    const held = gate();
    const holder = ProcessProxy.with(proxy, { timeoutMs: 120_000 }).gate(held.path, 'holder');
    // ...while these wait, one sent ahead to the worker, the others in the queue, under the pool's 1 s.
    const waiting = [0, 1, 2].map((i) => proxy.echo(i));
    await waitFor(() => pool.stats().totals.inFlight === 2 && pool.stats().totals.queued === 2, 'one call running, one sent ahead, two queued');
    // Longer than their timeout (a slower machine only makes it longer), then let them run.
    await new Promise((r) => setTimeout(r, 2500));
    held.open();
    expect(await holder).to.equal('holder');
    expect(await Promise.all(waiting)).to.deep.equal([0, 1, 2]);
    expect(pool.stats().totals.timeouts).to.equal(0);
  });
});

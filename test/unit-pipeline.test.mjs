// The deeper lookahead (pipelineDepth: N calls sent ahead to a busy worker) against fake workers and a
// fake clock: order, spreading, priorities (recall), aborts and queue timeouts of calls ahead, a
// worker dying with N ahead, exact recycle thresholds, and recalls when a worker is free or retired.
// With real processes: test/pipelining.test.mjs.
import { expect } from 'chai';
import { CallAbortedError, QueueTimeoutError, WorkerCrashedError } from '@process-sandbox/core';
import { decodeValue } from '@process-sandbox/abstractions';
import { fakePool, flush, track, startedPool as started, stopPool as stop } from './support/fake-workers.mjs';

/** A call's first argument, read back from its encoded Invoke frame (what the worker would get). */
const arg = (call) => decodeValue(call.frame.subarray(4))[3][0];

/** Replies to whatever each worker runs, dropping what a Cancel asked for, until nothing runs: the calls in the order they ran. */
async function runAll(workers) {
  const order = [];
  for (let round = 0; round < 1000; round++) {
    let busy = false;
    for (const w of workers) {
      w.dropCancelled();
      if (!w.currentCall) continue;
      order.push(w.currentCall);
      w.reply(arg(w.currentCall));
      busy = true;
      await flush();
    }
    await flush();
    if (!busy && !workers.some((w) => w.currentCall)) return order;
  }
  throw new Error('runAll: calls still running after 1000 rounds');
}

/** How many times each call was written to any worker. */
const sends = (workers, call) => workers.flatMap((w) => w.sent).filter((c) => c === call).length;

describe('unit: lookahead of N calls (pipelineDepth)', function () {
  it('sends up to pipelineDepth calls ahead, runs them one at a time in order, and counts them', async () => {
    const f = await started({ maxPoolSize: 1, pipelineDepth: 3 });
    const calls = Array.from({ length: 10 }, (_, i) => track(f.pool.invoke('add', [i, 0])));
    await flush();
    const [w] = f.workers;
    expect(w.aheadCalls.map((c) => c.id)).to.deep.equal([2, 3, 4]);
    expect(w.aheadCalls.every((c) => c.state === 'ahead')).to.equal(true);
    expect(f.pool.stats().totals).to.include({ inFlight: 4, queued: 6 });
    w.reply(0);
    await flush();
    expect(w.currentCall.id).to.equal(2);
    expect(w.aheadCalls.map((c) => c.id), 'topped up from the head of the line').to.deep.equal([3, 4, 5]);
    const order = await runAll(f.workers);
    expect([1, ...order.map((c) => c.id)]).to.deep.equal([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    expect(calls.every((c) => c.settled && c.error === undefined)).to.equal(true);
    expect(w.sent).to.have.length(10);
    expect(f.pool.stats().totals).to.include({ succeeded: 10, queued: 0, inFlight: 0 });
    await stop(f);
  });

  it('pipelineDepth: 0 sends nothing ahead', async () => {
    const f = await started({ maxPoolSize: 1, pipelineDepth: 0 });
    for (let i = 0; i < 3; i++) track(f.pool.invoke('add', [i, 0]));
    await flush();
    expect(f.workers[0].aheadCalls).to.have.length(0);
    expect(f.pool.stats().totals).to.include({ inFlight: 1, queued: 2 });
    expect(await runAll(f.workers)).to.have.length(3);
    await stop(f);
  });

  it('spreads the calls ahead evenly: each goes to the worker holding the fewest', async () => {
    const f = await started({ minPoolSize: 2, maxPoolSize: 2, pipelineDepth: 3 });
    for (let i = 0; i < 6; i++) track(f.pool.invoke('add', [i, 0]));
    await flush();
    expect(f.workers.map((w) => w.aheadCalls.length)).to.deep.equal([2, 2]);
    expect(await runAll(f.workers)).to.have.length(6);
    await stop(f);
  });

  it('a call of higher priority recalls the calls ahead of lower priority: it runs next, they follow in their order', async () => {
    const f = await started({ maxPoolSize: 1, pipelineDepth: 3 });
    const [w] = f.workers;
    const low = Array.from({ length: 5 }, (_, i) => track(f.pool.invoke('add', [`low${i}`, 0])));
    await flush();
    const ahead = [...w.aheadCalls];
    expect(ahead).to.have.length(3);
    const high = track(f.pool.invoke('add', ['high', 0], { priority: 5 }));
    await flush();
    expect(w.cancels, 'every lower call ahead is recalled').to.deep.equal(ahead);
    expect(ahead.every((c) => !c.settled), 'recalled, not failed').to.equal(true);
    const order = await runAll(f.workers);
    expect(order.map((c) => arg(c))).to.deep.equal(['low0', 'high', 'low1', 'low2', 'low3', 'low4']);
    expect(low.every((c) => c.settled && !c.error) && high.value === 'high').to.equal(true);
    for (const call of ahead) expect(sends(f.workers, call), 'recalled and sent again, run once').to.equal(2);
    expect(f.pool.stats().totals).to.include({ succeeded: 6, failed: 0, queued: 0, inFlight: 0 });
    await stop(f);
  });

  it('a recalled call the worker had already started runs there, not twice and not killed', async () => {
    const f = await started({ maxPoolSize: 1, pipelineDepth: 2 });
    const [w] = f.workers;
    track(f.pool.invoke('add', ['first', 0]));
    const a = track(f.pool.invoke('add', ['a', 0]));
    track(f.pool.invoke('add', ['b', 0]));
    await flush();
    const [callA, callB] = w.aheadCalls;
    const high = track(f.pool.invoke('add', ['high', 0], { priority: 1 }));
    await flush();
    expect(w.cancels).to.deep.equal([callA, callB]);
    // The first call's reply was written before the Cancel arrived: `a` had started. `b` is dropped.
    w.reply('first');
    expect(w.currentCall).to.equal(callA);
    w.dropAhead(callB);
    await flush();
    expect(w.live).to.equal(true);
    const order = await runAll(f.workers);
    expect(order.map((c) => arg(c))).to.deep.equal(['a', 'high', 'b']);
    expect(a.value).to.equal('a');
    expect(high.value).to.equal('high');
    expect(sends(f.workers, callA)).to.equal(1);
    await stop(f);
  });

  it('aborts one of the calls ahead: it settles at once, only it is cancelled, the others run in order', async () => {
    const f = await started({ maxPoolSize: 1, pipelineDepth: 3 });
    const [w] = f.workers;
    const controller = new AbortController();
    track(f.pool.invoke('add', ['running', 0]));
    track(f.pool.invoke('add', ['a', 0]));
    const aborted = track(f.pool.invoke('add', ['b', 0], { signal: controller.signal }));
    track(f.pool.invoke('add', ['c', 0]));
    await flush();
    const callB = w.aheadCalls[1];
    controller.abort();
    await flush();
    expect(aborted.error).to.be.instanceOf(CallAbortedError);
    expect(aborted.error.running).to.equal(false);
    expect(w.cancels).to.deep.equal([callB]);
    const order = await runAll(f.workers);
    expect(order.map((c) => arg(c))).to.deep.equal(['running', 'a', 'c']);
    expect(w.live, 'nobody killed').to.equal(true);
    expect(sends(f.workers, callB)).to.equal(1);
    await stop(f);
  });

  it('an abort that comes too late (the worker had started the call) kills the worker; the calls behind it run elsewhere once', async () => {
    const f = await started({ maxPoolSize: 1, pipelineDepth: 3 });
    const [w1] = f.workers;
    const controller = new AbortController();
    track(f.pool.invoke('add', ['running', 0]));
    const aborted = track(f.pool.invoke('add', ['a', 0], { signal: controller.signal }));
    const rest = ['b', 'c'].map((x) => track(f.pool.invoke('add', [x, 0])));
    await flush();
    const behind = w1.aheadCalls.slice(1);
    controller.abort();
    await flush();
    expect(aborted.error).to.be.instanceOf(CallAbortedError);
    w1.reply('running'); // written before the Cancel arrived: `a` started in the worker
    await flush();
    expect(w1.terminal, 'an abort of a running call kills').to.equal(true);
    const order = await runAll(f.workers);
    expect(order.map((c) => arg(c))).to.deep.equal(['b', 'c']);
    expect(rest.map((r) => r.value)).to.deep.equal(['b', 'c']);
    for (const call of behind) expect(sends(f.workers, call)).to.equal(2);
    await stop(f);
  });

  it('a worker that dies with N calls ahead: the running one fails, each call ahead is re-dispatched exactly once, in order', async () => {
    const f = await started({ maxPoolSize: 1, pipelineDepth: 4 });
    const [w1] = f.workers;
    const running = track(f.pool.invoke('add', ['running', 0]));
    const ahead = ['a', 'b', 'c', 'd'].map((x) => track(f.pool.invoke('add', [x, 0])));
    const queued = track(f.pool.invoke('add', ['queued', 0]));
    await flush();
    const aheadCalls = [...w1.aheadCalls];
    expect(aheadCalls).to.have.length(4);
    w1.exit(null, 'SIGSEGV');
    await flush();
    expect(running.error).to.be.instanceOf(WorkerCrashedError);
    expect(ahead.some((c) => c.settled)).to.equal(false);
    const order = await runAll(f.workers);
    expect(order.map((c) => arg(c))).to.deep.equal(['a', 'b', 'c', 'd', 'queued']);
    expect(ahead.map((c) => c.value)).to.deep.equal(['a', 'b', 'c', 'd']);
    expect(queued.value).to.equal('queued');
    for (const call of aheadCalls) {
      expect(sends(f.workers, call), 'sent ahead to the dead worker, then run once').to.equal(2);
      expect(f.workers.slice(1).flatMap((w) => w.sent).filter((c) => c === call)).to.have.length(1);
    }
    expect(f.pool.stats().totals).to.include({ failed: 1, succeeded: 5, inFlight: 0, queued: 0 });
    await stop(f);
  });

  it('never sends a worker a call past processRecycleThreshold, with N ahead', async () => {
    const f = await started({ maxPoolSize: 1, processRecycleThreshold: 5, pipelineDepth: 4 });
    const calls = Array.from({ length: 17 }, (_, i) => track(f.pool.invoke('add', [i, 0])));
    await runAll(f.workers);
    expect(calls.every((c) => c.settled && !c.error)).to.equal(true);
    const served = f.workers.filter((w) => w.calls > 0);
    for (const w of served) {
      expect(w.calls).to.be.at.most(5);
      expect(w.sent.length, `worker ${w.id} was sent only what it may serve`).to.equal(w.calls);
    }
    expect(served.map((w) => w.calls)).to.deep.equal([5, 5, 5, 2]);
    await stop(f);
  });

  it('queue timeouts cover every call ahead that has not started; the running one is untouched', async () => {
    const f = await started({ maxPoolSize: 1, queueTimeoutMs: 1000, pipelineDepth: 3 });
    const [w] = f.workers;
    const running = track(f.pool.invoke('slow', []));
    const ahead = [1, 2, 3].map((i) => track(f.pool.invoke('add', [i, 0])));
    await flush();
    expect(w.aheadCalls).to.have.length(3);
    await f.clock.advance(1000);
    for (const a of ahead) expect(a.error).to.be.instanceOf(QueueTimeoutError);
    expect(w.cancels).to.have.length(3);
    expect(running.settled).to.equal(false);
    w.dropCancelled();
    w.reply('done');
    await flush();
    expect(running.value).to.equal('done');
    expect(w.state).to.equal('idle');
    await stop(f);
  });

  it('a worker free with nothing in line takes the calls ahead elsewhere beyond the first of each', async () => {
    const f = await started({ minPoolSize: 2, maxPoolSize: 2, pipelineDepth: 3 });
    const [w1, w2] = f.workers;
    const calls = Array.from({ length: 8 }, (_, i) => track(f.pool.invoke('add', [i, 0])));
    await flush();
    expect([w1.aheadCalls.length, w2.aheadCalls.length]).to.deep.equal([3, 3]);
    const stuck = w1.aheadCalls.slice(1);
    // w2 gets through all its calls while w1's first call runs on.
    for (let i = 0; i < 4; i++) {
      w2.reply(arg(w2.currentCall));
      await flush();
    }
    expect(w2.state).to.equal('idle');
    expect(w1.cancels, 'w1 keeps one call ahead, as with one-call lookahead').to.deep.equal(stuck);
    w1.dropCancelled();
    await flush();
    expect(stuck).to.include(w2.currentCall);
    await runAll(f.workers);
    expect(calls.every((c) => c.settled && !c.error)).to.equal(true);
    for (const call of stuck) expect(sends(f.workers, call)).to.equal(2);
    await stop(f);
  });

  it('a worker retired over a soft limit recalls its calls ahead: it serves none past the limit', async () => {
    const f = await started({ maxPoolSize: 1, maxMemoryMB: 100, warmSpare: false, pipelineDepth: 3 });
    const [w1] = f.workers;
    const calls = Array.from({ length: 4 }, (_, i) => track(f.pool.invoke('add', [i, 0])));
    await flush();
    const [a, b, c] = w1.aheadCalls;
    w1.report({ rssBytes: 200 * 1024 * 1024 });
    w1.reply(0); // `a` starts with the reply; the limit is seen between calls: retired, b and c recalled
    await flush();
    expect(w1.stopReason).to.equal('memory');
    expect(w1.cancels).to.deep.equal([b, c]);
    w1.dropCancelled();
    await runAll(f.workers);
    expect(calls.every((x) => x.settled && !x.error)).to.equal(true);
    expect(w1.calls).to.equal(2);
    for (const call of [b, c]) expect(f.workers.slice(1).flatMap((w) => w.sent)).to.include(call);
    expect(sends(f.workers, a)).to.equal(1);
    await stop(f);
  });
});

// The dispatcher and the pool's scheduling, against fake workers and a fake clock (no processes,
// no waiting): order, priorities, the one-call lookahead, aborts, retries, queue limits and the
// queue timeout. The same behaviour with real processes: ordering, pipelining, cancellation tests.
import { expect } from 'chai';
import { CallAbortedError, QueueFullError, QueueTimeoutError, WorkerCrashedError, PoolDisposedError } from '@process-sandbox/core';
import { fakePool, flush, track, startedPool as started, stopPool as stop } from './support/fake-workers.mjs';

const ids = (calls) => calls.map((c) => c.method + ':' + JSON.stringify(c.args ?? null));

/** Replies to whatever each worker runs, in turn, until nothing runs: returns the order calls ran in. */
async function runAll(workers) {
  const order = [];
  for (let busy = true; busy; ) {
    busy = false;
    for (const w of workers) {
      if (!w.currentCall) continue;
      order.push(w.currentCall);
      w.reply(w.currentCall.id);
      busy = true;
      await flush();
    }
  }
  return order;
}

describe('unit: dispatch with fake workers', function () {
  it('runs calls FIFO on one worker, one ahead at a time (pipelineDepth: 1)', async () => {
    const f = await started({ maxPoolSize: 1, pipelineDepth: 1 });
    const calls = Array.from({ length: 5 }, (_, i) => track(f.pool.invoke('add', [i, 0])));
    await flush();
    const [w] = f.workers;
    expect(w.currentCall).to.exist;
    expect(w.aheadCall, 'the next call is sent ahead').to.exist;
    expect(w.aheadCall.id).to.equal(w.currentCall.id + 1);
    const [first, second] = w.sent;
    expect([first.state, second.state]).to.deep.equal(['running', 'ahead']);
    expect(f.pool.stats().totals).to.include({ queued: 3, inFlight: 2 });
    w.reply(0);
    expect([first.state, second.state]).to.deep.equal(['settled', 'running']);
    expect(f.pool.stats().totals).to.include({ queued: 3, inFlight: 1 });
    await flush();
    expect(w.aheadCall.state, 'the next goes ahead').to.equal('ahead');
    const order = await runAll(f.workers);
    order.unshift(first);
    expect(order.map((c) => c.id)).to.deep.equal([...order.map((c) => c.id)].sort((a, b) => a - b));
    expect(calls.every((c) => c.settled && c.error === undefined)).to.equal(true);
    expect(f.pool.stats().totals).to.include({ calls: 5, succeeded: 5, failed: 0, queued: 0, inFlight: 0 });
    await stop(f);
  });

  it('takes higher priorities first, FIFO within one, including calls made in the same tick', async () => {
    const f = await started({ maxPoolSize: 1 });
    const p = (priority) => f.pool.invoke('add', [priority, 0], { priority });
    const first = track(p(0)); // runs at once: the worker was idle
    const rest = [p(0), p(5), p(1), p(5), p(-1)].map(track);
    await flush();
    const order = await runAll(f.workers);
    const prio = order.map((c) => c.options?.priority ?? 0);
    expect(prio).to.deep.equal([0, 5, 5, 1, 0, -1]);
    const fives = order.filter((c) => c.options?.priority === 5).map((c) => c.id);
    expect(fives[0]).to.be.below(fives[1]);
    expect(first.settled && rest.every((r) => r.settled)).to.equal(true);
    await stop(f);
  });

  it('re-dispatches a call sent ahead exactly once when its worker dies before starting it', async () => {
    const f = await started({ maxPoolSize: 1 });
    const a = track(f.pool.invoke('add', [1, 1]));
    const b = track(f.pool.invoke('add', [2, 2]));
    await flush();
    const [w1] = f.workers;
    const ahead = w1.aheadCall;
    expect(ahead).to.exist;
    w1.exit(null, 'SIGSEGV');
    await flush();
    expect(a.error).to.be.instanceOf(WorkerCrashedError);
    expect(b.settled, 'the call sent ahead is not lost, nor failed').to.equal(false);
    expect(ahead.state === 'queued' || ahead.state === 'running').to.equal(true);
    const w2 = f.workers[1];
    expect(w2, 'a replacement was started').to.exist;
    await flush();
    expect(w2.currentCall).to.equal(ahead);
    w2.reply(4);
    await flush();
    expect(b.value).to.equal(4);
    expect(f.workers.flatMap((w) => w.sent).filter((c) => c === ahead)).to.have.length(2); // sent ahead once, run once
    expect(w2.sent.filter((c) => c === ahead)).to.have.length(1);
    await stop(f);
  });

  it('aborts a queued call: it leaves the line and never reaches a worker', async () => {
    const f = await started({ maxPoolSize: 1 });
    const controller = new AbortController();
    track(f.pool.invoke('add', [1, 1]));
    track(f.pool.invoke('add', [2, 2])); // goes ahead
    const queued = track(f.pool.invoke('add', [3, 3], { signal: controller.signal }));
    await flush();
    controller.abort();
    await flush();
    expect(queued.error).to.be.instanceOf(CallAbortedError);
    expect(queued.error.running).to.equal(false);
    const order = await runAll(f.workers);
    expect(order).to.have.length(2);
    expect(f.pool.stats().totals.queued).to.equal(0);
    await stop(f);
  });

  it('aborts a call sent ahead: it settles at once and the worker is asked to drop it', async () => {
    const f = await started({ maxPoolSize: 1 });
    const controller = new AbortController();
    const running = track(f.pool.invoke('add', [1, 1]));
    const ahead = track(f.pool.invoke('add', [2, 2], { signal: controller.signal }));
    await flush();
    const [w] = f.workers;
    const call = w.aheadCall;
    controller.abort();
    await flush();
    expect(ahead.error).to.be.instanceOf(CallAbortedError);
    expect(w.cancels).to.deep.equal([call]);
    w.dropAhead();
    w.reply(2);
    await flush();
    expect(running.value).to.equal(2);
    expect(w.state).to.equal('idle');
    expect(w.live).to.equal(true);
    await stop(f);
  });

  it('aborts a running call: kills its worker by default, detaches with onAbortRunning: detach', async () => {
    const f = await started({ maxPoolSize: 1 });
    const c1 = new AbortController();
    const killed = track(f.pool.invoke('slow', [], { signal: c1.signal }));
    await flush();
    const [w1] = f.workers;
    c1.abort();
    await flush();
    expect(killed.error).to.be.instanceOf(CallAbortedError);
    expect(killed.error.running).to.equal(true);
    expect(w1.terminal).to.equal(true);
    await flush();
    const c2 = new AbortController();
    const detached = track(f.pool.invoke('slow', [], { signal: c2.signal, onAbortRunning: 'detach' }));
    await flush();
    const w2 = f.workers.find((w) => w.currentCall);
    c2.abort();
    await flush();
    expect(detached.error).to.be.instanceOf(CallAbortedError);
    expect(w2.live, 'a detached call leaves its worker running').to.equal(true);
    w2.reply('late');
    await flush();
    expect(w2.state).to.equal('idle');
    await stop(f);
  });

  it('retries a crashed idempotent call after the back-off, up to its attempts; others fail', async () => {
    const f = await started({ maxPoolSize: 1, retry: { methods: ['echo'], attempts: 1, backoffMs: 100 } });
    const retried = track(f.pool.invoke('echo', ['x']));
    await flush();
    f.workers[0].exit(1);
    await flush();
    expect(retried.settled, 'requeued, not failed').to.equal(false);
    await f.clock.advance(99);
    expect(f.workers.some((w) => w.currentCall)).to.equal(false); // still in its back-off
    await f.clock.advance(1);
    const w2 = f.workers.find((w) => w.currentCall);
    expect(w2.currentCall.method).to.equal('echo');
    w2.exit(1);
    await f.clock.advance(1000);
    expect(retried.error, 'attempts ran out').to.be.instanceOf(WorkerCrashedError);
    const plain = track(f.pool.invoke('add', [1, 2]));
    await flush();
    f.workers.find((w) => w.currentCall).exit(1);
    await flush();
    expect(plain.error).to.be.instanceOf(WorkerCrashedError);
    await stop(f);
  });

  it('refuses calls beyond maxQueueSize with QueueFullError, and counts none of them', async () => {
    const f = await started({ maxPoolSize: 1, maxQueueSize: 2 });
    let full = 0;
    f.pool.on('queueFull', () => full++);
    const ok = [1, 2, 3].map((i) => track(f.pool.invoke('add', [i, 0]))); // one runs, two wait
    const refused = track(f.pool.invoke('add', [4, 0]));
    await flush();
    expect(refused.error).to.be.instanceOf(QueueFullError);
    expect(full).to.equal(1);
    expect(f.pool.stats().totals.calls).to.equal(3);
    await runAll(f.workers);
    expect(ok.every((c) => c.value !== undefined)).to.equal(true);
    await stop(f);
  });

  it('fails a call that waits past queueTimeoutMs, queued or sent ahead, but never a running one', async () => {
    const f = await started({ maxPoolSize: 1, queueTimeoutMs: 1000, pipelineDepth: 1 });
    const running = track(f.pool.invoke('slow', []));
    const ahead = track(f.pool.invoke('add', [1, 1]));
    const queued = track(f.pool.invoke('add', [2, 2]));
    await flush();
    const [w] = f.workers;
    expect(w.aheadCall).to.exist;
    await f.clock.advance(1000);
    expect(queued.error).to.be.instanceOf(QueueTimeoutError);
    expect(ahead.error).to.be.instanceOf(QueueTimeoutError);
    expect(w.cancels).to.have.length(1);
    expect(running.settled).to.equal(false);
    w.dropAhead();
    w.reply('done');
    await flush();
    expect(running.value).to.equal('done');
    await stop(f);
  });

  it('on dispose rejects queued calls with PoolDisposedError and lets running ones finish', async () => {
    const f = await started({ maxPoolSize: 1, pipelineDepth: 1 });
    const running = track(f.pool.invoke('slow', []));
    const queued = [1, 2, 3].map((i) => track(f.pool.invoke('add', [i, 0])));
    await flush();
    const done = f.pool.dispose();
    await flush();
    // The first was sent ahead already: it is the worker's to run. The others had not left the line.
    for (const q of queued.slice(1)) expect(q.error).to.be.instanceOf(PoolDisposedError);
    f.workers[0].reply('finished');
    await flush();
    f.workers[0].reply('ahead too');
    await done;
    expect(running.value).to.equal('finished');
    expect(queued[0].value).to.equal('ahead too');
    expect(f.workers.every((w) => w.terminal)).to.equal(true);
  });

  it('spreads waiting calls over new workers up to maxPoolSize', async () => {
    const f = await started({ minPoolSize: 1, maxPoolSize: 3 });
    for (let i = 0; i < 6; i++) track(f.pool.invoke('add', [i, 0]));
    await flush();
    expect(f.workers).to.have.length(3);
    const order = await runAll(f.workers);
    expect(order).to.have.length(6);
    await stop(f);
  });

  it('hands a call to the free worker used last, so the others can shrink away', async () => {
    const f = await started({ minPoolSize: 2, maxPoolSize: 2 });
    const first = track(f.pool.invoke('add', [1, 1]));
    await flush();
    const used = f.workers.find((w) => w.currentCall);
    await f.clock.advance(10);
    used.reply(2);
    await f.clock.advance(10);
    expect(first.value).to.equal(2);
    track(f.pool.invoke('add', [2, 2]));
    await flush();
    expect(f.workers.find((w) => w.currentCall)).to.equal(used);
    await stop(f);
  });

  it('three workers with one-call lookahead: every call is handed out exactly once, and counts follow the states', async () => {
    const f = await started({ minPoolSize: 3, maxPoolSize: 3, pipelineDepth: 1 });
    const calls = Array.from({ length: 12 }, (_, i) => track(f.pool.invoke('add', [i, 0])));
    await flush();
    // Every worker runs one call and holds one ahead: six handed out, six in line.
    expect(f.workers.map((w) => [Boolean(w.currentCall), Boolean(w.aheadCall)])).to.deep.equal([[true, true], [true, true], [true, true]]);
    expect(f.pool.stats().totals).to.include({ inFlight: 6, queued: 6 });
    const order = [];
    for (let round = 0; round < 20 && !calls.every((c) => c.settled); round++) {
      for (const w of f.workers) if (w.currentCall) (order.push(w.currentCall.id), w.reply(w.currentCall.id));
      await flush();
    }
    expect(calls.every((c) => c.settled && c.error === undefined)).to.equal(true);
    expect(new Set(order).size).to.equal(12);
    expect(f.workers.flatMap((w) => w.sent).length).to.equal(12);
    await stop(f);
  });

  it('a call lost before it started is requeued while the pool serves, rejected once it is disposed', async () => {
    const f = await started({ maxPoolSize: 1, shutdownGraceMs: 1000 });
    track(f.pool.invoke('slow', []));
    const ahead = track(f.pool.invoke('add', [1, 1]));
    await flush();
    const [w] = f.workers;
    expect(w.aheadCall).to.exist;
    const done = f.pool.dispose();
    await flush();
    w.exit(null, 'SIGKILL'); // dies before starting the call sent ahead, with the pool closing
    await done;
    expect(ahead.error).to.be.instanceOf(PoolDisposedError);
    expect(f.workers).to.have.length(1); // no replacement for a disposed pool
  });
});

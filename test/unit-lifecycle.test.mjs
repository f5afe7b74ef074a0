// Leases, the circuit breaker's rule as the pool applies it, the spare planner and recycling
// decisions, against fake workers and a fake clock. With real processes: sessions, resilience,
// recycling tests.
import { expect } from 'chai';
import { CircuitOpenError, SessionLostError, WorkerCrashedError } from '@process-sandbox/core';
import { fakePool, flush, resolveOptions, track, startedPool as started, stopPool as stop } from './support/fake-workers.mjs';

const { SparePlanner, MAX_SPARES } = await import(new URL('../packages/core/dist/spare-planner.js', import.meta.url).href);
const { armedMemoryWatches } = await import(new URL('../packages/core/dist/memory-watch.js', import.meta.url).href);

/** Answers the session's open/close messages and calls on `w` until it has nothing running. */
async function serve(w, value = 'ok') {
  for (let i = 0; i < 10 && w.currentCall; i++) {
    w.reply(w.currentCall.control ? undefined : value);
    await flush();
  }
}

describe('unit: leases with fake workers', function () {
  it('waits its turn in line, pins its worker, and hands it back when it ends', async () => {
    const f = await started({ maxPoolSize: 1 });
    const [w] = f.workers;
    const before = track(f.pool.invoke('add', [1, 1]));
    const leased = track(f.pool.lease());
    const after = track(f.pool.invoke('add', [2, 2]));
    await flush();
    // Sending ahead passes over a lease request (a lease waits for an idle worker, where it keeps its turn).
    expect(w.aheadCall?.method).to.equal('add');
    w.reply(2);
    await flush();
    w.reply(4);
    await flush();
    expect(before.value).to.equal(2);
    expect(after.value).to.equal(4);
    expect(w.currentCall.method).to.equal('<session open>');
    await serve(w);
    const lease = leased.value;
    expect(lease).to.exist;
    expect(w.lease).to.equal(lease);
    const behind = track(f.pool.invoke('add', [3, 3]));
    await flush();
    expect(behind.settled, 'a call waits while the worker is pinned').to.equal(false);
    const inLease = track(lease.invoke('echo', ['in session']));
    await flush();
    expect(w.currentCall.method).to.equal('echo');
    await serve(w, 'in session');
    expect(inLease.value).to.equal('in session');
    const ended = lease.end();
    await flush();
    expect(w.currentCall.method).to.equal('<session close>');
    await serve(w);
    await ended;
    expect(w.lease).to.equal(undefined);
    expect(behind.value, 'the waiting call had the worker next').to.equal('ok');
    expect(f.pool.stats().leases).to.equal(0);
    await stop(f);
  });

  it('a lease whose worker dies fails its calls with SessionLostError and never moves them', async () => {
    const f = await started({ maxPoolSize: 2, minPoolSize: 2 });
    const leased = track(f.pool.lease());
    await flush();
    const w = f.workers.find((x) => x.currentCall);
    await serve(w);
    const lease = leased.value;
    const running = track(lease.invoke('slow', []));
    const waiting = track(lease.invoke('add', [1, 2]));
    await flush();
    w.exit(1);
    await flush();
    expect(running.error).to.be.instanceOf(WorkerCrashedError);
    expect(waiting.error).to.be.instanceOf(SessionLostError);
    const later = track(lease.invoke('add', [1, 2]));
    await flush();
    expect(later.error).to.be.instanceOf(SessionLostError);
    expect(f.workers.filter((x) => x !== w).every((x) => x.sent.every((c) => c.method !== 'add'))).to.equal(true);
    await stop(f);
  });
});

describe('unit: the circuit breaker as the pool applies it', function () {
  it('opens after three start-up deaths, fails calls fast, and probes after the back-off', async () => {
    const f = await started({ minPoolSize: 1, maxPoolSize: 1 });
    // Every new worker dies before it is ready.
    // Each dies after Ready, before it was given any call: young.
    const dieYoung = async () => {
      await flush();
      for (const w of f.workers) if (w.live) w.exit(1);
      await flush();
    };
    for (let i = 0; i < 2; i++) {
      await dieYoung();
      expect(f.pool.stats().circuit).to.equal('closed');
    }
    await dieYoung();
    expect(f.pool.stats().circuit).to.equal('open');
    const refused = track(f.pool.invoke('add', [1, 1]));
    await flush();
    expect(refused.error).to.be.instanceOf(CircuitOpenError);
    const count = f.workers.length;
    await f.clock.advance(499);
    expect(f.workers.length, 'nothing starts during the back-off').to.equal(count);
    await f.clock.advance(1);
    expect(f.workers.length, 'one probe').to.equal(count + 1);
    const probe = f.workers.at(-1);
    probe.becomeReady();
    await flush();
    expect(f.pool.stats().circuit).to.equal('halfOpen');
    const call = track(f.pool.invoke('add', [1, 1]));
    await flush();
    probe.reply(2);
    await flush();
    expect(call.value).to.equal(2);
    expect(f.pool.stats().circuit, 'a served first call closes it').to.equal('closed');
    await stop(f);
  });

  it('never counts a worker killed by the call it ran', async () => {
    const f = await started({ minPoolSize: 1, maxPoolSize: 1 });
    for (let i = 0; i < 5; i++) {
      const c = track(f.pool.invoke('add', [i, 0]));
      await flush();
      f.workers.find((w) => w.currentCall).exit(1);
      await flush();
      expect(c.error).to.be.instanceOf(WorkerCrashedError);
    }
    expect(f.pool.stats().circuit).to.equal('closed');
    await stop(f);
  });
});

describe('unit: recycling decisions with fake workers', function () {
  it('retires a worker after exactly processRecycleThreshold calls, with lookahead, and promotes the spare', async () => {
    const f = await started({ maxPoolSize: 1, processRecycleThreshold: 3 });
    expect(f.workers).to.have.length(2); // one serving, one warm spare
    const [first, spare] = f.workers;
    let recycled = [];
    f.pool.on('workerRecycled', (e) => recycled.push(e));
    const calls = Array.from({ length: 7 }, (_, i) => track(f.pool.invoke('add', [i, 0])));
    for (let i = 0; i < 20 && !calls.every((c) => c.settled); i++) {
      await flush();
      for (const w of f.workers) if (w.currentCall) w.reply(w.currentCall.id);
    }
    await flush();
    expect(calls.every((c) => c.settled && !c.error)).to.equal(true);
    expect(first.calls).to.equal(3);
    expect(first.sent, 'never sent a call past its threshold, even ahead').to.have.length(3);
    expect(spare.calls).to.equal(3);
    expect(recycled.map((r) => r.reason)).to.deep.equal(['calls', 'calls']);
    expect(first.stopReason).to.equal('calls');
    await stop(f);
  });

  it('retires an idle worker over maxMemoryMB or maxHandles at once, a busy one after its call', async () => {
    const f = await started({ maxPoolSize: 1, maxMemoryMB: 100, maxHandles: 50, warmSpare: false });
    const [w1] = f.workers;
    w1.report({ rssBytes: 200 * 1024 * 1024 });
    await flush();
    expect(w1.stopReason).to.equal('memory');
    await flush();
    const w2 = f.workers[1];
    expect(w2).to.exist;
    const call = track(f.pool.invoke('add', [1, 1]));
    await flush();
    w2.report({ handles: 60 });
    expect(w2.state, 'a soft limit never interrupts a call').to.equal('busy');
    w2.reply(2);
    await flush();
    expect(call.value).to.equal(2);
    expect(w2.stopReason).to.equal('handles');
    expect(f.pool.stats().totals.recycles).to.include({ memory: 1, handles: 1 });
    await stop(f);
  });

  it('starts the replacement after the reply is delivered, not before', async () => {
    const f = await started({ maxPoolSize: 1, processRecycleThreshold: 1, warmSpare: false });
    const [w] = f.workers;
    const count = f.workers.length;
    let seen;
    const call = f.pool.invoke('add', [1, 1]).then((v) => ((seen = f.workers.length), v));
    await flush();
    w.reply(2);
    expect(await call).to.equal(2);
    expect(seen).to.equal(count);
    await flush();
    expect(f.workers.length, 'then the replacement').to.equal(count + 1);
    await stop(f);
  });
});

describe('unit: the spare planner', function () {
  it('wants one spare until it has measured, then enough to cover one start-up', () => {
    const planner = new SparePlanner(10);
    expect(planner.wanted).to.equal(1);
    planner.started(300);
    planner.retired(1000, 1000, 1); // one retirement a second, starts take 0.3 s
    expect(planner.wanted).to.equal(1);
    planner.retired(1100, 0, 1); // then every 100 ms
    planner.retired(1200, 0, 1);
    planner.retired(1300, 0, 1);
    expect(planner.wanted).to.be.within(2, MAX_SPARES);
    for (let t = 1301; t < 1400; t++) planner.retired(t, 0, 1);
    expect(planner.wanted).to.equal(MAX_SPARES);
  });

  it('predicts retirements from the call rate before any worker retires', () => {
    const planner = new SparePlanner(10);
    planner.started(100);
    expect(planner.callStarted(0, 1)).to.equal(false);
    for (let t = 1; t <= 5; t++) planner.callStarted(t, 1); // 1 ms apart, 10 calls a life: a retirement every 10 ms
    expect(planner.wanted).to.equal(MAX_SPARES);
    expect(new SparePlanner(undefined).callStarted(1, 1)).to.equal(false);
  });

  it('covers a slow start, not the average one: starts that vary want more spares than steady ones', () => {
    const steady = new SparePlanner(10, 64);
    const erratic = new SparePlanner(10, 64);
    for (let i = 0; i < 20; i++) {
      steady.started(150);
      erratic.started(i % 2 ? 250 : 50); // the same average, 150 ms
    }
    for (let t = 0; t <= 1000; t += 100) {
      steady.retired(t, 0, 1);
      erratic.retired(t, 0, 1);
    }
    expect(steady.wanted, 'a retirement every 100 ms, starts of 150 ms').to.equal(2);
    expect(erratic.coveredStartupMs).to.be.above(300);
    expect(erratic.wanted).to.be.at.least(4);
    // One start says little about the next: the first is taken to vary by half of itself.
    const first = new SparePlanner(10, 64);
    first.started(200);
    expect(first.coveredStartupMs).to.equal(400);
  });

  it('never wants more spares than its cap', () => {
    for (const cap of [1, 2, MAX_SPARES, 10]) {
      const planner = new SparePlanner(10, cap);
      planner.started(500);
      for (let t = 0; t < 100; t++) planner.retired(t, 0, 1); // a retirement every ms
      expect(planner.wanted, `cap ${cap}`).to.equal(cap);
    }
  });
});

describe('unit: warmSpare, the most spares a pool keeps', function () {
  it('resolves true, false, a number and the default, and names what is wrong with anything else', () => {
    const base = { workerModule: new URL('../samples/calculator/calculator.mjs', import.meta.url) };
    const of = (extra) => {
      const r = resolveOptions({ ...base, ...extra });
      return [r.warmSpare, r.maxWarmSpares];
    };
    expect(of({})).to.deep.equal([false, 0]);
    expect(of({ processRecycleThreshold: 5 })).to.deep.equal([true, MAX_SPARES]);
    expect(of({ processRecycleThreshold: 5, warmSpare: false })).to.deep.equal([false, 0]);
    expect(of({ processRecycleThreshold: 5, warmSpare: 0 })).to.deep.equal([false, 0]);
    expect(of({ warmSpare: true })).to.deep.equal([true, MAX_SPARES]);
    expect(of({ warmSpare: 7 })).to.deep.equal([true, 7]);
    for (const bad of [1.5, -1, 65, '2', null]) {
      expect(() => resolveOptions({ ...base, warmSpare: bad }), String(bad)).to.throw(/warmSpare.*expected a boolean or the most spares to keep \(a whole number from 0 to 64\)/);
    }
  });

  it('a pool keeps as many spares as cover a start while workers retire fast, up to warmSpare', async () => {
    for (const [warmSpare, expected] of [[2, 2], [6, 6], [true, MAX_SPARES]]) {
      const f = fakePool({ maxPoolSize: 1, processRecycleThreshold: 10, warmSpare }, { autoReady: false });
      const starting = f.pool.start();
      await flush();
      await f.clock.advance(300);
      for (const w of f.workers) w.becomeReady(); // each took 300 ms from spawn to ready
      await starting;
      // Calls 1 ms apart, 10 a life: a retirement every 10 ms predicted, against starts of 300 ms.
      const [serving] = f.serving();
      for (let i = 0; i < 5; i++) {
        const call = track(f.pool.invoke('add', [i, 0]));
        await flush();
        serving.reply(i);
        await f.clock.advance(1);
        expect(call.value).to.equal(i);
      }
      await flush();
      const spares = f.pool.stats().workers.filter((w) => w.spare);
      expect(spares, `warmSpare: ${warmSpare}`).to.have.length(expected);
      expect(serving.calls).to.equal(5);
      await stop(f);
    }
  });
});

describe('unit: the busy memory watch ticks only while a call runs', function () {
  // Fake workers' pids are above pid_max: the watch reads nothing of them and kills none. What is
  // checked is when it is armed: the pool arms it when a call starts, disarms it when none runs.
  before(function () {
    if (process.platform !== 'linux') this.skip(); // no /proc: no watch; the sampler alone enforces the limit
  });

  it('is not armed in an idle pool, armed while any call runs, disarmed when the last one ends', async () => {
    const base = armedMemoryWatches();
    const f = await started({ maxPoolSize: 2, minPoolSize: 2, hardMemoryLimitMB: 500, healthIntervalMs: 60_000 });
    const [a, b] = f.workers;
    await flush();
    expect(armedMemoryWatches(), 'idle pool').to.equal(base);
    const first = track(f.pool.invoke('add', [1, 1]));
    const second = track(f.pool.invoke('add', [2, 2]));
    await flush();
    expect([a.state, b.state]).to.deep.equal(['busy', 'busy']);
    expect(armedMemoryWatches(), 'two calls running').to.equal(base + 1);
    a.reply('from a');
    await flush();
    expect(armedMemoryWatches(), 'one call still running').to.equal(base + 1);
    b.reply('from b');
    await flush();
    expect([first.value, second.value].sort()).to.deep.equal(['from a', 'from b']);
    expect(armedMemoryWatches(), 'no call running').to.equal(base);
    // Again, ended by the worker's death rather than a reply.
    const lost = track(f.pool.invoke('add', [3, 3]));
    await flush();
    expect(armedMemoryWatches(), 'a call running again').to.equal(base + 1);
    f.workers.find((w) => w.state === 'busy').exit(1);
    await flush();
    expect(lost.error).to.be.an.instanceOf(WorkerCrashedError);
    expect(armedMemoryWatches(), 'its worker died').to.equal(base);
    await stop(f);
    expect(armedMemoryWatches(), 'disposed').to.equal(base);
  });

  it('stays disarmed in a pool without hardMemoryLimitMB', async () => {
    const base = armedMemoryWatches();
    const f = await started({ maxPoolSize: 1 });
    const call = track(f.pool.invoke('add', [1, 1]));
    await flush();
    expect(f.workers[0].state).to.equal('busy');
    expect(armedMemoryWatches()).to.equal(base);
    f.workers[0].reply(2);
    await flush();
    expect(call.value).to.equal(2);
    await stop(f);
  });
});

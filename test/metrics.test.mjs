// OpenTelemetry metrics: real pools, a real SDK MeterProvider, and a reader the tests collect from.
import { createRequire } from 'node:module';
import { expect } from 'chai';
import { MeterProvider, MetricReader } from '@opentelemetry/sdk-metrics';
import { ProcessProxy } from '@process-sandbox/core';
import { createProxy, disposeProxies, fixture, gate, nextEvent, rejectionOf } from './support/pools.mjs';
import { waitFor } from './support/processes.mjs';

// The copy of @opentelemetry/api that core itself loads. Registering through another copy works only
// if that copy is the same or a newer minor version: the API ignores a global registered by an older one.
const { metrics } = createRequire(new URL('../packages/core/package.json', import.meta.url))('@opentelemetry/api');

const torture = { workerModule: fixture('torture.mjs') };

/** A reader that exports nothing: the tests call collect() and look at the result. */
class TestReader extends MetricReader {
  async onForceFlush() {}
  async onShutdown() {}
}

/**
 * Wraps the SDK's provider to see the workers gauge's callbacks come and go (the SDK does not say
 * which callbacks it holds).
 */
function trackingProvider(provider, gaugeCallbacks) {
  const meters = new Map();
  const trackGauge = (gauge) =>
    new Proxy(gauge, {
      get(target, property) {
        if (property === 'addCallback') return (cb) => (gaugeCallbacks.add(cb), target.addCallback(cb));
        if (property === 'removeCallback') return (cb) => (gaugeCallbacks.delete(cb), target.removeCallback(cb));
        const value = Reflect.get(target, property);
        return typeof value === 'function' ? value.bind(target) : value;
      },
    });
  const trackMeter = (meter) =>
    new Proxy(meter, {
      get(target, property) {
        if (property === 'createObservableGauge') return (...args) => trackGauge(target.createObservableGauge(...args));
        const value = Reflect.get(target, property);
        return typeof value === 'function' ? value.bind(target) : value;
      },
    });
  return {
    getMeter(name, version, options) {
      const key = `${name}@${version ?? ''}`;
      if (!meters.has(key)) meters.set(key, trackMeter(provider.getMeter(name, version, options)));
      return meters.get(key);
    },
  };
}

/** Sums the points' values (or histogram counts / sums) by one attribute. */
function by(points, attribute, pick = (p) => p.value) {
  const out = {};
  for (const p of points) out[p.attributes[attribute]] = (out[p.attributes[attribute]] ?? 0) + pick(p);
  return out;
}

describe('metrics without an SDK', function () {
  afterEach(disposeProxies);

  it('costs nothing: with no MeterProvider registered, the pool gets no listener and calls work', async () => {
    expect(metrics.getMeterProvider().getMeter('probe').constructor.name).to.equal('NoopMeter');
    const proxy = await createProxy({ ...torture, maxPoolSize: 1 });
    const pool = ProcessProxy.poolOf(proxy);
    for (const event of ['callSettled', 'callTimedOut', 'workerRecycled', 'workerCrashed', 'disposed']) {
      expect(pool.listenerCount(event), event).to.equal(0);
    }
    expect(await proxy.echo(42)).to.equal(42);
  });
});

describe('metrics', function () {
  const reader = new TestReader();
  const provider = new MeterProvider({ readers: [reader] });
  const gaugeCallbacks = new Set();

  before(() => {
    expect(metrics.setGlobalMeterProvider(trackingProvider(provider, gaugeCallbacks))).to.equal(true);
  });
  after(async () => {
    metrics.disable();
    await provider.shutdown();
  });
  afterEach(disposeProxies);

  /** Everything the process-sandbox meter reports now, by instrument name. */
  async function collect() {
    const { resourceMetrics, errors } = await reader.collect();
    expect(errors).to.deep.equal([]);
    const byName = new Map();
    for (const scope of resourceMetrics.scopeMetrics) {
      if (scope.scope.name !== 'process-sandbox') continue;
      for (const metric of scope.metrics) byName.set(metric.descriptor.name, metric);
    }
    // Let a disposed pool's gauge callback remove itself (it does so once the collection is over).
    await new Promise((resolve) => setImmediate(resolve));
    return {
      metric: (name) => byName.get(name),
      points: (name, pool) => (byName.get(name)?.dataPoints ?? []).filter((p) => p.attributes.pool === pool),
      pools: () => new Set((byName.get('process_sandbox.workers')?.dataPoints ?? []).map((p) => p.attributes.pool)),
    };
  }

  /** Creates a proxy and finds its pool's `pool` attribute: the one pool id the gauge did not report before. */
  async function instrumentedProxy(options) {
    const before = (await collect()).pools();
    const proxy = await createProxy(options);
    const added = [...(await collect()).pools()].filter((id) => !before.has(id));
    expect(added).to.have.length(1);
    return { proxy, pool: ProcessProxy.poolOf(proxy), id: added[0] };
  }

  it('metrics: false reports nothing even with an SDK registered; metrics: true with the API installed reports', async () => {
    const before = (await collect()).pools();
    const off = await createProxy({ ...torture, maxPoolSize: 1, metrics: false });
    const pool = ProcessProxy.poolOf(off);
    expect(await off.echo(1)).to.equal(1);
    for (const event of ['callSettled', 'callTimedOut', 'workerRecycled', 'workerCrashed']) expect(pool.listenerCount(event), event).to.equal(0);
    expect([...(await collect()).pools()].filter((id) => !before.has(id))).to.deep.equal([]);
    const { proxy: on, pool: reporting } = await instrumentedProxy({ ...torture, maxPoolSize: 1, metrics: true });
    expect(await on.echo(2)).to.equal(2);
    expect(reporting.listenerCount('callSettled')).to.equal(1);
  });

  it('counts calls by outcome, their durations and queue waits, and the timeout, crash and recycle, exactly', async () => {
    const { proxy, pool, id } = await instrumentedProxy({ ...torture, minPoolSize: 1, maxPoolSize: 1, warmSpare: false, processRecycleThreshold: 3, methodCallTimeoutMs: 1000 });

    // Three successes on the first worker, which is then recycled (processRecycleThreshold 3).
    const recycled = nextEvent(pool, 'workerRecycled');
    for (let i = 0; i < 3; i++) expect(await proxy.echo(i)).to.equal(i);
    expect((await recycled).reason).to.equal('calls');
    // One remote error, one crash, one timeout.
    expect((await rejectionOf(proxy.rejectAsync('no'))).code).to.equal('ERR_PS_REMOTE');
    const crashed = nextEvent(pool, 'workerCrashed');
    expect((await rejectionOf(proxy.exit(3))).code).to.equal('ERR_PS_WORKER_CRASHED');
    await crashed;
    expect((await rejectionOf(proxy.spin())).code).to.equal('ERR_PS_CALL_TIMEOUT');

    const m = await collect();
    const calls = m.points('process_sandbox.calls', id);
    expect(calls.map((p) => ({ ...p.attributes, value: p.value })).sort((a, b) => a.method.localeCompare(b.method))).to.deep.equal([
      { pool: id, method: 'echo', outcome: 'success', value: 3 },
      { pool: id, method: 'exit', outcome: 'ERR_PS_WORKER_CRASHED', value: 1 },
      { pool: id, method: 'rejectAsync', outcome: 'ERR_PS_REMOTE', value: 1 },
      { pool: id, method: 'spin', outcome: 'ERR_PS_CALL_TIMEOUT', value: 1 },
    ]);

    const duration = m.points('process_sandbox.call.duration', id);
    expect(by(duration, 'outcome', (p) => p.value.count)).to.deep.equal({ success: 3, ERR_PS_REMOTE: 1, ERR_PS_WORKER_CRASHED: 1, ERR_PS_CALL_TIMEOUT: 1 });
    const durationSum = by(duration, 'method', (p) => p.value.sum);
    expect(durationSum.spin).to.be.at.least(1000); // ran until methodCallTimeoutMs killed it
    expect(durationSum.echo).to.be.above(0);
    for (const p of duration) expect(p.value.min).to.be.at.least(0);

    const queueWait = m.points('process_sandbox.call.queue_wait', id);
    expect(queueWait.every((p) => p.attributes.outcome === undefined)).to.equal(true);
    expect(by(queueWait, 'method', (p) => p.value.count)).to.deep.equal({ echo: 3, rejectAsync: 1, exit: 1, spin: 1 });
    // A call's queue wait is part of its duration.
    const waitSum = by(queueWait, 'method', (p) => p.value.sum);
    for (const method of Object.keys(waitSum)) expect(waitSum[method]).to.be.at.most(durationSum[method]);

    expect(m.points('process_sandbox.call.timeouts', id).map((p) => [p.attributes.method, p.value])).to.deep.equal([['spin', 1]]);
    expect(m.points('process_sandbox.worker.crashes', id).map((p) => p.value)).to.deep.equal([1]);
    expect(m.points('process_sandbox.worker.recycles', id).map((p) => [p.attributes.reason, p.value])).to.deep.equal([['calls', 1]]);

    // The same story as the pool's own totals.
    const { totals } = pool.stats();
    expect([totals.calls, totals.crashes, totals.timeouts, totals.recycles.calls]).to.deep.equal([6, 1, 1, 1]);

    // Units and kinds, as documented.
    const descriptor = (name) => m.metric(name).descriptor;
    expect(descriptor('process_sandbox.calls').unit).to.equal('{call}');
    expect(descriptor('process_sandbox.call.duration').unit).to.equal('ms');
    expect(descriptor('process_sandbox.call.queue_wait').unit).to.equal('ms');
    expect(descriptor('process_sandbox.workers').unit).to.equal('{worker}');
    // Sub-millisecond buckets: trivial calls do not all land in the first default bucket (0–5 ms).
    expect(duration[0].value.buckets.boundaries.slice(0, 3)).to.deep.equal([0.1, 0.25, 0.5]);
  });

  it('reports the live workers by state, and a disposed pool drops to zero and stops being observed', async () => {
    // The earlier tests' pools are disposed: after one collection, none of them is observed any more.
    await collect();
    expect(gaugeCallbacks.size).to.equal(0);
    const { proxy, pool, id } = await instrumentedProxy({ ...torture, minPoolSize: 2, maxPoolSize: 2 });
    expect(gaugeCallbacks.size).to.equal(1);
    const workers = async () => by((await collect()).points('process_sandbox.workers', id), 'state');

    expect(await workers()).to.deep.equal({ spawning: 0, handshaking: 0, idle: 2, busy: 0, draining: 0, stopping: 0 });

    const held = gate();
    const slow = proxy.gate(held.path, 'late');
    await waitFor(() => pool.stats().workers.some((w) => w.state === 'busy'), 'a worker to be busy');
    expect(await workers()).to.include({ idle: 1, busy: 1 });
    held.open();
    expect(await slow).to.equal('late');
    await waitFor(() => pool.stats().workers.every((w) => w.state === 'idle'), 'both workers to be idle');
    expect(await workers()).to.include({ idle: 2, busy: 0 });

    await pool.dispose();
    for (const event of ['callSettled', 'callTimedOut', 'workerRecycled', 'workerCrashed', 'disposed']) {
      expect(pool.listenerCount(event), event).to.equal(0);
    }
    // The collection after dispose reports zeros, then the callback is gone.
    expect(Object.values(await workers()).every((n) => n === 0)).to.equal(true);
    expect(gaugeCallbacks.size).to.equal(0);
    expect(Object.values(await workers()).every((n) => n === 0)).to.equal(true);
  });

  it('sums the fuel WebAssembly calls used, by method', async () => {
    const { wasmFile } = await import('./support/wasm.mjs');
    const plugin = wasmFile('(module (func (export "spin") (param $n i32) (result i32) (local $i i32) (block $d (loop $l (br_if $d (i32.ge_u (local.get $i) (local.get $n))) (local.set $i (i32.add (local.get $i) (i32.const 1))) (br $l))) (local.get $i)))');
    const { proxy, pool, id } = await instrumentedProxy({ workerModule: plugin, maxPoolSize: 1, wasm: { fuelPerCall: 1000 } });
    const used = [];
    pool.on('callSettled', (e) => used.push(e.fuel));
    expect(await proxy.spin(10)).to.equal(10);
    expect(await proxy.spin(20)).to.equal(20);
    await rejectionOf(proxy.spin(100_000));
    expect(used[2]).to.equal(1000);
    const points = (await collect()).points('process_sandbox.wasm.fuel', id);
    expect(points.map((p) => [p.attributes.method, p.value])).to.deep.equal([['spin', used[0] + used[1] + used[2]]]);
  });

  it('tells pools apart by the pool attribute', async () => {
    const a = await instrumentedProxy({ ...torture, maxPoolSize: 1 });
    const b = await instrumentedProxy({ ...torture, maxPoolSize: 1 });
    expect(a.id).to.not.equal(b.id);
    await a.proxy.echo(1);
    await a.proxy.echo(2);
    await b.proxy.echo(3);
    const m = await collect();
    expect(m.points('process_sandbox.calls', a.id).map((p) => p.value)).to.deep.equal([2]);
    expect(m.points('process_sandbox.calls', b.id).map((p) => p.value)).to.deep.equal([1]);
    expect(by(m.points('process_sandbox.workers', a.id), 'state').idle).to.equal(1);
    expect(by(m.points('process_sandbox.workers', b.id), 'state').idle).to.equal(1);
  });
});

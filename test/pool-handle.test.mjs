// ProcessProxy.poolOf() hands out a sealed handle: stats, events, reload and dispose, and nothing of
// the pool's collaboration with its dispatcher, leases and workers (which once let
// `poolOf(p).takeIdleWorker()` take a worker out of service while stats still showed it idle).
import { expect } from 'chai';
import { PoolDisposedError, ProcessProxy } from '@process-sandbox/core';
import { createProxy, disposeProxies, fixture, nextEvent, rejectionOf } from './support/pools.mjs';

const torture = { workerModule: fixture('torture.mjs'), workerExport: 'Torture' };

/** Every property reachable from `object`: own and inherited, string and symbol keys. */
function reachable(object) {
  const names = new Set();
  for (let o = object; o && o !== Object.prototype; o = Object.getPrototypeOf(o)) for (const key of Reflect.ownKeys(o)) names.add(key);
  return names;
}

describe('the pool handle (ProcessProxy.poolOf)', function () {
  afterEach(disposeProxies);

  it('exposes only stats, events, reload and dispose: no collaboration method, no way to the pool', async () => {
    const proxy = await createProxy({ ...torture, minPoolSize: 1 });
    const pool = ProcessProxy.poolOf(proxy);
    const members = [...reachable(pool)].map(String).sort();
    expect(members).to.deep.equal(
      [String(Symbol.asyncDispose), 'Symbol(Symbol.toStringTag)', 'dispose', 'disposed', 'listenerCount', 'livePids', 'methods', 'off', 'on', 'once', 'reload', 'stats'].sort(),
    );
    for (const internal of ['takeIdleWorker', 'hasIdleWorker', 'demand', 'prepare', 'release', 'forget', 'onStateChange', 'invoke', 'lease', 'start', 'emit', 'options']) {
      expect(pool[internal], internal).to.equal(undefined);
    }
    expect(Object.isFrozen(pool)).to.equal(true);
    expect(() => {
      pool.takeIdleWorker = () => undefined; // modules are strict: a frozen object throws
    }).to.throw(TypeError);
    expect(Object.prototype.toString.call(pool)).to.equal('[object PoolHandle]');
  });

  it('is the same handle for the proxy, its views and its leases', async () => {
    const proxy = await createProxy({ ...torture, minPoolSize: 1 });
    const view = ProcessProxy.with(proxy, { timeoutMs: 5_000 });
    await ProcessProxy.session(proxy, (lease) => {
      expect(ProcessProxy.poolOf(lease)).to.equal(ProcessProxy.poolOf(proxy));
    });
    expect(ProcessProxy.poolOf(view)).to.equal(ProcessProxy.poolOf(proxy));
    expect(() => ProcessProxy.poolOf({})).to.throw(TypeError, /expects a proxy/);
  });

  it("hands listeners the handle as `this`, never the pool; once runs once and off removes it", async () => {
    const proxy = await createProxy({ ...torture, minPoolSize: 1 });
    const pool = ProcessProxy.poolOf(proxy);
    const selves = [];
    const onEvery = function () {
      selves.push(this);
    };
    let onceCalls = 0;
    const onceOnly = function () {
      onceCalls++;
      selves.push(this);
    };
    const removed = () => expect.fail('a removed once-listener ran');
    const before = pool.listenerCount('callSettled');
    expect(pool.on('callSettled', onEvery).once('callSettled', onceOnly).once('callSettled', removed)).to.equal(pool);
    expect(pool.listenerCount('callSettled')).to.equal(before + 3);
    pool.off('callSettled', removed);
    expect(pool.listenerCount('callSettled')).to.equal(before + 2);
    const settled = nextEvent(pool, 'callSettled');
    expect(await proxy.echo(1)).to.equal(1);
    expect(await settled).to.include({ method: 'echo', outcome: 'success' });
    expect(await proxy.echo(2)).to.equal(2);
    expect(onceCalls).to.equal(1);
    expect(selves).to.have.lengthOf(3);
    for (const self of selves) expect(self).to.equal(pool);
    pool.off('callSettled', onEvery);
    expect(pool.listenerCount('callSettled')).to.equal(before);
  });

  it('gives a copy of the methods: changing it changes nothing the proxy sees', async () => {
    const proxy = await createProxy({ ...torture, minPoolSize: 1 });
    const pool = ProcessProxy.poolOf(proxy);
    const methods = pool.methods;
    expect(methods.has('echo')).to.equal(true);
    expect(pool.methods).to.equal(methods); // stable between reads
    methods.delete('echo');
    methods.add('noSuchMethod');
    expect('echo' in proxy).to.equal(true);
    expect('noSuchMethod' in proxy).to.equal(false);
    expect(await proxy.echo('still')).to.equal('still');
  });

  it('reloads and disposes the pool', async () => {
    const proxy = await createProxy({ ...torture, minPoolSize: 1 });
    const pool = ProcessProxy.poolOf(proxy);
    const [before] = pool.livePids();
    await pool.reload({});
    expect(await proxy.echo('new')).to.equal('new');
    expect(pool.stats().workers.some((w) => w.pid !== before)).to.equal(true);
    expect(pool.disposed).to.equal(false);
    await pool[Symbol.asyncDispose]();
    expect(pool.disposed).to.equal(true);
    expect(pool.livePids()).to.deep.equal([]);
    expect(await rejectionOf(proxy.echo(1))).to.be.an.instanceOf(PoolDisposedError);
  });
});

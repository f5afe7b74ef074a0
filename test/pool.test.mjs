import { expect } from 'chai';
import { PoolDisposedError, ProcessProxy, QueueFullError, QueueTimeoutError } from '@process-sandbox/core';
import { createProxy, disposeProxies, fixture, gate, memoryLogger, nextEvent, rejectionOf } from './support/pools.mjs';
import { isAlive, underWine, waitFor } from './support/processes.mjs';

const torture = { workerModule: fixture('torture.mjs'), workerExport: 'Torture' };

describe('the pool', function () {
  afterEach(disposeProxies);

  describe('queue', function () {
    it('rejects with QueueFullError past maxQueueSize, and emits queueFull', async () => {
      const proxy = await createProxy({ ...torture, maxPoolSize: 1, maxQueueSize: 3 });
      const pool = ProcessProxy.poolOf(proxy);
      const full = nextEvent(pool, 'queueFull');
      const held = gate();
      const running = proxy.gate(held.path, 'running');
      await waitFor(() => pool.stats().totals.inFlight === 1, 'the first call to run');
      const queued = [1, 2, 3].map((i) => proxy.echo(i));
      const error = await rejectionOf(proxy.echo(4));
      expect(error).to.be.an.instanceOf(QueueFullError);
      expect(error).to.include({ code: 'ERR_PS_QUEUE_FULL', maxQueueSize: 3, method: 'echo' });
      expect(await full).to.deep.equal({ method: 'echo', maxQueueSize: 3 });
      held.open();
      expect(await running).to.equal('running');
      expect(await Promise.all(queued)).to.deep.equal([1, 2, 3]);
    });

    it('rejects with QueueTimeoutError a call that waits longer than queueTimeoutMs, and never runs it', async () => {
      const proxy = await createProxy({ ...torture, maxPoolSize: 1, queueTimeoutMs: 100 });
      const held = gate();
      const running = proxy.gate(held.path, 'slow');
      const waiting = proxy.exclusive(99, 0);
      const error = await rejectionOf(waiting);
      expect(error).to.be.an.instanceOf(QueueTimeoutError);
      expect(error).to.include({ code: 'ERR_PS_QUEUE_TIMEOUT', method: 'exclusive', timeoutMs: 100 });
      held.open();
      expect(await running).to.equal('slow');
      expect(await proxy.order()).to.deep.equal([]);
    });
  });

  describe('dispose', function () {
    it('rejects queued calls with PoolDisposedError, lets the running call finish, and kills every worker', async () => {
      const proxy = await createProxy({ ...torture, minPoolSize: 2, maxPoolSize: 2 });
      const pool = ProcessProxy.poolOf(proxy);
      const pids = pool.livePids();
      const held = gate();
      const running = [proxy.gate(held.path, 'a'), proxy.gate(held.path, 'b')];
      await waitFor(() => pool.stats().totals.inFlight === 2, 'both calls to run');
      const queued = [proxy.echo(1), proxy.echo(2)];
      const disposed = nextEvent(pool, 'disposed');
      const disposing = pool.dispose();
      // The queued calls are rejected at once; the running ones may finish.
      for (const call of queued) expect(await rejectionOf(call)).to.be.an.instanceOf(PoolDisposedError);
      held.open();
      await disposing;
      expect(await Promise.all(running)).to.deep.equal(['a', 'b']);
      for (const call of queued) {
        const error = await rejectionOf(call);
        expect(error).to.be.an.instanceOf(PoolDisposedError);
        expect(error.code).to.equal('ERR_PS_POOL_DISPOSED');
      }
      await disposed;
      // dispose() resolved only after every worker process exited.
      expect(pids.filter(isAlive)).to.deep.equal([]);
      expect(pool.stats().workers).to.deep.equal([]);
    });

    it('cuts off a call still running after shutdownGraceMs, with PoolDisposedError', async () => {
      const proxy = await createProxy({ ...torture, maxPoolSize: 1, shutdownGraceMs: 100 });
      const pool = ProcessProxy.poolOf(proxy);
      const [pid] = pool.livePids();
      const hang = proxy.spin();
      await waitFor(() => pool.stats().totals.inFlight === 1, 'the call to run');
      await pool.dispose(); // resolves at all: the endless call was cut off
      const error = await rejectionOf(hang);
      expect(error).to.be.an.instanceOf(PoolDisposedError);
      expect(error.message).to.match(/shutdownGraceMs/);
      expect(isAlive(pid)).to.equal(false);
    });

    it('with drain: true runs the queued calls first', async () => {
      const proxy = await createProxy({ ...torture, maxPoolSize: 1 });
      const pool = ProcessProxy.poolOf(proxy);
      const calls = Array.from({ length: 10 }, (_, i) => proxy.exclusive(i, 5));
      await pool.dispose({ drain: true });
      expect(await Promise.all(calls)).to.deep.equal([...Array(10).keys()]);
      expect(pool.livePids()).to.deep.equal([]);
    });

    it('is idempotent; calls after it reject with PoolDisposedError; Symbol.asyncDispose works', async () => {
      const proxy = await ProcessProxy.create(torture);
      const pool = ProcessProxy.poolOf(proxy);
      const pids = pool.livePids();
      // What `await using scoped = proxy` compiles to (Node 20 has no such syntax in plain JS).
      try {
        expect(await proxy.echo('inside')).to.equal('inside');
      } finally {
        await proxy[Symbol.asyncDispose]();
      }
      expect(pids.filter(isAlive)).to.deep.equal([]);
      await Promise.all([pool.dispose(), pool.dispose(), proxy[Symbol.asyncDispose]()]);
      const error = await rejectionOf(proxy.echo('late'));
      expect(error).to.be.an.instanceOf(PoolDisposedError);
    });

    it('disposeAll() disposes every pool in the process', async () => {
      const a = await ProcessProxy.create(torture);
      const b = await ProcessProxy.create(torture);
      const pids = [...ProcessProxy.poolOf(a).livePids(), ...ProcessProxy.poolOf(b).livePids()];
      await ProcessProxy.disposeAll();
      expect(pids.filter(isAlive)).to.deep.equal([]);
      expect(await rejectionOf(a.echo(1))).to.be.an.instanceOf(PoolDisposedError);
      expect(await rejectionOf(b.echo(1))).to.be.an.instanceOf(PoolDisposedError);
    });
  });

  describe('observability', function () {
    it("sends the worker's stdout and stderr to the logger, line by line, prefixed with its pid", async () => {
      const logger = memoryLogger();
      const proxy = await createProxy({ ...torture, logger });
      const pid = await proxy.pid();
      await proxy.print('first line\nsecond line');
      const lines = await waitFor(() => {
        const seen = logger.lines.filter((l) => l.obj.pid === pid).map((l) => `${l.level} ${l.msg}`);
        return seen.length >= 4 ? seen : false;
      }, 'four lines of worker output');
      expect(lines).to.include.members([
        `info [worker ${pid}] first line`,
        `info [worker ${pid}] second line`,
        `warn [worker ${pid}] err:first line`,
        `warn [worker ${pid}] second line`,
      ]);
      // Output is not a failure.
      expect(ProcessProxy.poolOf(proxy).stats().totals.failed).to.equal(0);
    });

    it('reports stats per worker and totals', async () => {
      const proxy = await createProxy({ ...torture, minPoolSize: 2, maxPoolSize: 2 });
      const pool = ProcessProxy.poolOf(proxy);
      await Promise.all([proxy.echo(1), proxy.echo(2), proxy.echo(3)]);
      await rejectionOf(proxy.rejectAsync('x'));
      const { workers, totals } = pool.stats();
      expect(workers).to.have.length(2);
      for (const w of workers) {
        expect(w.pid).to.be.a('number').above(0);
        expect(w.state).to.equal('idle');
        expect(w.rssBytes).to.be.a('number').above(10 * 1024 * 1024);
        // Wine 8 counts no process handles (a stub): the worker's own figure (libuv handles) stands in.
        expect(w.handles).to.be.a('number').above(underWine ? 0 : 2);
      }
      expect(workers.reduce((n, w) => n + w.calls, 0)).to.equal(4);
      expect(totals).to.include({ calls: 4, succeeded: 3, failed: 1, crashes: 0, timeouts: 0, queued: 0, inFlight: 0 });
    });

    it('a listener that throws does not break the pool', async () => {
      const logger = memoryLogger();
      const proxy = await createProxy({ ...torture, maxPoolSize: 1, logger });
      const pool = ProcessProxy.poolOf(proxy);
      let second = 0;
      pool.on('workerCrashed', () => {
        throw new Error('listener bug');
      });
      pool.on('workerCrashed', () => second++);
      await rejectionOf(proxy.exit(2));
      expect(await proxy.echo('fine')).to.equal('fine');
      expect(second).to.equal(1);
      expect(logger.lines.some((l) => l.level === 'error' && /listener threw/.test(l.msg))).to.equal(true);
    });
  });
});

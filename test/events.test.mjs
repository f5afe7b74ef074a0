// Events from the implementation (issue 17): emit(name, payload), handed to the constructor or
// factory, reaches the host as the pool's 'workerEvent' with the worker's pid.
import { expect } from 'chai';
import { EVENTS_PER_SECOND, MAX_EVENT_BYTES } from '@process-sandbox/abstractions';
import { ProcessProxy } from '@process-sandbox/core';
import { forbidEscapes } from './support/forging.mjs';
import { createProxy, disposeProxies, fixture, memoryLogger, nextEvent } from './support/pools.mjs';
import { waitFor } from './support/processes.mjs';

const streamer = { workerModule: fixture('streams.mjs'), workerExport: 'Streamer' };

describe('events: the implementation emits, the pool hears', function () {
  this.timeout(60_000);
  forbidEscapes(disposeProxies); // nothing a host callback or listener does escapes into the host

  it('an event arrives with its name, its payload (the codec\'s types) and the worker\'s pid', async () => {
    const proxy = await createProxy({ ...streamer, maxPoolSize: 1 });
    const pool = ProcessProxy.poolOf(proxy);
    const pid = await proxy.pid();
    const event = nextEvent(pool, 'workerEvent');
    const payload = { at: new Date(5), ids: new Set([1n, 2n]), rows: new Map([['a', 1]]) };
    expect(await proxy.emit('saved', payload)).to.equal(true);
    expect(await event).to.deep.equal({ pid, name: 'saved', payload });
  });

  it('an event emitted just before the worker blocks its thread reaches the host at once, not at the timeout', async () => {
    const proxy = await createProxy({ ...streamer, maxPoolSize: 1, methodCallTimeoutMs: 600_000 });
    const pool = ProcessProxy.poolOf(proxy);
    const pid = await proxy.pid();
    const event = nextEvent(pool, 'workerEvent');
    const blocked = proxy.emitThenBlock('last words');
    expect(await event).to.deep.equal({ pid, name: 'last words', payload: null });
    await pool.dispose();
    expect(await blocked.then(() => 'settled', (error) => error.name)).to.equal('PoolDisposedError');
  });

  it('a constructor may emit, before the worker is ready; a factory\'s context is the second argument', async () => {
    const events = [];
    const started = [];
    const logger = memoryLogger();
    // The listener must exist before the first worker starts: listen on a pool made by a first proxy, then reload.
    const proxy = await createProxy({ ...streamer, maxPoolSize: 1, logger });
    const pool = ProcessProxy.poolOf(proxy);
    pool.on('workerEvent', (e) => events.push(e));
    pool.on('workerReady', (e) => started.push(e.pid));
    await pool.reload({ workerOptions: { emitInConstructor: true } });
    await waitFor(() => events.some((e) => e.name === 'constructed'), 'the constructor\'s event');
    const constructed = events.find((e) => e.name === 'constructed');
    expect(constructed.pid).to.equal(constructed.payload.pid);
    expect(started).to.include(constructed.pid);

    const made = await createProxy({ ...streamer, workerExport: 'makeStreamer', maxPoolSize: 1 });
    const heard = nextEvent(ProcessProxy.poolOf(made), 'workerEvent');
    expect(await made.emit('from a factory', 1)).to.equal(true);
    expect(await heard).to.include({ name: 'from a factory', payload: 1, pid: await made.pid() });
  });

  it('emit() keeps to EVENTS_PER_SECOND itself (false when it drops), so the host never drops an honest worker\'s events', async () => {
    const logger = memoryLogger();
    const proxy = await createProxy({ ...streamer, maxPoolSize: 1, logger });
    const pool = ProcessProxy.poolOf(proxy);
    let received = 0;
    pool.on('workerEvent', () => received++);
    const sent = await proxy.emitMany(5 * EVENTS_PER_SECOND);
    expect(sent).to.be.at.least(EVENTS_PER_SECOND);
    expect(sent, 'the rest dropped at the source').to.be.below(5 * EVENTS_PER_SECOND);
    await waitFor(() => received === sent, `all ${sent} events sent to arrive`);
    expect(logger.lines.filter((l) => /emits events faster/.test(l.msg))).to.deep.equal([]);
  });

  it('emit() refuses a bad name and a payload over MAX_EVENT_BYTES or that cannot cross, in the worker', async () => {
    const proxy = await createProxy({ ...streamer, maxPoolSize: 1 });
    expect(await proxy.emitCaught('', 1)).to.include({ name: 'TypeError' });
    expect(await proxy.emitCaught('x'.repeat(257), 1)).to.include({ name: 'TypeError' });
    const big = await proxy.emitCaught('big', 'y'.repeat(MAX_EVENT_BYTES));
    expect(big.name).to.equal('SerializationError');
    expect(big.message).to.match(/MAX_EVENT_BYTES/);
    const pid = await proxy.pid();
    expect(await proxy.emit('fine', null)).to.equal(true);
    expect(await proxy.pid()).to.equal(pid);
  });

  it('a listener that throws does not hurt the pool', async () => {
    const logger = memoryLogger();
    const proxy = await createProxy({ ...streamer, maxPoolSize: 1, logger });
    const pool = ProcessProxy.poolOf(proxy);
    pool.on('workerEvent', () => {
      throw new Error('listener bug');
    });
    const heard = nextEvent(pool, 'workerEvent');
    await proxy.emit('x', 1);
    await heard;
    expect(await proxy.echo('on')).to.equal('on');
    expect(logger.lines.some((l) => l.level === 'error' && /'workerEvent' listener threw/.test(l.msg))).to.equal(true);
  });
});

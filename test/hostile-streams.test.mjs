// A worker that forges the messages of streams, callbacks and events (issue 17), through the public
// API (fixtures/fake-worker.mjs answers a call with the frames the test scripts). Every forgery is
// a ProtocolError that kills that worker: the call (or the stream it opened) ends once with
// WorkerCrashedError caused by it, the host buffers no more than the credit it granted, a host
// callback never runs for a call that is not running, the host stays up and the pool serves on.
import { expect } from 'chai';
import { EVENTS_PER_SECOND, MAX_CALLBACKS_IN_FLIGHT, MAX_EVENT_BYTES, STREAM_WINDOW } from '@process-sandbox/abstractions';
import { ProtocolError, WorkerCrashedError, WorkerStartError } from '@process-sandbox/core';
import { disposeProxies, nextEvent } from './support/pools.mjs';
import { counted, expectProtocolKill, expectServing, forgingPool, forbidEscapes, warmWorker } from './support/forging.mjs';
import { waitFor, waitForExit } from './support/processes.mjs';
import { probeEventLoopStalls } from './support/stall-probe.mjs';

/** The worker opens a stream and then breaks the protocol: the stream ends with the crash, after the items admitted. */
async function expectStreamKill(ctx, script, why, label = JSON.stringify(script).slice(0, 100)) {
  const pid = await warmWorker(ctx);
  const crashed = nextEvent(ctx.pool, 'workerCrashed');
  const stream = await ctx.proxy.forge(script);
  ctx.calls++;
  const event = await crashed;
  expect(event, label).to.include({ pid, reason: 'protocol', method: 'forge' });
  const buffered = stream.buffered;
  expect(buffered, `${label}: the host holds at most the credit it granted`).to.be.at.most(STREAM_WINDOW);
  const items = [];
  let error;
  try {
    for await (const item of stream) items.push(item);
  } catch (e) {
    error = e;
  }
  expect(error, label).to.be.an.instanceOf(WorkerCrashedError);
  expect(error.cause, label).to.be.an.instanceOf(ProtocolError);
  expect(error.cause.message, label).to.match(why);
  expect(items.length, `${label}: the items admitted before it`).to.equal(buffered);
  await waitForExit([pid]);
  await expectServing(ctx, label);
  return items;
}

describe('hostile worker messages: streams, callbacks, events', function () {
  this.timeout(60_000);
  probeEventLoopStalls('the hostile stream, callback and event messages');
  forbidEscapes(disposeProxies);

  it('StreamOpen and StreamItem: malformed, for another call, without a stream, twice, beyond the credit, after the end', async () => {
    const ctx = await forgingPool();
    const kills = [
      [[[11, 0]], /StreamOpen id is 0, expected the id of a call/],
      [[[11, -3]], /StreamOpen id is -3/],
      [[[11, '$id', 'extra']], /StreamOpen has 3 fields, expected 2/],
      [[[11, 'x']], /StreamOpen id is "x", expected a safe integer/],
      [[[11, '$id+1']], /StreamOpen for call \d+, but call \d+ is running/],
      [[[12, '$id', 'item']], /StreamItem for call \d+, which opened no stream/],
      [[[12, '$id']], /StreamItem has 2 fields, expected 3/],
      [[[12, '$id-1', 'item']], /StreamItem for call \d+, but call \d+ is running/],
    ];
    for (const [script, why] of kills) await expectProtocolKill(ctx, script, why);

    await expectStreamKill(ctx, [[11, '$id'], { items: 2 }, [11, '$id']], /whose stream is already open/);
    await expectStreamKill(ctx, [[11, '$id'], { items: 3 }, [12, '$id+1', 'x']], /StreamItem for call \d+, but call \d+ is running/);
    // One item past the window: the host has exactly the window, and the worker dies for the rest.
    const items = await expectStreamKill(ctx, [[11, '$id'], { items: STREAM_WINDOW + 1 }], /StreamItem for call \d+ beyond the credit granted/);
    expect(items).to.have.length(STREAM_WINDOW);
    // Ten thousand past it: still only the window, never a growing buffer.
    const flood = await expectStreamKill(ctx, [[11, '$id'], { items: 10_000 }], /beyond the credit granted/);
    expect(flood).to.have.length(STREAM_WINDOW);

    // An item after the stream's end: the stream ended well; the stray item kills the worker.
    const pid = await warmWorker(ctx);
    const stream = await ctx.proxy.forge([[11, '$id'], { items: 2 }, [4, '$id', null, null], [12, '$id', 'late']]);
    ctx.calls++;
    const got = [];
    for await (const item of stream) got.push(item);
    expect(got).to.deep.equal([0, 1]);
    await waitForExit([pid]);
    expect(ctx.logger.lines.some((l) => l.level === 'error' && /StreamItem for call \d+, but no call is running/.test(l.obj?.why ?? ''))).to.equal(true);
    await expectServing(ctx, 'after an item past the end');

    // During the handshake there is no call to stream for.
    const reloading = counted(ctx.pool.reload({ workerOptions: { handshake: [[11, 1]] } }));
    await reloading.done;
    expect(reloading.error).to.be.an.instanceOf(WorkerStartError);
    expect(reloading.error.message).to.match(/StreamOpen for call 1, but no call is running/);
    await expectServing(ctx, 'after a StreamOpen at the handshake');
  });

  it('Callback: malformed, to an argument that is not a function, for a call not running, a number reused while unanswered, more than the in-flight limit', async () => {
    const ctx = await forgingPool();
    const kills = [
      [[[15, '$id', 1, 0, []]], /Callback to argument 0 of call \d+, which is not a function/],
      [[[15, '$id', 0, 1, []]], /Callback number is 0, expected a positive safe integer/],
      [[[15, '$id', 1.5, 1, []]], /Callback number is 1.5/],
      [[[15, '$id', '1', 1, []]], /Callback number is "1"/],
      [[[15, '$id', 1, 64, []]], /Callback slot is 64, expected an argument index from 0 to 63/],
      [[[15, '$id', 1, -1, []]], /Callback slot is -1/],
      [[[15, '$id', 1, 0.5, []]], /Callback slot is 0.5/],
      [[[15, '$id', 1, 1, 'args']], /Callback args is "args", expected an array/],
      [[[15, '$id', 1, 1]], /Callback has 4 fields, expected 5/],
      [[[15, 0, 1, 1, []]], /Callback id is 0/],
      [[[15, '$id+1', 1, 1, []]], /Callback for call \d+, but call \d+ is running/],
    ];
    for (const [script, why] of kills) await expectProtocolKill(ctx, script, why);

    // With a real function as argument 1, one that never answers: the worker may not reuse a
    // number that is unanswered, nor have more than MAX_CALLBACKS_IN_FLIGHT unanswered.
    const calls = [];
    const never = (...args) => {
      calls.push(args);
      return new Promise(() => {});
    };
    const withCallback = async (script, why) => {
      const pid = await warmWorker(ctx);
      const entry = counted(ctx.proxy.forge(script, never));
      ctx.calls++;
      await entry.done;
      expect(entry.error).to.be.an.instanceOf(WorkerCrashedError);
      expect(entry.error.cause.message).to.match(why);
      await waitForExit([pid]);
      await expectServing(ctx);
      expect(entry.settlements).to.equal(1);
    };
    await withCallback([[15, '$id', 7, 1, ['a']], [15, '$id', 7, 1, ['b']]], /Callback 7 of call \d+ while the one of that number is unanswered/);
    expect(calls.splice(0)).to.deep.equal([['a']]);
    await withCallback([{ callbacks: MAX_CALLBACKS_IN_FLIGHT + 1, slot: 1 }], new RegExp(`more than ${MAX_CALLBACKS_IN_FLIGHT} callbacks of call \\d+ unanswered`));
    expect(calls.splice(0)).to.have.length(MAX_CALLBACKS_IN_FLIGHT);

    // After its call ended, a callback runs nothing: the worker is killed for it.
    const pid = await warmWorker(ctx);
    const late = counted(ctx.proxy.forge([[4, '$id', 'done', null], [15, '$id', 1, 1, []]], never));
    ctx.calls++;
    await late.done;
    expect(late.value).to.equal('done');
    await waitForExit([pid]);
    expect(calls, 'the host function never ran for a call that had ended').to.deep.equal([]);
    expect(ctx.logger.lines.some((l) => l.level === 'error' && /Callback for call \d+, but no call is running/.test(l.obj?.why ?? ''))).to.equal(true);
    await expectServing(ctx, 'after a late callback');
  });

  it('Event: malformed names and shapes, over MAX_EVENT_BYTES (refused before decoding), and a flood (dropped beyond the budget, not delivered)', async () => {
    const ctx = await forgingPool();
    const kills = [
      [[[17, '', 1]], /Event name is "", expected a non-empty string of at most 256 characters/],
      [[[17, 42, 1]], /Event name is 42/],
      [[[17, 'x'.repeat(257), 1]], /Event name is a string of 257 characters/],
      [[[17, 'x']], /Event has 2 fields, expected 3/],
      [[[17, 'big', 'y'.repeat(MAX_EVENT_BYTES)]], new RegExp(`Event of \\d+ bytes, more than the ${MAX_EVENT_BYTES} allowed`)],
    ];
    for (const [script, why] of kills) await expectProtocolKill(ctx, script, why);

    // A well-formed event arrives with the worker's pid.
    const pid = await warmWorker(ctx);
    const got = [];
    ctx.pool.on('workerEvent', (e) => got.push(e));
    expect(await ctx.proxy.forge([[17, 'progress', { pct: 5 }], [4, '$id', 'ok', null]])).to.equal('ok');
    ctx.calls++;
    expect(got).to.deep.equal([{ pid, name: 'progress', payload: { pct: 5 } }]);
    // A flood: 20 000 events in one burst. The host delivers at most its budget and drops the rest.
    got.length = 0;
    const flood = Array.from({ length: 20_000 }, (_, i) => [17, 'tick', i]);
    const start = performance.now();
    expect(await ctx.proxy.forge([...flood, [4, '$id', 'after the flood', null]])).to.equal('after the flood');
    const seconds = (performance.now() - start) / 1000;
    ctx.calls++;
    expect(got.length).to.be.above(0);
    // A token bucket of 2 × EVENTS_PER_SECOND: at most that burst plus that rate over the time it took.
    const budget = 2 * EVENTS_PER_SECOND * (1 + seconds) + 1;
    expect(got.length, `the host delivers no more than its budget (${Math.floor(budget)} over ${seconds.toFixed(2)} s)`).to.be.at.most(budget);
    expect(got.length, 'most of the flood is dropped').to.be.below(flood.length);
    await waitFor(() => ctx.logger.lines.some((l) => l.level === 'warn' && /emits events faster than the host takes them/.test(l.msg)), 'the drop to be logged');
    expect(await ctx.proxy.pid(), 'a flood is dropped, not a protocol error').to.equal(pid);
    ctx.calls++;
    await expectServing(ctx, 'after a flood of events');
  });
});

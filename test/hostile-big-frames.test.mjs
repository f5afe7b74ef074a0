// Frames near maxMessageBytes (64 MiB) from a real worker, forged by its implementation on its own
// channel or sent honestly as a large result: the host decodes them in slices (codec-decode.ts,
// channel.ts), and its event loop keeps turning meanwhile. Decoded at once, 64 MiB of small
// containers held it for about a second of CPU, and other shapes for several seconds (issue 11).
//
// What is asserted is load-independent: the CPU time this process spent between two consecutive
// turns of its loop (a 1 ms interval) stays under STALL_LIMIT_MS, and the loop turned. The longest
// wall-clock gap is printed, not asserted: on this shared machine it measures the other processes.
// Each call settles exactly once, with its value or a typed error; the next call works; the killed
// worker's process is gone (and the root hooks check that no process is left at all).
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { expect } from 'chai';
import { ProtocolError, RemoteError, SerializationError, WorkerCrashedError } from '@process-sandbox/core';
import { MAX_ARRAY_ITEMS, MAX_RECORD_ENTRIES } from '@process-sandbox/abstractions';
import { disposeProxies, fixture } from './support/pools.mjs';
import { counted, expectServing, forbidEscapes, forgingPool, warmWorker } from './support/forging.mjs';
import { waitForExit } from './support/processes.mjs';
import { STALL_LIMIT_MS } from './support/stall-probe.mjs';

const MiB = 1024 * 1024;
const bigFrames = { workerModule: fixture('big-frames.mjs'), workerExport: 'BigFrames', execArgv: [] };

const cpuMs = () => {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1000;
};

setFlagsFromString('--expose-gc');
const collectGarbage = runInNewContext('gc');

/**
 * Runs `during` while ticking every millisecond; returns its outcome and what the ticks saw. The
 * heap is collected first: a major GC's pause is the VM's, proportional to what earlier cases left
 * (one of ~260 ms was seen with a previous case's 2 M dead arrays), and not what is measured here.
 */
async function probed(during) {
  collectGarbage();
  const seen = { ticks: 0, maxCpuMs: 0, maxWallMs: 0, cpuMs: 0 };
  let lastAt = performance.now();
  let lastCpu = cpuMs();
  const startCpu = lastCpu;
  const timer = setInterval(() => {
    const at = performance.now();
    const cpu = cpuMs();
    seen.ticks++;
    seen.maxCpuMs = Math.max(seen.maxCpuMs, cpu - lastCpu);
    seen.maxWallMs = Math.max(seen.maxWallMs, at - lastAt);
    lastAt = at;
    lastCpu = cpu;
  }, 1);
  try {
    const entry = counted(during());
    await entry.done;
    return { entry, seen };
  } finally {
    clearInterval(timer);
    seen.cpuMs = cpuMs() - startCpu;
  }
}

function report(label, seen) {
  console.log(
    `      ${label}: host CPU ${seen.cpuMs.toFixed(0)} ms in all; longest between two turns of the loop: CPU ${seen.maxCpuMs.toFixed(1)} ms ` +
      `(limit ${STALL_LIMIT_MS} ms), wall ${seen.maxWallMs.toFixed(1)} ms (not asserted); ${seen.ticks} turns`,
  );
  expect(seen.ticks, `${label}: the loop turned`).to.be.above(10);
  expect(seen.maxCpuMs, `${label}: host CPU between two turns of the loop`).to.be.below(STALL_LIMIT_MS);
}

describe('hostile big frames: the host decodes a frame of ~maxMessageBytes without holding its event loop @slow', function () {
  this.timeout(180_000);
  forbidEscapes(disposeProxies);
  // What these cases leave on the heap is collected here, not in the next file's stall probe.
  after(() => collectGarbage());

  it('a forged Result of 64 MiB of [1] arrays (refused at MAX_DECODED_CONTAINERS, midway) and one of a 64 MiB string (refused by the gate once decoded): one typed error each, the next call works', async function () {
    if (process.platform !== 'linux') this.skip(); // the implementation finds its channel in /proc/self/fd
    const ctx = await forgingPool(bigFrames);
    const cases = [
      ['forgeContainers', /more than 2097152 arrays and maps in one value/],
      ['forgeString', /reply to call \d+, but call \d+ is in flight/],
    ];
    for (const [method, why] of cases) {
      const pid = await warmWorker(ctx);
      const { entry, seen } = await probed(() => ctx.proxy[method](64 * MiB - 1024));
      ctx.calls++;
      expect(entry.settlements, method).to.equal(1);
      expect(entry.error, method).to.be.an.instanceOf(WorkerCrashedError);
      expect(entry.error.cause, `${method}: the cause`).to.be.an.instanceOf(ProtocolError);
      expect(entry.error.cause.message, method).to.match(why);
      report(`${method}(64 MiB)`, seen);
      await waitForExit([pid]);
      await expectServing(ctx, `after ${method}`);
      expect(entry.settlements, `${method}: still settled once`).to.equal(1);
    }
  });

  it('a forged record of MAX_RECORD_ENTRIES + 1 keys and a forged array of MAX_ARRAY_ITEMS + 1 items: refused at their headers (growing one container is a step nothing can interrupt)', async function () {
    if (process.platform !== 'linux') this.skip(); // the implementation finds its channel in /proc/self/fd
    const ctx = await forgingPool(bigFrames);
    const cases = [
      ['forgeRecord', MAX_RECORD_ENTRIES + 1, /a record declares 1048577 entries, over the limit of 1048576/],
      ['forgeArray', MAX_ARRAY_ITEMS + 1, /an array declares 8388609 items, over the limit of 8388608/],
    ];
    for (const [method, size, why] of cases) {
      const pid = await warmWorker(ctx);
      const { entry, seen } = await probed(() => ctx.proxy[method](size));
      ctx.calls++;
      expect(entry.settlements, method).to.equal(1);
      expect(entry.error, method).to.be.an.instanceOf(WorkerCrashedError);
      expect(entry.error.cause, `${method}: the cause`).to.be.an.instanceOf(ProtocolError);
      expect(entry.error.cause.message, method).to.match(why);
      report(`${method}(${size})`, seen);
      await waitForExit([pid]);
      await expectServing(ctx, `after ${method}`);
    }
  });

  it("an honest result of MAX_RECORD_ENTRIES + 1 keys is refused by the worker's own encoder, naming the limit; the worker lives on", async () => {
    const ctx = await forgingPool(bigFrames);
    const pid = await warmWorker(ctx);
    const entry = counted(ctx.proxy.record(MAX_RECORD_ENTRIES + 1));
    await entry.done;
    ctx.calls++;
    expect(entry.settlements).to.equal(1);
    expect(entry.error).to.be.an.instanceOf(SerializationError);
    expect(entry.error.message).to.match(/record of 1048577 keys, over the limit of 1048576 \(MAX_RECORD_ENTRIES\)/);
    expect(await ctx.proxy.pid(), 'the same worker serves the next call').to.equal(pid);
    ctx.calls++;
    expect(Object.keys(await ctx.proxy.record(1000))).to.have.length(1000);
    ctx.calls++;
  });

  it('honest results near the limit: 900 000 records (1.8 M containers, ~34 MiB) and a 30 M-character string (~57 MiB) arrive whole', async () => {
    const ctx = await forgingPool(bigFrames);
    const rows = await probed(() => ctx.proxy.rows(900_000));
    ctx.calls++;
    expect(rows.entry.settlements).to.equal(1);
    expect(rows.entry.error).to.equal(undefined);
    expect(rows.entry.value).to.have.length(900_000);
    expect(rows.entry.value[899_999]).to.deep.equal({ id: 899_999, name: 'row 899999', tags: ['a', 'b'] });
    report('rows(900 000)', rows.seen);

    const text = await probed(() => ctx.proxy.text(30_000_000));
    ctx.calls++;
    expect(text.entry.settlements).to.equal(1);
    expect(text.entry.error).to.equal(undefined);
    expect(text.entry.value.length).to.equal(30_000_000);
    expect(text.entry.value.slice(-3)).to.equal('ééé');
    report('text(30 M)', text.seen);
    await expectServing(ctx, 'after the large results');
  });

  it('large errors: a forged Failure whose error has properties of millions of items and a record of 500 000 keys, an AggregateError of 400 000 members: the RemoteError is built without walking them', async function () {
    if (process.platform !== 'linux') this.skip(); // the implementation finds its channel in /proc/self/fd
    const ctx = await forgingPool(bigFrames);
    const cases = [
      // [kind, size, what the RemoteError holds]
      ['props', 3_000_000, (error) => {
        expect(error.message).to.equal('large properties');
        expect(error.remoteProps.rows).to.have.length(3_000_000);
        expect(Object.keys(error.remoteProps.table)).to.have.length(500_000);
        expect(error.remoteProps.nested[0]).to.be.an.instanceOf(TypeError);
      }],
      ['aggregate', 400_000, (error) => {
        expect(error.message).to.equal('many members');
        expect(error.remoteProps.errors).to.have.length(400_000);
        expect(error.remoteProps.errors[399_999].message).to.equal('member 399999');
      }],
    ];
    for (const [kind, n, check] of cases) {
      const pid = await ctx.proxy.pid();
      ctx.calls++;
      // A pool numbers its calls from 1 (ctx.calls counts them): the next call is answered by the
      // forged Failure; the worker host's own reply after it answers nothing in flight, and that
      // worker is killed for it.
      const id = ctx.calls + 1;
      const { entry, seen } = await probed(() => ctx.proxy.forgeFailure(id, kind, n));
      ctx.calls++;
      expect(entry.settlements, kind).to.equal(1);
      if (!(entry.error instanceof RemoteError)) console.log(entry.error);
      expect(entry.error, kind).to.be.an.instanceOf(RemoteError);
      check(entry.error);
      report(`forgeFailure(${kind}, ${n})`, seen);
      await waitForExit([pid]);
      await expectServing(ctx, `after the forged ${kind}`);
      expect(entry.settlements, `${kind}: still settled once`).to.equal(1);
    }
  });

  it('order: a large result followed at once by a small one from the same worker (a call sent ahead) settle in order, each with its own value', async () => {
    const ctx = await forgingPool(bigFrames);
    const big = counted(ctx.proxy.rows(500_000));
    const small = counted(ctx.proxy.echo('small, sent ahead'));
    const settledOrder = [];
    big.done.then(() => settledOrder.push('big'));
    small.done.then(() => settledOrder.push('small'));
    ctx.calls += 2;
    await Promise.all([big.done, small.done]);
    expect(big.error, 'the large result').to.equal(undefined);
    expect(small.error, 'the small result').to.equal(undefined);
    expect(big.value).to.have.length(500_000);
    expect(small.value).to.equal('small, sent ahead');
    expect(settledOrder).to.deep.equal(['big', 'small']);
    expect([big.settlements, small.settlements]).to.deep.equal([1, 1]);
    await expectServing(ctx, 'after the ordered pair');
  });
});

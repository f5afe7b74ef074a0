/**
 * The streams and callbacks rows of bench/compare.mjs (issue 17), on a pool of one process-sandbox
 * worker (bench/workers/streams.mjs):
 *
 *   streamed   small items (integers) per second from an async generator, read with for await;
 *              compare.mjs sets it against the raw socket's pipelined rate (tput1) of the same run
 *   callbacks  callback round trips per second (the worker awaits each), against plain sequential
 *              calls per second on the same worker
 *   slow-consumer RSS  in a host process of its own: the host's RSS while a consumer that yields to
 *              the event loop after every item reads 10^6 items (backpressure: it must stay flat)
 *
 * Every item and every answer is checked.
 */
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const WORKER = fileURLToPath(new URL('../workers/streams.mjs', import.meta.url));
const PROBE = '--stream-rss-probe';

async function openPool() {
  const { ProcessProxy } = await import('@process-sandbox/core');
  const proxy = await ProcessProxy.create({ workerModule: WORKER, workerExport: 'Streams', minPoolSize: 1, maxPoolSize: 1, methodCallTimeoutMs: 120_000 });
  return { proxy, close: () => ProcessProxy.poolOf(proxy).dispose() };
}

/** Reads `n` items; items per second. */
async function streamed(proxy, n, fail) {
  const t0 = performance.now();
  let expected = 0;
  for await (const item of await proxy.items(n)) {
    if (item !== expected) fail(`streams: item ${expected} arrived as ${String(item)}`);
    expected++;
  }
  if (expected !== n) fail(`streams: ${expected} of ${n} items arrived`);
  return n / ((performance.now() - t0) / 1000);
}

/** `n` callback round trips in one call; round trips per second. */
async function callbacks(proxy, n, fail) {
  const t0 = performance.now();
  const sum = await proxy.callBack(n, (i) => i * 2);
  if (sum !== n * (n - 1)) fail(`streams: callBack(${n}) summed to ${sum}`);
  return n / ((performance.now() - t0) / 1000);
}

/** `n` plain calls one after the other; calls per second. */
async function plain(proxy, n, fail) {
  const t0 = performance.now();
  for (let i = 0; i < n; i++) if ((await proxy.echo(i)) !== i) fail(`streams: echo(${i}) returned something else`);
  return n / ((performance.now() - t0) / 1000);
}

/** Rounds of the three rates; `push(key, value)` records one. */
export async function measureStreams({ rounds, items, roundTrips, fail, push, log }) {
  const { proxy, close } = await openPool();
  try {
    await streamed(proxy, Math.min(items, 10_000), fail); // warm-up
    await callbacks(proxy, Math.min(roundTrips, 1_000), fail);
    await plain(proxy, Math.min(roundTrips, 1_000), fail);
    for (let r = 0; r < rounds; r++) {
      push('streamItems', await streamed(proxy, items, fail));
      push('callbackTrips', await callbacks(proxy, roundTrips, fail));
      push('plainCalls', await plain(proxy, roundTrips, fail));
      log?.(`streams, round ${r + 1}/${rounds}`);
    }
  } finally {
    await close();
  }
}

/** The host's RSS while a slow consumer reads `checkpoints.at(-1)` items, in a process of its own. */
export function slowConsumerRss(checkpoints, onStart) {
  return new Promise((resolve, reject) => {
    const child = fork(fileURLToPath(import.meta.url), [PROBE, checkpoints.join(',')], { execArgv: ['--expose-gc'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    onStart?.(child);
    let result;
    child.on('message', (message) => (result = message));
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      onStart?.(undefined);
      if (code === 0 && result && result.failures.length === 0) resolve(result);
      else reject(new Error(`stream RSS probe exited (${signal ?? code}): ${result?.failures.join('; ') ?? 'without a result'}`));
    });
  });
}

async function runProbe(checkpoints) {
  const failures = [];
  const { proxy, close } = await openPool();
  const points = [];
  try {
    const stream = await proxy.items(checkpoints.at(-1));
    let expected = 0;
    let maxBuffered = 0;
    for await (const item of stream) {
      if (item !== expected && failures.length < 20) failures.push(`item ${expected} arrived as ${item}`);
      expected++;
      maxBuffered = Math.max(maxBuffered, stream.buffered);
      // A slow consumer: the event loop turns once per item, the producer could go far faster.
      await new Promise((resolve) => setImmediate(resolve));
      if (checkpoints.includes(expected)) {
        const rss = process.memoryUsage.rss();
        globalThis.gc();
        points.push({ items: expected, rss, rssGc: process.memoryUsage.rss(), maxBuffered });
      }
    }
    if (expected !== checkpoints.at(-1)) failures.push(`${expected} items arrived`);
  } finally {
    await close();
  }
  process.send({ points, failures }, () => process.exit(0));
}

if (process.argv[2] === PROBE) await runProbe(process.argv[3].split(',').map(Number));

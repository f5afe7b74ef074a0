#!/usr/bin/env node
/**
 * process-sandbox against the other Node process pools and three baselines: one script, one run,
 * the same machine and the same workloads for all (issue 7's benchmark suite).
 *
 *   library    process-sandbox (the built dist, resolved from the repository root: `npm run build` first)
 *   peers      workerpool (workerType 'process'), jest-worker (child processes), worker-farm,
 *              worker-nodes (workerType 'process'), tinypool (runtime 'child_process'); installed
 *              in bench/ (its own package: `npm ci --prefix bench`)
 *   baselines  raw child_process.fork IPC, a raw Unix-socket MessagePack ping-pong (the library's
 *              framing), and a direct in-process call
 *
 * Workloads (the service is an echo: every call's result is checked against what was sent):
 *   seq       sequential echo latency, one caller, one worker: p50, p99, mean; CPU per call
 *   tput1/2   throughput with pools of 1 and 2 workers and 64 concurrent callers
 *   buffers   round trip of 1 KiB, 64 KiB, 1 MiB and 16 MiB Buffers, one worker, one at a time (MB/s)
 *   cold      create() to the first result, one worker
 *   recycle   throughput (2 workers, 64 callers) with each worker retired after 100 calls
 *   spike     latency during steady recycling: one caller, one call every 20 ms, one worker retired
 *             after every 5 calls; p50 and p99 of the calls (a recycle must not put a spike on a call).
 *             Measured after 20 unmeasured calls at the same pace (4 retirements), so that the pools
 *             recycle steadily from the first measured call, not after a burst
 *   rss       host RSS of process-sandbox after 10^4 and 10^6 calls (pipelined throughput path, in a
 *             separate host process so that nothing else this script does weighs on it)
 *   streams   process-sandbox only (issue 17): small items streamed per second, against the raw
 *             socket's pipelined rate of the same run; callback round trips per second, against
 *             plain calls; host RSS while a slow consumer reads 10^6 items (bench/lib/streams.mjs)
 *
 * Each figure is measured over several rounds; within a round the libraries take turns (in an
 * order that rotates from round to round), so that a noisy neighbour hits all of them.
 *
 * Usage: node bench/compare.mjs [--smoke] [--rounds=N] [--no-write] [--json] [--only=id,id]
 *   --smoke     every library and workload for a second or less (tiny counts; 10^6 scaled down to
 *               2·10^4): checks that every path works and returns correct results; writes nothing
 *   --rounds=N  rounds per workload (default 5; buffers and recycling at most 3)
 *   --no-write  do not rewrite docs/benchmarks.md and docs/benchmarks.svg (a full run does)
 *   --json      also print the raw results as JSON
 *   --only=…    only these libraries (ids as printed; for trying things out, never written)
 *   --workloads=…  only these of seq, tput, buffers, cold, recycle, rss, streams (likewise never written)
 *
 * Exits 0 when every call of every library returned what was sent (and every baseline child's own
 * count of answered requests matches the host's), 1 otherwise. Every pool is closed and every
 * child process is gone (killed by pid if need be) before it exits.
 */
import { fork } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import v8 from 'node:v8';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { adapters as allAdapters, fromJson } from './lib/adapters.mjs';
import { barChart } from './lib/chart.mjs';
import { writeSection } from './lib/docs.mjs';
import { selfTestFrameReader } from './lib/framing.mjs';
import { cpuTicks, loadText, machineInfo, otherWork } from './lib/machine.mjs';
import { childPids, cpuSupported, isAlive, withCpu } from './lib/proc.mjs';
import { concat, spread, summarise } from './lib/stats.mjs';
import { measureStreams, slowConsumerRss } from './lib/streams.mjs';

const RSS_PROBE = '--rss-probe';
const KiB = 1024;
const MiB = 1024 * 1024;
const SIZES = [KiB, 64 * KiB, MiB, 16 * MiB];
const sizeName = (n) => (n >= MiB ? `${n / MiB} MiB` : `${n / KiB} KiB`);

// ─── checks ──────────────────────────────────────────────────────────────────

const failures = [];
function fail(message) {
  if (failures.length < 1000) failures.push(message);
}

/** Every echo carries a value no other call carries, so a misrouted or stale reply is caught. */
let nextValue = 1;

// ─── measurements ────────────────────────────────────────────────────────────

/** `n` echo calls one after the other; per-call latencies in µs. */
async function sequential(id, h, n) {
  const latencies = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const x = nextValue++;
    const t0 = performance.now();
    const v = await h.call('echo', x);
    latencies[i] = (performance.now() - t0) * 1000;
    if (v !== x) fail(`${id}: echo(${x}) returned ${String(v)}`);
  }
  return latencies;
}

/**
 * `callers` loops calling until `ms` have passed; completed calls per second (the tail, calls started
 * before the deadline, included). With `perPid`, calls 'tagged' and counts calls per worker pid.
 */
async function throughput(id, h, callers, ms, perPid) {
  let completed = 0;
  const t0 = performance.now();
  const deadline = t0 + ms;
  const loop = async () => {
    while (performance.now() < deadline) {
      const x = nextValue++;
      if (perPid) {
        const v = await h.call('tagged', x);
        if (!Array.isArray(v) || v[0] !== x || !Number.isInteger(v[1])) fail(`${id}: tagged(${x}) returned ${JSON.stringify(v)}`);
        else perPid.set(v[1], (perPid.get(v[1]) ?? 0) + 1);
      } else {
        const v = await h.call('echo', x);
        if (v !== x) fail(`${id}: echo(${x}) returned ${String(v)}`);
      }
      completed++;
    }
  };
  await Promise.all(Array.from({ length: callers }, loop));
  const elapsedMs = performance.now() - t0;
  return { callsPerSecond: (completed * 1000) / elapsedMs, completed, elapsedMs };
}

/** Bytes of a Buffer / Uint8Array result, or undefined. */
function bytesOf(value) {
  return value instanceof Uint8Array ? Buffer.from(value.buffer, value.byteOffset, value.byteLength) : undefined;
}

/**
 * Echo round trips of `payload` (one at a time) until `ms` have passed, at least once and at most
 * `maxCalls` times. Each call is timed on its own, from the call to a Buffer in hand (JSON results
 * are rebuilt inside the timing); the check that the bytes match is not timed.
 */
async function bufferRoundTrips(adapter, h, payload, ms, maxCalls) {
  let calls = 0;
  let timeMs = 0;
  const deadline = performance.now() + ms;
  do {
    payload.writeUInt32LE(nextValue++ >>> 0, 0); // each call's bytes differ
    const t0 = performance.now();
    let v = await h.call('echo', payload);
    if (adapter.json) v = fromJson(v);
    timeMs += performance.now() - t0;
    const bytes = bytesOf(v);
    if (bytes === undefined || bytes.length !== payload.length || Buffer.compare(bytes, payload) !== 0) {
      fail(`${adapter.id}: echo of a ${sizeName(payload.length)} Buffer returned ${bytes ? `${bytes.length} different bytes` : Object.prototype.toString.call(v)}`);
    }
    calls++;
  } while (performance.now() < deadline && calls < maxCalls);
  return { mbps: (calls * payload.length) / (timeMs / 1000) / 1e6, msPerCall: timeMs / calls, calls };
}

// ─── the run ─────────────────────────────────────────────────────────────────

function parseArgs(argv) {
  const flags = { smoke: false, write: true, json: false, rounds: undefined, only: undefined, workloads: undefined };
  for (const arg of argv) {
    if (arg === '--smoke') flags.smoke = true;
    else if (arg === '--no-write') flags.write = false;
    else if (arg === '--json') flags.json = true;
    else if (arg.startsWith('--rounds=')) flags.rounds = Number(arg.slice('--rounds='.length));
    else if (arg.startsWith('--only=')) flags.only = arg.slice('--only='.length).split(',');
    else if (arg.startsWith('--workloads=')) flags.workloads = arg.slice('--workloads='.length).split(',');
    else if (arg === '--help' || arg === '-h') {
      console.log('usage: node bench/compare.mjs [--smoke] [--rounds=N] [--no-write] [--json] [--only=id,id] [--workloads=seq,tput,buffers,cold,recycle,spike,rss,streams]');
      process.exit(0);
    } else {
      console.error(`unknown argument: ${arg}`);
      process.exit(2);
    }
  }
  if (flags.rounds !== undefined && !(Number.isInteger(flags.rounds) && flags.rounds >= 1)) {
    console.error('--rounds expects a whole number >= 1');
    process.exit(2);
  }
  const known = ['seq', 'tput', 'buffers', 'cold', 'recycle', 'spike', 'rss', 'streams'];
  const unknown = (flags.workloads ?? []).filter((w) => !known.includes(w));
  if (unknown.length) {
    console.error(`unknown workload: ${unknown.join(', ')}; known: ${known.join(', ')}`);
    process.exit(2);
  }
  if (flags.smoke || flags.only || flags.workloads) flags.write = false;
  return flags;
}

function configFor(flags) {
  if (flags.smoke) {
    return {
      rounds: flags.rounds ?? 1,
      bufferRounds: 1,
      recycleRounds: 1,
      callers: 64,
      seqWarmup: 50,
      seqBlocks: 1,
      seqBlockCalls: 200,
      seqSettle: 10,
      tputWarmupMs: 50,
      tputBlockMs: 150,
      tputSettleMs: 0,
      bufferWarmup: false,
      bufferBlockMs: 0,
      bufferMaxCalls: 1,
      bufferMaxEstimateMs: 1500,
      recycle: 100,
      recycleWarmupMs: 0,
      recycleBlockMs: 500,
      spikeCalls: 20,
      spikeEvery: 5,
      spikeGapMs: 20,
      rssCheckpoints: [2_000, 10_000, 20_000],
      streamItems: 5_000,
      callbackTrips: 200,
      streamRssCheckpoints: [2_000, 10_000, 20_000],
    };
  }
  const rounds = flags.rounds ?? 5;
  return {
    rounds,
    bufferRounds: Math.min(rounds, 3),
    recycleRounds: Math.min(rounds, 3),
    callers: 64,
    seqWarmup: 2000,
    seqBlocks: 10,
    seqBlockCalls: 200,
    seqSettle: 20,
    tputWarmupMs: 500,
    tputBlockMs: 500,
    tputSettleMs: 50,
    bufferWarmup: true,
    bufferBlockMs: 300,
    bufferMaxCalls: 2000,
    bufferMaxEstimateMs: 5000,
    recycle: 100,
    recycleWarmupMs: 300,
    recycleBlockMs: 1000,
    spikeCalls: 150,
    spikeEvery: 5,
    spikeGapMs: 20,
    rssCheckpoints: [10_000, 100_000, 1_000_000],
    streamItems: 200_000,
    callbackTrips: 5_000,
    streamRssCheckpoints: [10_000, 100_000, 1_000_000],
  };
}

/** The list turned by k places: nobody always goes first. */
/** Whether this run measures `workload` (all unless --workloads says otherwise). */
let want = () => true;
const rotate = (list, k) => list.map((_, i) => list[(i + k) % list.length]);
const applies = (adapter, workload) => adapter.workloads === undefined || adapter.workloads.includes(workload);
const log = (text) => process.stderr.write(`${text}\n`);

/**
 * Every Node process started with NODE_EXTRA_CA_CERTS parses that certificate bundle while it starts
 * (measured on a 2-core machine whose environment sets it: +50–100 ms to `node -e 0`). tinypool's
 * child_process runtime gives its children an environment of their own, the other libraries and
 * the baselines inherit this one: so that they all start alike, nobody gets it.
 */
function sameEnvironmentForAll() {
  const removed = ['NODE_EXTRA_CA_CERTS'].filter((name) => process.env[name] !== undefined);
  for (const name of removed) delete process.env[name];
  return removed;
}

async function main() {
  const flags = parseArgs(process.argv.slice(2));
  const unset = sameEnvironmentForAll();
  if (unset.length > 0) log(`compare: unset for every child: ${unset.join(', ')} (see sameEnvironmentForAll)`);
  const config = configFor(flags);
  want = (workload) => flags.workloads === undefined || flags.workloads.includes(workload);
  selfTestFrameReader();
  const started = performance.now();
  const loadAtStart = loadText();
  const load1AtStart = os.loadavg()[0];
  const ticksAtStart = cpuTicks();
  if (os.loadavg()[0] > os.cpus().length / 2) log(`compare: warning: load average ${loadAtStart} on ${os.cpus().length} cores; expect noisy numbers`);

  // Say what is missing up front, rather than failing half-way through the run.
  const missing = Object.entries(peerVersions()).filter(([, version]) => version === 'not installed');
  if (missing.length > 0 && !flags.only) {
    console.error(`compare: ${missing.map(([name]) => name).join(', ')} not installed in bench/: run \`npm ci --prefix bench\` first`);
    process.exit(1);
  }
  try {
    await import('@process-sandbox/core');
  } catch (error) {
    console.error(`compare: cannot load @process-sandbox/core (build it first: \`npm run build\`): ${error.message}`);
    process.exit(1);
  }

  const dir = mkdtempSync(join(os.tmpdir(), 'process-sandbox-compare-'));
  let adapters = allAdapters({ dir, onError: fail });
  if (flags.only) {
    const unknown = flags.only.filter((id) => !adapters.some((a) => a.id === id));
    if (unknown.length) {
      console.error(`unknown library: ${unknown.join(', ')}; known: ${adapters.map((a) => a.id).join(', ')}`);
      process.exit(2);
    }
    adapters = adapters.filter((a) => flags.only.includes(a.id));
  }

  /** Every handle not yet closed, for the cleanup. */
  const open = new Set();
  let probe;
  const closeHandle = async (h) => {
    open.delete(h);
    await Promise.race([h.close(), new Promise((resolve) => setTimeout(resolve, 10_000).unref())]);
  };
  const create = async (adapter, options) => {
    const h = await adapter.create(options);
    open.add(h);
    return h;
  };
  let cleaning;
  const cleanup = () =>
    (cleaning ??= (async () => {
      await Promise.all([...open].map((h) => closeHandle(h).catch(() => {})));
      if (probe && probe.exitCode === null && probe.signalCode === null) probe.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    })());
  let abortCode;
  const abort = (why, code) => {
    if (abortCode !== undefined) return;
    abortCode = code;
    log(`\ncompare: ${why}; cleaning up`);
    setTimeout(() => {
      for (const pid of childPids()) process.kill(pid, 'SIGKILL');
      process.exit(code);
    }, 15_000).unref();
    void cleanup().then(() => {
      for (const pid of childPids()) process.kill(pid, 'SIGKILL');
      process.exit(code);
    });
  };
  process.once('SIGINT', () => abort('interrupted', 130));
  process.once('SIGTERM', () => abort('terminated', 143));

  const results = Object.fromEntries(adapters.map((a) => [a.id, {}]));
  const push = (id, key, value) => (results[id][key] ??= []).push(value);
  const info = {}; // per adapter, facts that are not per round (recycle counts, skipped sizes)
  let exitCode = 0;

  try {
    // ── pools of 1 and 2 workers for every library, warmed up; their pids for the CPU figures ──
    const known = new Set(childPids());
    const pools = {};
    for (const a of adapters) {
      if (!applies(a, 'seq') && !applies(a, 'tput1') && !applies(a, 'tput2')) continue;
      pools[a.id] = {};
      for (const workers of [1, 2]) {
        if (a.inProcess && workers === 2) {
          pools[a.id][2] = pools[a.id][1];
          continue;
        }
        const h = await create(a, { workers });
        await sequential(a.id, h, config.seqWarmup);
        await throughput(a.id, h, config.callers, config.tputWarmupMs);
        h.pids = childPids().filter((pid) => !known.has(pid));
        for (const pid of h.pids) known.add(pid);
        pools[a.id][workers] = h;
      }
      log(`ready: ${a.id} (${pools[a.id][1].pids.length} + ${pools[a.id][2].pids.length} worker processes)`);
    }
    const measured = (workload) => adapters.filter((a) => pools[a.id] && applies(a, workload));

    // ── sequential latency ──
    for (let r = 0; want('seq') && r < config.rounds; r++) {
      const samples = {};
      const cpu = {};
      const hostCpu = {};
      for (let b = 0; b < config.seqBlocks; b++) {
        for (const a of rotate(measured('seq'), r + b)) {
          const h = pools[a.id][1];
          await sequential(a.id, h, config.seqSettle);
          const { result, hostNs, childNs } = await withCpu(h.pids, () => sequential(a.id, h, config.seqBlockCalls));
          (samples[a.id] ??= []).push(result);
          cpu[a.id] = (cpu[a.id] ?? 0) + hostNs + childNs;
          hostCpu[a.id] = (hostCpu[a.id] ?? 0) + hostNs;
        }
      }
      for (const id of Object.keys(samples)) {
        const s = summarise(concat(samples[id]));
        push(id, 'seqP50', s.p50);
        push(id, 'seqP99', s.p99);
        push(id, 'seqMean', s.mean);
        // (not for the in-process call: a block of it is over before the scheduler's accounting moves)
        const inProcess = adapters.find((a) => a.id === id)?.inProcess;
        push(id, 'seqCpu', inProcess ? NaN : cpu[id] / 1000 / (config.seqBlocks * config.seqBlockCalls));
        push(id, 'seqHostCpu', inProcess ? NaN : hostCpu[id] / 1000 / (config.seqBlocks * config.seqBlockCalls));
      }
      log(`sequential, round ${r + 1}/${config.rounds}: ${Object.keys(samples).map((id) => `${id} ${results[id].seqP50.at(-1).toFixed(1)}/${results[id].seqP99.at(-1).toFixed(0)}`).join(', ')} µs (p50/p99)`);
    }

    // ── throughput, 1 and 2 workers ──
    for (const workers of [1, 2]) {
      const key = `tput${workers}`;
      for (let r = 0; want('tput') && r < config.rounds; r++) {
        for (const a of rotate(measured(key), r)) {
          const h = pools[a.id][workers];
          if (config.tputSettleMs) await throughput(a.id, h, config.callers, config.tputSettleMs);
          const { result, hostNs, childNs } = await withCpu(h.pids, () => throughput(a.id, h, config.callers, config.tputBlockMs));
          push(a.id, key, result.callsPerSecond);
          push(a.id, `${key}Cpu`, (hostNs + childNs) / 1000 / result.completed);
          push(a.id, `${key}HostCpu`, hostNs / 1000 / result.completed);
        }
        log(`throughput, ${workers} worker(s), round ${r + 1}/${config.rounds}: ${measured(key).map((a) => `${a.id} ${Math.round(results[a.id][key].at(-1))}`).join(', ')} calls/s`);
      }
    }

    // ── Buffers: pools of one worker; libraries that can be told to use advanced serialization too ──
    const bufferSides = [];
    for (const a of adapters) {
      if (!applies(a, 'buffers') || !want('buffers')) continue;
      bufferSides.push({ adapter: a, key: a.id, h: pools[a.id]?.[1] });
      if (a.advanced) {
        const variant = { ...a, id: `${a.id} (advanced)`, json: false, variantOf: a.id, serialization: 'advanced' };
        results[variant.id] = {};
        bufferSides.push({ adapter: variant, key: variant.id });
      }
    }
    for (const side of bufferSides) {
      side.h ??= await create(side.adapter, { workers: 1, serialization: side.adapter.serialization });
      info[side.key] ??= {};
    }
    const payloads = Object.fromEntries((bufferSides.length ? SIZES : []).map((n) => [n, Buffer.from(Array.from({ length: n }, (_, i) => (i * 2654435761) >>> 24))]));
    for (const size of bufferSides.length ? SIZES : []) {
      const payload = payloads[size];
      let active = bufferSides.filter((s) => !info[s.key].skipFrom || info[s.key].skipFrom > size);
      // Never start a round trip expected to take longer than bufferMaxEstimateMs (time scaled by bytes from the size before).
      const previousSize = SIZES[SIZES.indexOf(size) - 1];
      for (const side of active) {
        const previous = info[side.key].lastMsPerCall;
        const estimate = previous === undefined ? 0 : (previous * size) / previousSize;
        if (estimate > config.bufferMaxEstimateMs) {
          info[side.key].skipFrom = size;
          info[side.key].skipWhy = `${sizeName(size)} not run: ${sizeName(previousSize)} took ${fmt.ms(previous)} ms a round trip (slowest round), so ${sizeName(size)} would take ~${(estimate / 1000).toFixed(1)} s`;
          log(`buffers: ${side.key}: ${info[side.key].skipWhy}`);
        }
      }
      active = active.filter((s) => !info[s.key].skipFrom || info[s.key].skipFrom > size);
      if (config.bufferWarmup) for (const side of active) await bufferRoundTrips(side.adapter, side.h, payload, 0, 1);
      for (let r = 0; r < config.bufferRounds; r++) {
        for (const side of rotate(active, r)) {
          const result = await bufferRoundTrips(side.adapter, side.h, payload, config.bufferBlockMs, config.bufferMaxCalls);
          push(side.key, `buf${size}`, result.mbps);
        }
      }
      for (const side of active) info[side.key].lastMsPerCall = Math.max(...results[side.key][`buf${size}`].map((mbps) => size / (mbps * 1e3)));
      log(`buffers, ${sizeName(size)}: ${active.map((s) => `${s.key} ${Math.round(spread(results[s.key][`buf${size}`]).median)}`).join(', ')} MB/s`);
    }

    // Baseline children's own counts, and the library's, before the pools close.
    for (const h of open) if (h.verify) for (const message of await h.verify()) fail(message);
    for (const h of [...open]) await closeHandle(h);
    await childrenGone(5000);

    // ── cold start: create() to the first result, one worker ──
    const coldSides = adapters.filter((a) => applies(a, 'cold') && !a.variantOf);
    for (let r = 0; want('cold') && r < config.rounds; r++) {
      for (const a of rotate(coldSides, r)) {
        const x = nextValue++;
        const t0 = performance.now();
        const h = await create(a, { workers: 1 });
        const v = await h.call('echo', x);
        const ms = performance.now() - t0;
        if (v !== x) fail(`${a.id}: first echo(${x}) returned ${String(v)}`);
        push(a.id, 'cold', ms);
        await closeHandle(h);
        await childrenGone(5000);
      }
      log(`cold start, round ${r + 1}/${config.rounds}: ${coldSides.map((a) => `${a.id} ${results[a.id].cold.at(-1).toFixed(0)}`).join(', ')} ms`);
    }

    // ── throughput with a recycle every 100 calls ──
    const recycleSides = want('recycle') ? adapters.filter((a) => a.recycle) : [];
    const perPid = {};
    const recycleHandles = {};
    for (const a of recycleSides) {
      recycleHandles[a.id] = await create(a, { workers: 2, recycle: config.recycle });
      perPid[a.id] = new Map();
      if (config.recycleWarmupMs) await throughput(a.id, recycleHandles[a.id], config.callers, config.recycleWarmupMs, perPid[a.id]);
    }
    for (let r = 0; recycleSides.length && r < config.recycleRounds; r++) {
      for (const a of rotate(recycleSides, r)) {
        const result = await throughput(a.id, recycleHandles[a.id], config.callers, config.recycleBlockMs, perPid[a.id]);
        push(a.id, 'recycle', result.callsPerSecond);
      }
      log(`recycling every ${config.recycle} calls, round ${r + 1}/${config.recycleRounds}: ${recycleSides.map((a) => `${a.id} ${Math.round(results[a.id].recycle.at(-1))}`).join(', ')} calls/s`);
    }
    for (const a of recycleSides) {
      const counts = [...perPid[a.id].values()];
      info[a.id] ??= {};
      info[a.id].recycle = { workers: counts.length, maxCalls: Math.max(...counts), calls: counts.reduce((x, y) => x + y, 0) };
      const h = recycleHandles[a.id];
      if (h.verify) for (const message of await h.verify()) fail(message);
      await closeHandle(h);
    }
    await childrenGone(5000);

    // ── latency during steady recycling: one caller, a call every spikeGapMs, a retirement every spikeEvery calls ──
    const spikeSides = want('spike') ? adapters.filter((a) => a.recycle) : [];
    for (let r = 0; spikeSides.length && r < config.recycleRounds; r++) {
      for (const a of rotate(spikeSides, r)) {
        const h = await create(a, { workers: 1, recycle: config.spikeEvery });
        // Past the first retirement, then at the measured pace for four more, unmeasured: steady
        // recycling is what is measured, not the aftermath of the burst (ten calls back to back
        // retire two workers within milliseconds, faster than any pool's spares start).
        await sequential(a.id, h, config.spikeEvery * 2);
        for (let i = 0; i < config.spikeEvery * 4; i++) {
          await new Promise((resolve) => setTimeout(resolve, config.spikeGapMs));
          await h.call('echo', nextValue++);
        }
        const latencies = new Float64Array(config.spikeCalls);
        for (let i = 0; i < config.spikeCalls; i++) {
          await new Promise((resolve) => setTimeout(resolve, config.spikeGapMs));
          const x = nextValue++;
          const t0 = performance.now();
          const v = await h.call('echo', x);
          latencies[i] = (performance.now() - t0) * 1000;
          if (v !== x) fail(`${a.id}: echo(${x}) returned ${String(v)}`);
        }
        const s = summarise(latencies);
        push(a.id, 'spikeP50', s.p50);
        push(a.id, 'spikeP99', s.p99);
        push(a.id, 'spikeRatio', s.p99 / s.p50);
        if (h.verify) for (const message of await h.verify()) fail(message);
        await closeHandle(h);
        await childrenGone(5000);
      }
      log(`recycling spike, round ${r + 1}/${config.recycleRounds}: ${spikeSides.map((a) => `${a.id} ${results[a.id].spikeP50.at(-1).toFixed(0)}/${results[a.id].spikeP99.at(-1).toFixed(0)}`).join(', ')} µs (p50/p99)`);
    }

    // ── host RSS after 10^4 … 10^6 calls, in a host process of its own ──
    // The raw socket baseline too: what Node itself does under the same load, as a floor.
    const rss = {};
    for (const id of ['process-sandbox', 'raw socket ping-pong']) {
      if (!adapters.some((a) => a.id === id) || !want('rss')) continue;
      rss[id] = await rssProbe(id, config.rssCheckpoints, config.callers, (p) => (probe = p));
      log(`host RSS, ${id}: ${rss[id].points.map((p) => `${p.calls.toLocaleString('en-US')} calls ${(p.rss / MiB).toFixed(1)} MiB`).join(', ')}`);
    }

    // ── streams and callbacks (process-sandbox only), and the host's RSS under a slow consumer ──
    let streamRss;
    if (want('streams') && adapters.some((a) => a.id === 'process-sandbox')) {
      await measureStreams({ rounds: config.rounds, items: config.streamItems, roundTrips: config.callbackTrips, fail, push: (key, value) => push('process-sandbox', key, value), log });
      const r = results['process-sandbox'];
      log(`streams: ${fmt.cps(spread(r.streamItems).median)} items/s; callbacks ${fmt.cps(spread(r.callbackTrips).median)} round trips/s, plain calls ${fmt.cps(spread(r.plainCalls).median)}/s`);
      streamRss = await slowConsumerRss(config.streamRssCheckpoints, (p) => (probe = p));
      log(`host RSS, slow consumer: ${streamRss.points.map((p) => `${p.items.toLocaleString('en-US')} items ${(p.rss / MiB).toFixed(1)} MiB`).join(', ')}`);
    }

    // Every child has been reaped by now (the pools are closed), so this process's own CPU and its
    // children's are known: what else the machine did meanwhile is other work.
    await childrenGone(5000);
    const other = otherWork(ticksAtStart, cpuTicks());
    const run = {
      flags,
      config,
      seconds: (performance.now() - started) / 1000,
      machine: { ...machineInfo(), loadAtStart, loadAtEnd: loadText(), unset },
      command: ['node', 'bench/compare.mjs', ...process.argv.slice(2)].join(' '),
      versions: peerVersions(),
      date: new Date().toISOString(),
    };
    run.machine.otherWork = other;
    run.machine.busy = other === undefined ? load1AtStart > os.cpus().length / 2 : other > 0.25;
    const report = analyse(adapters, bufferSides, results, info, rss, run, streamRss);
    console.log(`\n${report.text}`);
    if (flags.json) console.log(JSON.stringify({ run, results, info, rss, streamRss }, null, 2));
    if (failures.length) {
      exitCode = 1;
      console.error(`\ncompare: ${failures.length} check(s) failed:\n  ${failures.slice(0, 20).join('\n  ')}`);
    } else if (flags.write) {
      const docs = fileURLToPath(new URL('../docs/benchmarks.md', import.meta.url));
      const svg = fileURLToPath(new URL('../docs/benchmarks.svg', import.meta.url));
      writeSection(docs, 'compare', report.markdown);
      writeFileSync(svg, report.svg);
      console.log(`wrote ${docs} and ${svg}`);
    }
    if (other !== undefined) console.log(`compare: other work on the machine during the run: ${(other * 100).toFixed(0)} % of one core on average`);
    console.log(`\ncompare: ${failures.length === 0 ? 'every result checked and correct' : 'FAILED'}; ${run.seconds.toFixed(1)} s`);
  } catch (error) {
    exitCode = 1;
    if (abortCode === undefined) console.error(error);
  } finally {
    await cleanup();
  }
  if (abortCode !== undefined) exitCode = abortCode;

  // Nothing this script started may outlive it.
  const left = await childrenGone(5000);
  if (left.length > 0) {
    console.error(`compare: ${left.length} child process(es) still alive after cleanup (${left.join(', ')}); killing them`);
    for (const pid of left) process.kill(pid, 'SIGKILL');
    exitCode = 1;
  }
  process.exit(exitCode);
}

/** Waits until this process has no live children (at most `ms`); the pids of those left. */
async function childrenGone(ms) {
  const deadline = performance.now() + ms;
  for (;;) {
    const left = childPids().filter(isAlive);
    if (left.length === 0 || performance.now() > deadline) return left;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

function peerVersions() {
  const out = {};
  for (const name of ['workerpool', 'jest-worker', 'worker-farm', 'worker-nodes', 'tinypool']) {
    try {
      out[name] = JSON.parse(readFileSync(new URL(`./node_modules/${name}/package.json`, import.meta.url), 'utf8')).version;
    } catch {
      out[name] = 'not installed';
    }
  }
  return out;
}

// ─── the RSS probe (a host process of its own) ───────────────────────────────

function rssProbe(id, checkpoints, callers, onStart) {
  return new Promise((resolve, reject) => {
    const child = fork(fileURLToPath(import.meta.url), [RSS_PROBE, id, checkpoints.join(','), String(callers)], {
      execArgv: ['--expose-gc'],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    onStart(child);
    let result;
    child.on('message', (message) => (result = message));
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      onStart(undefined);
      if (code === 0 && result && result.failures.length === 0) resolve(result);
      else {
        for (const f of result?.failures ?? []) fail(`rss probe (${id}): ${f}`);
        reject(new Error(`rss probe (${id}) exited (${signal ?? code})${result ? '' : ' without a result'}`));
      }
    });
  });
}

/** Memory of this process: process.memoryUsage() and the sizes of V8's heap spaces, in bytes. */
function memory() {
  const m = process.memoryUsage();
  const spaces = Object.fromEntries(v8.getHeapSpaceStatistics().map((s) => [s.space_name, s.space_size]));
  return { rss: m.rss, heapTotal: m.heapTotal, heapUsed: m.heapUsed, external: m.external, arrayBuffers: m.arrayBuffers, newSpace: spaces.new_space, oldSpace: spaces.old_space, codeSpace: spaces.code_space };
}

/** In the probe process: a pool of 2 workers, `callers` concurrent callers, memory at each checkpoint. */
async function runRssProbe(id, checkpoints, callers) {
  const dir = mkdtempSync(join(os.tmpdir(), 'process-sandbox-rss-'));
  const problems = [];
  const adapter = allAdapters({ dir, onError: (m) => problems.length < 20 && problems.push(m) }).find((a) => a.id === id);
  const h = await adapter.create({ workers: 2 });
  const points = [];
  const t0 = performance.now();
  let issued = 0;
  let value = 1;
  try {
    for (const target of checkpoints) {
      const loop = async () => {
        while (issued < target) {
          issued++;
          const x = value++;
          const v = await h.call('echo', x);
          if (v !== x && problems.length < 20) problems.push(`echo(${x}) returned ${String(v)}`);
        }
      };
      await Promise.all(Array.from({ length: callers }, loop));
      const seconds = (performance.now() - t0) / 1000;
      const before = memory();
      globalThis.gc();
      globalThis.gc();
      points.push({ calls: issued, seconds, ...before, afterGc: memory() });
    }
    problems.push(...((await h.verify?.()) ?? []));
  } finally {
    await h.close();
    rmSync(dir, { recursive: true, force: true });
  }
  process.send({ points, failures: problems }, () => process.exit(0));
}

// ─── analysis and output ─────────────────────────────────────────────────────

const fmt = {
  us: (v) => (v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2)),
  cps: (v) => Math.round(v).toLocaleString('en-US'),
  mbps: (v) => (v >= 100 ? Math.round(v).toLocaleString('en-US') : v.toFixed(1)),
  ms: (v) => (v >= 100 ? v.toFixed(0) : v.toFixed(1)),
  x: (v) => `${v >= 10 ? v.toFixed(1) : v.toFixed(2)}x`,
  pct: (v) => `${v >= 0 ? '+' : ''}${v.toFixed(1)} %`,
  mib: (v) => `${(v / MiB).toFixed(1)}`,
};
/** RSS growth from the first to the last checkpoint, in %, as read and after gc(). */
function growthOf(points) {
  const first = points[0];
  const last = points.at(-1);
  const pct = (a, b) => ((b - a) / a) * 100;
  return { first, last, rss: pct(first.rss, last.rss), rssGc: pct(first.afterGc.rss, last.afterGc.rss) };
}

const cell = (s, f) => (s === undefined ? 'n/a' : s.min === s.max ? f(s.median) : `${f(s.median)} (${f(s.min)}–${f(s.max)})`);

/** Per-round ratios of process-sandbox to a reference (a side, or the best of several sides in that round). */
function ratio(results, metric, refs, lowerIsBetter) {
  const lib = results['process-sandbox']?.[metric];
  if (!lib || refs.length === 0) return undefined;
  const values = lib.map((v, r) => {
    const candidates = refs.map((id) => results[id]?.[metric]?.[r]).filter((x) => typeof x === 'number' && Number.isFinite(x));
    if (candidates.length === 0) return NaN;
    return v / (lowerIsBetter ? Math.min(...candidates) : Math.max(...candidates));
  });
  return spread(values);
}

/** The side with the best median of `metric` among `ids`. */
function best(results, metric, ids, lowerIsBetter) {
  let winner;
  for (const id of ids) {
    const s = spread(results[id]?.[metric] ?? []);
    if (s && (winner === undefined || (lowerIsBetter ? s.median < winner.s.median : s.median > winner.s.median))) winner = { id, s };
  }
  return winner;
}

function analyse(adapters, bufferSides, results, info, rss, run, streamRss) {
  const S = (id, metric) => spread(results[id]?.[metric] ?? []);
  const has = (id) => adapters.some((a) => a.id === id);
  const LIB = 'process-sandbox';
  const FLOOR = 'raw socket ping-pong';
  const DETACHED = 'raw socket (detached)';
  const NODE_FLOOR = 'node -e + connect (floor)';
  const peers = adapters.filter((a) => a.group === 'peer').map((a) => a.id);
  const oneAtATimePeers = adapters.filter((a) => a.group === 'peer' && a.oneAtATime).map((a) => a.id);
  const bufferPeers = bufferSides.filter((s) => s.adapter.group === 'peer').map((s) => s.key);
  const bufferFloor = bufferSides.filter((s) => s.adapter.group === 'baseline').map((s) => s.key);

  const metrics = [
    { key: 'seqP50', label: 'Sequential echo, p50 (µs)', f: fmt.us, lower: true, peers },
    { key: 'seqP50', label: 'Sequential echo, p50: against the raw socket with detached children', f: fmt.us, lower: true, peers, floors: [DETACHED], only: 'floor' },
    { key: 'seqP99', label: 'Sequential echo, p99 (µs)', f: fmt.us, lower: true, peers },
    { key: 'seqMean', label: 'Sequential echo, mean (µs)', f: fmt.us, lower: true, peers },
    { key: 'seqMean', label: 'Sequential echo, mean: against the raw socket with detached children', f: fmt.us, lower: true, peers, floors: [DETACHED], only: 'floor' },
    { key: 'seqCpu', label: 'Sequential, CPU per call, host + worker (µs)', f: fmt.us, lower: true, peers },
    { key: 'seqHostCpu', label: 'Sequential, CPU per call, host only (µs)', f: fmt.us, lower: true, peers },
    { key: 'tput1', label: 'Throughput, 1 worker, 64 callers (calls/s)', f: fmt.cps, lower: false, peers },
    { key: 'tput2', label: 'Throughput, 2 workers, 64 callers (calls/s)', f: fmt.cps, lower: false, peers },
    { key: 'tput2', label: 'Throughput, 2 workers: against peers running one call at a time per worker', f: fmt.cps, lower: false, peers: oneAtATimePeers, only: 'peer' },
    { key: 'tput2', label: 'Throughput, 2 workers: against the raw socket with detached children', f: fmt.cps, lower: false, peers, floors: [DETACHED], only: 'floor' },
    { key: 'tput2Cpu', label: 'Throughput, 2 workers, CPU per call, host + workers (µs)', f: fmt.us, lower: true, peers },
    { key: 'tput2HostCpu', label: 'Throughput, 2 workers, CPU per call, host only (µs)', f: fmt.us, lower: true, peers },
    ...SIZES.map((n) => ({ key: `buf${n}`, label: `${sizeName(n)} Buffer round trip (MB/s)`, f: fmt.mbps, lower: false, peers: bufferPeers, floors: bufferFloor })),
    { key: 'cold', label: 'Cold start, create() to first result (ms)', f: fmt.ms, lower: true, peers, floors: [NODE_FLOOR] },
    { key: 'recycle', label: 'Throughput, 2 workers, recycled every 100 calls (calls/s)', f: fmt.cps, lower: false, peers: adapters.filter((a) => a.group === 'peer' && a.recycle).map((a) => a.id), noFloor: true },
  ];

  // process-sandbox against the floor and the best peer
  const ratioRows = [];
  if (has(LIB)) {
    for (const m of metrics) {
      const lib = S(LIB, m.key);
      if (!lib) continue;
      const floorIds = m.floors ?? [FLOOR];
      const floorBest = m.noFloor ? undefined : best(results, m.key, floorIds, m.lower);
      const peerBest = best(results, m.key, m.peers, m.lower);
      const noFloor = m.only === 'peer';
      const noPeer = m.only === 'floor';
      ratioRows.push({
        label: m.label,
        lib: cell(lib, m.f),
        floor: noFloor ? '' : floorBest ? `${cell(floorBest.s, m.f)}${floorIds.length > 1 || floorBest.id !== FLOOR ? ` (${floorBest.id})` : ''}` : 'n/a',
        floorRatio: noFloor ? '' : floorBest ? cell(ratio(results, m.key, [floorBest.id], m.lower), fmt.x) : 'n/a',
        peer: noPeer ? '' : peerBest ? `${cell(peerBest.s, m.f)} (${peerBest.id})` : 'n/a',
        peerRatio: noPeer ? '' : peerBest ? cell(ratio(results, m.key, m.peers, m.lower), fmt.x) : 'n/a',
        m,
      });
    }
  }

  // targets
  const targets = [];
  if (has(LIB)) {
    const seqFloor = ratio(results, 'seqP50', [FLOOR], true);
    const seqFloorMean = ratio(results, 'seqMean', [FLOOR], true);
    const seqDetached = ratio(results, 'seqP50', [DETACHED], true);
    targets.push({
      target: 'Sequential call ≤ 1.1× the raw socket ping-pong',
      measured: seqFloor
        ? `p50 ${fmt.x(seqFloor.median)} (${fmt.x(seqFloor.min)}–${fmt.x(seqFloor.max)}); mean ${seqFloorMean ? fmt.x(seqFloorMean.median) : 'n/a'}` +
          (seqDetached ? `; against raw children started detached, like the library's workers: p50 ${fmt.x(seqDetached.median)} (${fmt.x(seqDetached.min)}–${fmt.x(seqDetached.max)})` : '')
        : 'n/a',
      met: seqFloor ? seqFloor.median <= 1.1 : undefined,
      rounds: seqFloor?.values.map((v) => v <= 1.1),
    });
    const seqPeer = ratio(results, 'seqP50', peers, true);
    const seqBest = best(results, 'seqP50', peers, true);
    targets.push({
      target: 'Sequential call no slower than the best peer',
      measured: seqPeer ? `p50 ${fmt.x(seqPeer.median)} (${fmt.x(seqPeer.min)}–${fmt.x(seqPeer.max)}) the best peer's (${seqBest.id}, ${fmt.us(seqBest.s.median)} µs)` : 'n/a',
      met: seqPeer ? seqPeer.median <= 1 : undefined,
      rounds: seqPeer?.values.map((v) => v <= 1),
    });
    const tput = ratio(results, 'tput2', oneAtATimePeers, false);
    const tputBest = best(results, 'tput2', oneAtATimePeers, false);
    targets.push({
      target: 'Throughput with 2 workers ≥ 2× the best peer that runs one call at a time per worker',
      measured: tput ? `${fmt.x(tput.median)} (${fmt.x(tput.min)}–${fmt.x(tput.max)}) the best such peer's (${tputBest.id}, ${fmt.cps(tputBest.s.median)} calls/s)` : 'n/a',
      met: tput ? tput.median >= 2 : undefined,
      rounds: tput?.values.map((v) => v >= 2),
    });
    const mib = S(LIB, `buf${MiB}`);
    targets.push({
      target: '1 MiB round trip ≥ 1 GB/s',
      measured: mib ? `${cell(mib, fmt.mbps)} MB/s` : 'n/a',
      met: mib ? mib.median >= 1000 : undefined,
      rounds: mib?.values.map((v) => v >= 1000),
    });
    const spike = S(LIB, 'spikeRatio');
    if (spike) {
      targets.push({
        target: 'Recycling spike: p99 of calls during steady recycling ≤ 3× their median',
        measured: `p99 ${fmt.x(spike.median)} (${fmt.x(spike.min)}–${fmt.x(spike.max)}) the median (p50 ${cell(S(LIB, 'spikeP50'), fmt.us)} µs, p99 ${cell(S(LIB, 'spikeP99'), fmt.us)} µs)`,
        met: spike.median <= 3,
        rounds: results[LIB].spikeRatio.map((v) => v <= 3),
      });
    }
    const cold = ratio(results, 'cold', peers, true);
    const coldFloor = ratio(results, 'cold', [NODE_FLOOR], true);
    const coldBest = best(results, 'cold', peers, true);
    if (cold && coldFloor) {
      const meets = (r) => cold.values[r] <= 1 && coldFloor.values[r] <= 1.3;
      targets.push({
        target: 'Cold start ≤ 1.0× the fastest peer and ≤ 1.3× `node -e` + connect',
        measured: `${fmt.x(cold.median)} (${fmt.x(cold.min)}–${fmt.x(cold.max)}) the fastest peer's in each round (over all rounds ${coldBest.id}, ${fmt.ms(coldBest.s.median)} ms); ${fmt.x(coldFloor.median)} (${fmt.x(coldFloor.min)}–${fmt.x(coldFloor.max)}) the floor's`,
        met: cold.median <= 1 && coldFloor.median <= 1.3,
        rounds: cold.values.map((_, r) => meets(r)),
      });
    }
    const probe = rss[LIB];
    if (probe) {
      const g = growthOf(probe.points);
      const floor = rss[FLOOR] ? growthOf(rss[FLOOR].points) : undefined;
      targets.push({
        target: `Host RSS growth < 5 % from ${g.first.calls.toLocaleString('en-US')} to ${g.last.calls.toLocaleString('en-US')} calls`,
        measured:
          `${fmt.pct(g.rss)} (${fmt.mib(g.first.rss)} → ${fmt.mib(g.last.rss)} MiB; after gc(): ${fmt.pct(g.rssGc)}; ` +
          `heap used after gc(): ${fmt.mib(g.first.afterGc.heapUsed)} → ${fmt.mib(g.last.afterGc.heapUsed)} MiB)` +
          (floor ? `; the raw socket baseline under the same load: ${fmt.pct(floor.rss)}` : ''),
        met: g.rss < 5,
      });
    }
  }
  // streams and callbacks (issue 17)
  const streams = S(LIB, 'streamItems');
  if (streams) {
    // Against the raw socket's pipelined calls of the same round, when the run measured them.
    const floorRounds = results[FLOOR]?.tput1;
    const perRound = floorRounds ? spread(results[LIB].streamItems.map((v, r) => v / floorRounds[r]).filter(Number.isFinite)) : undefined;
    targets.push({
      target: 'Streamed small items per second ≥ 0.5× the raw socket pipelined rate (1 worker)',
      measured: `${cell(streams, fmt.cps)} items/s${perRound ? `; ${cell(perRound, fmt.x)} the raw socket ping-pong with 64 callers (${cell(S(FLOOR, 'tput1'), fmt.cps)} calls/s)` : ' (the raw socket was not measured in this run)'}`,
      met: perRound ? perRound.median >= 0.5 : undefined,
      rounds: perRound?.values.map((v) => v >= 0.5),
    });
    const trips = spread(results[LIB].callbackTrips.map((v, r) => v / results[LIB].plainCalls[r]));
    targets.push({
      target: 'A callback round trip costs no more than 2 plain calls (≥ 0.5× their rate)',
      measured: `${cell(S(LIB, 'callbackTrips'), fmt.cps)} callback round trips/s against ${cell(S(LIB, 'plainCalls'), fmt.cps)} sequential calls/s: ${cell(trips, fmt.x)}`,
      met: trips.median >= 0.5,
      rounds: trips.values.map((v) => v >= 0.5),
    });
  }
  if (streamRss) {
    const [first, last] = [streamRss.points[0], streamRss.points.at(-1)];
    const growth = ((last.rssGc - first.rssGc) / first.rssGc) * 100;
    targets.push({
      target: `Host RSS flat while a slow consumer reads ${last.items.toLocaleString('en-US')} items (< 5 % growth from ${first.items.toLocaleString('en-US')})`,
      measured: `${fmt.pct(growth)} after gc() (${fmt.mib(first.rssGc)} → ${fmt.mib(last.rssGc)} MiB; as read ${fmt.mib(first.rss)} → ${fmt.mib(last.rss)} MiB); at most ${last.maxBuffered} items buffered in the host`,
      met: growth < 5,
    });
  }

  /** Met or not by the median of the rounds, and in how many rounds when they disagree. */
  const status = ({ met, rounds }) => {
    if (met === undefined) return 'n/a';
    const word = met ? '**met**' : '**not met**';
    const k = rounds?.filter(Boolean).length;
    if (!rounds || k === 0 || k === rounds.length) return word;
    return `${word} by the median; met in ${k} of ${rounds.length} rounds`;
  };

  // tables of every side
  const label = (id) => (id === LIB ? `**${id}**` : id);
  const mainRows = adapters
    .filter((a) => ['seq', 'tput1', 'tput2'].some((w) => applies(a, w)))
    .map((a) => [label(a.id), cell(S(a.id, 'seqP50'), fmt.us), cell(S(a.id, 'seqP99'), fmt.us), cell(S(a.id, 'seqMean'), fmt.us), cell(S(a.id, 'seqCpu'), fmt.us), cell(S(a.id, 'tput1'), fmt.cps), cell(S(a.id, 'tput2'), fmt.cps), cell(S(a.id, 'tput2Cpu'), fmt.us)]);
  const mainHeader = ['Library', 'Seq. p50 (µs)', 'Seq. p99 (µs)', 'Seq. mean (µs)', 'Seq. CPU/call (µs)', 'Tput, 1 worker (calls/s)', 'Tput, 2 workers (calls/s)', 'Tput 2w CPU/call (µs)'];

  const bufferRows = bufferSides.map(({ adapter, key }) => [
    label(key),
    ...SIZES.map((n) => {
      const s = S(key, `buf${n}`);
      if (s) return cell(s, fmt.mbps);
      return info[key]?.skipFrom && info[key].skipFrom <= n ? 'not run¹' : 'n/a';
    }),
    adapter.serialization === 'advanced' ? "fork IPC with serialization: 'advanced' (V8 serializer): Buffer in, Buffer or Uint8Array out" : adapter.buffers,
  ]);
  const bufferHeader = ['Library', ...SIZES.map((n) => `${sizeName(n)} (MB/s)`), 'How a Buffer crosses'];
  const skipped = bufferSides.filter((s) => info[s.key]?.skipWhy).map((s) => `${s.key}: ${info[s.key].skipWhy}`);

  const coldRows = adapters
    .filter((a) => applies(a, 'cold') && !a.variantOf)
    .map((a) => {
      const rec = info[a.id]?.recycle;
      return [
        label(a.id),
        cell(S(a.id, 'cold'), fmt.ms),
        a.recycle ? cell(S(a.id, 'recycle'), fmt.cps) : 'n/a',
        a.recycle ? (rec ? `${rec.workers} / ${rec.maxCalls}` : '') : '',
        a.recycle ? a.recycle : `n/a: ${a.noRecycle}`,
      ];
    });
  const coldHeader = ['Library', 'Cold start (ms)', 'Tput, recycled every 100 calls (calls/s)', 'Workers seen / most calls one served', 'How'];
  const spikeRows = adapters
    .filter((a) => S(a.id, 'spikeRatio'))
    .map((a) => [label(a.id), cell(S(a.id, 'spikeP50'), fmt.us), cell(S(a.id, 'spikeP99'), fmt.us), cell(S(a.id, 'spikeRatio'), fmt.x)]);
  const spikeHeader = ['Library', 'Recycling: p50 (µs)', 'p99 (µs)', 'p99 / p50'];

  const md = (header, rows, align) => [`| ${header.join(' | ')} |`, `|${header.map((_, i) => (align?.[i] ?? (i === 0 ? '---' : '---:'))).join('|')}|`, ...rows.map((r) => `| ${r.join(' | ')} |`)].join('\n');

  const ratioTable = md(
    ['Measurement', 'process-sandbox', 'raw floor', 'process-sandbox / floor', 'best peer', 'process-sandbox / best peer'],
    ratioRows.map((r) => [r.label, r.lib, r.floor, r.floorRatio, r.peer, r.peerRatio]),
  );
  const targetTable = md(
    ['Target', 'Measured (median of rounds, min–max)', 'Status'],
    targets.map((t) => [t.target, t.measured, status(t)]),
    ['---', '---', '---'],
  );
  const rssHeader = ['Host', 'Calls', 'Time (s)', 'RSS (MiB)', 'V8 heap total (MiB)', 'of which new space (MiB)', 'Heap used (MiB)', 'RSS after gc() (MiB)', 'Heap used after gc() (MiB)'];
  const rssRows = Object.entries(rss).flatMap(([id, r]) =>
    r.points.map((p) => [label(id), p.calls.toLocaleString('en-US'), p.seconds.toFixed(1), fmt.mib(p.rss), fmt.mib(p.heapTotal), fmt.mib(p.newSpace), fmt.mib(p.heapUsed), fmt.mib(p.afterGc.rss), fmt.mib(p.afterGc.heapUsed)]),
  );
  const rssGrowth = Object.entries(rss).map(([id, r]) => {
    const g = growthOf(r.points);
    const tail = r.points.length > 2 ? growthOf(r.points.slice(-2)) : undefined;
    return `${id}: ${fmt.pct(g.rss)} from ${g.first.calls.toLocaleString('en-US')} to ${g.last.calls.toLocaleString('en-US')} calls (after gc(): ${fmt.pct(g.rssGc)})${tail ? `; ${fmt.pct(tail.rss)} from ${tail.first.calls.toLocaleString('en-US')} to ${tail.last.calls.toLocaleString('en-US')}` : ''}`;
  });
  const rssTable = rssRows.length ? md(rssHeader, rssRows) : '';

  // console
  const plain = (header, rows) => {
    const strip = (s) => String(s).replace(/\*\*/g, '');
    const all = [header, ...rows].map((r) => r.map(strip));
    const widths = header.map((_, i) => Math.max(...all.map((r) => r[i].length)));
    return all.map((r, k) => r.map((c, i) => (i === 0 || k === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ')).join('\n');
  };
  const text = [
    plain(mainHeader, mainRows),
    '',
    plain(bufferHeader.slice(0, -1), bufferRows.map((r) => r.slice(0, -1))),
    ...(skipped.length ? ['', ...skipped.map((s) => `¹ ${s}`)] : []),
    '',
    plain(coldHeader.slice(0, -1), coldRows.map((r) => r.slice(0, -1))),
    ...(spikeRows.length ? ['', plain(spikeHeader, spikeRows)] : []),
    ...(rssRows.length ? ['', plain(rssHeader, rssRows), ...rssGrowth.map((g) => `growth, ${g}`)] : []),
    '',
    plain(['Measurement', 'process-sandbox', 'raw floor', 'lib / floor', 'best peer', 'lib / best peer'], ratioRows.map((r) => [r.label, r.lib, r.floor, r.floorRatio, r.peer, r.peerRatio])),
    '',
    ...targets.map((t) => `${t.met === undefined ? 'n/a ' : t.met ? 'MET ' : 'MISS'}  ${t.target}: ${t.measured} [${status(t).replace(/\*\*/g, '')}]`),
  ].join('\n');

  // chart
  const chartRows = (metric, filter = (a) => !a.variantOf) =>
    adapters
      .filter(filter)
      .map((a) => ({ label: a.id, group: a.group, ...(S(a.id, metric) ?? {}) }))
      .filter((r) => r.median !== undefined);
  const inProcessTput = S('in-process call', 'tput2');
  const svg = barChart({
    title: 'process-sandbox and the other Node process pools: one run, one machine',
    subtitle: `${run.machine.cpu}, ${run.machine.cores} cores, Node ${run.machine.node} · ${run.date.slice(0, 10)} · ${run.command}`,
    panels: [
      { title: 'Sequential echo latency, p50 (µs), one worker', better: 'lower', format: fmt.us, rows: chartRows('seqP50') },
      {
        title: 'Throughput, 2 workers, 64 concurrent callers (calls/s)',
        better: 'higher',
        format: (v) => (v >= 1000 ? `${(v / 1000).toFixed(v >= 10_000 ? 0 : 1)}k` : v.toFixed(0)),
        note: `worker-farm keeps up to 10 calls in flight per worker by default${inProcessTput ? `; in-process call not drawn (${fmt.cps(inProcessTput.median)} calls/s, off scale)` : ''}`,
        tick: (v) => (v >= 1000 ? `${v / 1000}k` : String(v)),
        rows: chartRows('tput2', (a) => !a.inProcess),
      },
      { title: '1 MiB Buffer round trip (MB/s), one worker', better: 'higher', format: fmt.mbps, note: 'each library as configured by default (see docs/benchmarks.md for advanced serialization)', rows: chartRows(`buf${MiB}`) },
      { title: 'Cold start: create() to the first result (ms)', better: 'lower', format: fmt.ms, rows: chartRows('cold') },
    ],
  });

  const m = run.machine;
  const c = run.config;
  const markdown = `## Process pools compared (bench/compare.mjs)

process-sandbox, five other Node process pools and three baselines, measured by one script in one run
on one machine, with the same workloads: an echo service whose every result is checked.${
    m.busy
      ? `\n\n> **This run shared the machine with other work** (${m.otherWork !== undefined ? `other processes used ${(m.otherWork * 100).toFixed(0)} % of one core on average; ` : ''}load average ${m.loadAtStart} at the start, on ${m.cores} cores):\n> absolute figures are pessimistic and spreads wide; the per-round ratios are the figures to compare.`
      : ''
  }

![Bars: sequential latency, throughput with 2 workers, 1 MiB round trip and cold start per library](benchmarks.svg)

### Targets (issue 7)

${targetTable}

### process-sandbox against the raw floor and the best peer

${ratioTable}

Ratios are computed per round (all libraries take turns within every round) and then summarised:
median (min–max) across rounds. For latency, CPU and cold start, a ratio above 1 is the library's
cost; for throughput and MB/s, a ratio below 1 is. The raw floor is the Unix-socket MessagePack
ping-pong (the library's framing without the library); for Buffers it is the raw baseline with the
best median (named), and for recycling there is none. "Best peer" is the best of the five peer
libraries in each round (for Buffers including their advanced-serialization variants; for recycling,
those that can recycle by call count).

### Latency and throughput

${md(mainHeader, mainRows)}

Each cell: median over ${c.rounds} rounds (min–max). CPU per call is the CPU time of this process and
the pool's worker processes (every thread, from \`/proc/<pid>/task/*/schedstat\`) over the measured
block, divided by the calls made; the host's share includes the benchmark loop itself, equally for all.

### Buffer round trips

${md(bufferHeader, bufferRows, ['---', '---:', '---:', '---:', '---:', '---'])}
${skipped.length ? `\n${skipped.map((s) => `¹ ${s}.`).join('\n')}\n` : ''}
MB/s: Buffer bytes (10^6 per MB) divided by the round-trip time, counting the payload once although it
crosses twice (there and back), so a 1 MiB round trip at 1 GB/s takes 1.05 ms. Timed from the call to
a Buffer in hand on the host: where a library hands back JSON, rebuilding the Buffer is inside the
timing. Every round trip's bytes are compared with what was sent (untimed). Median over
${c.bufferRounds} rounds of ${c.bufferBlockMs} ms (at least one round trip each).

### Cold start and recycling

${md(coldHeader, coldRows, ['---', '---:', '---:', '---:', '---'])}

Cold start: from the pool's constructor (or \`create()\`) to the first echo result, one worker, then the
pool is closed and every child gone before the next library starts; median over ${c.rounds} rounds.
The floor, \`node -e\` + connect, is a child that loads nothing but Node itself, connects to a Unix
socket and echoes one line back (bench/lib/floor.mjs): what no Node process pool can beat.
Recycling: 2 workers, 64 callers calling \`tagged(x)\` (returns \`[x, worker pid]\`), ${c.recycleBlockMs / 1000} s per
round over ${c.recycleRounds} rounds; "workers seen" counts the distinct worker pids that answered (warm-up included) and
"most calls one served" checks the limit.
${
  spikeRows.length
    ? `
Latency during steady recycling: one worker retired after every ${c.spikeEvery} calls, one caller making a call every
${c.spikeGapMs} ms, ${c.spikeCalls} calls per round over ${c.recycleRounds} rounds (a fresh pool each round, past its first
retirement, then ${c.spikeEvery * 4} unmeasured calls at the same pace): p50 and p99 of those calls, and their ratio per round.

${md(spikeHeader, spikeRows)}
`
    : ''
}
### Host memory

${rssTable}

${rssGrowth.map((g) => `- ${g}`).join('\n')}

A host process of its own (this script, forked with \`--expose-gc\`) creates a pool of 2 workers and
runs 64 concurrent callers (the pipelined throughput path) until each count of calls is reached;
memory is read from \`process.memoryUsage()\` and \`v8.getHeapSpaceStatistics()\` at that moment,
then again after two \`gc()\`. The raw socket baseline runs in the same kind of host process under the
same load, as a floor: what Node itself does.

### Streams and callbacks

${streams ? `Streamed items per second: ${cell(streams, fmt.cps)}; callback round trips per second: ${cell(S(LIB, 'callbackTrips'), fmt.cps)}; plain sequential calls per second on the same worker: ${cell(S(LIB, 'plainCalls'), fmt.cps)} (median over ${c.rounds} rounds, min–max).` : 'Not measured in this run.'}
${streamRss ? `\n${md(['Items read', 'RSS (MiB)', 'RSS after gc() (MiB)', 'Most items buffered'], streamRss.points.map((p) => [p.items.toLocaleString('en-US'), fmt.mib(p.rss), fmt.mib(p.rssGc), String(p.maxBuffered)]))}\n` : ''}
process-sandbox only (bench/lib/streams.mjs, one worker): an async generator yields ${c.streamItems.toLocaleString('en-US')} integers, read with
\`for await\`, every item checked; a method calls a host function ${c.callbackTrips.toLocaleString('en-US')} times, awaiting each answer, against as
many plain echo calls one after the other. The memory figures come from a host process of its own in
which a consumer that yields to the event loop after every item reads ${c.streamRssCheckpoints.at(-1).toLocaleString('en-US')} items: credit-based
backpressure must keep the host's buffer, and so its RSS, flat.

### How each library was run

${adapters
  .filter((a) => !a.variantOf)
  .map((a) => `- **${a.id}**${run.versions[a.id] ? ` ${run.versions[a.id]}` : ''}: ${a.dispatch}.`)
  .join('\n')}
- Variants: **worker-farm (1 per worker)** is worker-farm with \`maxConcurrentCallsPerWorker: 1\`
  (throughput only); **… (advanced)** is the library with Node's \`serialization: 'advanced'\` for its
  fork IPC (\`forkOpts\` for workerpool, \`workerOptions\` for worker-farm, \`serialization\` for tinypool;
  Buffers only).
- Pools have exactly the stated number of workers (min = max) and each library's defaults otherwise;
  process-sandbox runs with its defaults too (health reports every 1 s while idle, 30 s call timeout).

### What is measured

- **Sequential**: one caller awaits ${(c.seqBlocks * c.seqBlockCalls).toLocaleString('en-US')} echo calls per round and library (${c.seqBlocks} block(s) of
  ${c.seqBlockCalls.toLocaleString('en-US')}, each after ${c.seqSettle} unmeasured calls), one worker, each call timed on its own; after ${c.seqWarmup.toLocaleString('en-US')} warm-up calls.
- **Throughput**: ${c.callers} concurrent callers each calling in a loop, ${c.tputBlockMs} ms per round and library; completed
  calls divided by the time until the last one returned. After a ${c.tputWarmupMs} ms warm-up.
- **Interleaving**: within a round every library takes its turn, in an order that rotates from round
  to round. Pools of one and two workers of every library are started before the first round and
  stay up (idle) while the others are measured.
- **Checks**: every echo returns the unique value it was sent; Buffers come back byte for byte; the raw
  baselines' children count the requests they answered, checked against the host's counts.

### Machine and run

- CPU: ${m.cpu}, ${m.cores} cores, ${m.memory} memory${m.cores <= 2 ? ' (with 2 cores, the 2-worker throughput runs the host and two workers on two cores: CPU-bound for every library)' : ''}
- OS: ${m.os}; Node: ${m.node}${m.unset?.length ? `\n- Unset for every child, so that all start alike: ${m.unset.join(', ')} (tinypool's children get an environment of their own without it; with it, every Node start parses a certificate bundle)` : ''}
- Load average (1 / 5 / 15 min): ${m.loadAtStart} at the start, ${m.loadAtEnd} at the end (this run itself keeps about 2 processes busy)
- Other work on the machine during the run: ${m.otherWork === undefined ? 'unknown' : `${(m.otherWork * 100).toFixed(0)} % of one core on average (CPU time of the whole machine from /proc/stat, less this process and its children's)`}
- Peers: ${Object.entries(run.versions)
    .map(([k, v]) => `${k} ${v}`)
    .join(', ')}
- Library measured: commit ${m.revision} (built dist)
- Date: ${run.date}
- Command (from the repository root, after \`npm run build\` and \`npm ci --prefix bench\`): \`${run.command}\` (\`npm run bench\` builds first and runs the same)
- Total run time: ${run.seconds.toFixed(0)} s
`;
  return { text, markdown, svg };
}

// ─── entry ───────────────────────────────────────────────────────────────────

if (process.argv[2] === RSS_PROBE) {
  await runRssProbe(process.argv[3], process.argv[4].split(',').map(Number), Number(process.argv[5]));
} else {
  cpuSupported();
  await main();
}

#!/usr/bin/env node
/**
 * Cost of a trivial call (`add(1, 2)`) through process-sandbox, against a raw baseline measured in
 * the same run on the same machine.
 *
 *   library   ProcessProxy over samples/calculator (the built dist: run `npm run build` first)
 *   baseline  a Unix-socket MessagePack ping-pong between this process and forked children: the
 *             same 4-byte length prefix, the same MessagePack library, one request at a time per
 *             child, and nothing else (no handshake, no health snapshot, no timers); every reply id
 *             and each child's count of answered requests are checked
 *   detached  the same baseline with children in their own session, as the library starts workers
 *
 * Measured, each for several rounds (library and baselines take turns in short blocks within every
 * round, so that a noisy neighbour hits all of them):
 *   sequential   one caller, one worker: mean / p50 / p99 latency of one call, and CPU per call
 *                (host and worker, Linux only)
 *   throughput   a pool of 2 workers (min = max = 2), 64 concurrent callers: calls per second
 *
 * Usage: node bench/trivial-call.mjs [--quick] [--write] [--rounds=N] [--json]
 *   --quick     a few-seconds smoke run (tiny samples; the numbers are not meant to be quoted)
 *   --write     rewrite its section of docs/benchmarks.md with the results, the machine and this command
 *   --rounds=N  rounds per measurement (default 5, --quick 2)
 *   --json      also print the raw results as JSON
 *
 * Exits 0 when every call returned the right value and every baseline reply matched its request;
 * 1 otherwise. Pools are disposed and every forked child is gone before it exits.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeSection } from './lib/docs.mjs';
import { selfTestFrameReader } from './lib/framing.mjs';
import { libraryRevision } from './lib/machine.mjs';
import { cpuSupported, withCpu } from './lib/proc.mjs';
import { RawPool } from './lib/raw-pool.mjs';
import { concat, spread, summarise } from './lib/stats.mjs';

// ─── the host side ───────────────────────────────────────────────────────────

function parseArgs(argv) {
  const flags = { quick: false, write: false, json: false, rounds: undefined };
  for (const arg of argv) {
    if (arg === '--quick') flags.quick = true;
    else if (arg === '--write') flags.write = true;
    else if (arg === '--json') flags.json = true;
    else if (arg.startsWith('--rounds=')) flags.rounds = Number(arg.slice('--rounds='.length));
    else if (arg === '--help' || arg === '-h') {
      console.log('usage: node bench/trivial-call.mjs [--quick] [--write] [--rounds=N] [--json]');
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
  return flags;
}

const failures = [];

/** `call()` n times, one after the other; returns per-call latencies in µs. */
async function sequential(call, n) {
  const latencies = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    const value = await call(1, 2);
    latencies[i] = (performance.now() - t0) * 1000;
    if (value !== 3) failures.push(`add(1, 2) returned ${String(value)}`);
  }
  return latencies;
}

/** `callers` loops calling `call()` until `ms` have passed; returns completed calls per second. */
async function throughput(call, callers, ms) {
  let completed = 0;
  const t0 = performance.now();
  const deadline = t0 + ms;
  const loop = async () => {
    while (performance.now() < deadline) {
      const value = await call(1, 2);
      if (value !== 3) failures.push(`add(1, 2) returned ${String(value)}`);
      completed++;
    }
  };
  await Promise.all(Array.from({ length: callers }, loop));
  const elapsed = performance.now() - t0; // includes the tail: calls started before the deadline
  return { callsPerSecond: (completed * 1000) / elapsed, completed, elapsedMs: elapsed };
}

async function main() {
  const flags = parseArgs(process.argv.slice(2));
  selfTestFrameReader();
  const config = flags.quick
    ? { rounds: flags.rounds ?? 2, warmupCalls: 300, seqBlocks: 2, seqBlockCalls: 500, settleCalls: 50, warmupMs: 150, tputBlocks: 2, tputBlockMs: 150, settleMs: 30, callers: 64 }
    : { rounds: flags.rounds ?? 5, warmupCalls: 3000, seqBlocks: 10, seqBlockCalls: 2000, settleCalls: 200, warmupMs: 1000, tputBlocks: 5, tputBlockMs: 400, settleMs: 50, callers: 64 };
  config.seqCalls = config.seqBlocks * config.seqBlockCalls;
  config.tputMs = config.tputBlocks * config.tputBlockMs;

  // The library is imported here, not at the top, so that the baseline child never loads it.
  const { ProcessProxy } = await import('@process-sandbox/core');
  const workerModule = new URL('../samples/calculator/calculator.mjs', import.meta.url);

  const dir = mkdtempSync(join(os.tmpdir(), 'process-sandbox-bench-'));
  const proxies = [];
  const raws = [];
  let cleaning;
  /** Disposes the pools and closes the baselines; every caller awaits the same run. */
  const cleanup = () =>
    (cleaning ??= (async () => {
      await Promise.all([...proxies.map((p) => ProcessProxy.poolOf(p).dispose()), ...raws.map((r) => r.close())]);
      rmSync(dir, { recursive: true, force: true });
    })());
  let abortCode;
  const abort = (why, code) => {
    if (abortCode !== undefined) return;
    abortCode = code;
    console.error(`\nbench: ${why}; cleaning up`);
    // main() sees its calls fail, cleans up and exits with abortCode; this is the backstop.
    setTimeout(() => {
      for (const r of raws) r.killAll();
      process.exit(code);
    }, 10_000).unref();
    void cleanup();
  };
  process.once('SIGINT', () => abort('interrupted', 130));
  process.once('SIGTERM', () => abort('terminated', 143));

  const loadBefore = os.loadavg()[0];
  if (loadBefore > os.cpus().length / 2) {
    process.stderr.write(`bench: warning: 1-minute load average is ${loadBefore.toFixed(2)} on ${os.cpus().length} cores; expect noisy numbers\n`);
  }
  let exitCode = 0;
  try {
    const started = performance.now();
    const seqProxy = await ProcessProxy.create({ workerModule, workerExport: 'CalculatorImpl', minPoolSize: 1, maxPoolSize: 1 });
    proxies.push(seqProxy);
    const poolProxy = await ProcessProxy.create({ workerModule, workerExport: 'CalculatorImpl', minPoolSize: 2, maxPoolSize: 2 });
    proxies.push(poolProxy);
    const onError = (message) => failures.push(message);
    const rawSeq = await RawPool.start(1, { transport: 'socket', dir, onError });
    raws.push(rawSeq);
    const rawPool = await RawPool.start(2, { transport: 'socket', dir, onError });
    raws.push(rawPool);
    // The same baseline with each child in its own session (detached), as the library starts its workers:
    // shows how much of the gap is process placement rather than the library's own work.
    const detSeq = await RawPool.start(1, { transport: 'socket', dir, detached: true, onError });
    raws.push(detSeq);
    const detPool = await RawPool.start(2, { transport: 'socket', dir, detached: true, onError });
    raws.push(detPool);

    const livePids = (proxy) => ProcessProxy.poolOf(proxy).livePids();
    const impls = {
      lib: { seq: (a, b) => seqProxy.add(a, b), pool: (a, b) => poolProxy.add(a, b), seqPids: () => livePids(seqProxy), poolPids: () => livePids(poolProxy) },
      raw: { seq: (a, b) => rawSeq.invoke('add', [a, b]), pool: (a, b) => rawPool.invoke('add', [a, b]), seqPids: () => rawSeq.pids, poolPids: () => rawPool.pids },
      det: { seq: (a, b) => detSeq.invoke('add', [a, b]), pool: (a, b) => detPool.invoke('add', [a, b]), seqPids: () => detSeq.pids, poolPids: () => detPool.pids },
    };
    const sides = Object.keys(impls);
    /** The sides in a different order for each block: nobody always goes first. */
    const turn = (k) => sides.map((_, i) => sides[(i + k) % sides.length]);

    // Warm-up: JIT both ends, grow the socket buffers, settle the workers.
    for (const side of sides) await sequential(impls[side].seq, config.warmupCalls);
    for (const side of sides) await throughput(impls[side].pool, config.callers, config.warmupMs);

    const rounds = [];
    for (let r = 0; r < config.rounds; r++) {
      // Library and baselines take turns in short blocks, so that all see the same machine: on a shared
      // or virtualised host, wake-up latency drifts within seconds.
      const seqLatencies = Object.fromEntries(sides.map((side) => [side, []]));
      const seqCpu = Object.fromEntries(sides.map((side) => [side, { hostNs: 0, childNs: 0 }]));
      for (let b = 0; b < config.seqBlocks; b++) {
        for (const side of turn(r + b)) {
          const impl = impls[side];
          await sequential(impl.seq, config.settleCalls); // unmeasured: back to a steady state after the switch
          const { result, hostNs, childNs } = await withCpu(impl.seqPids(), () => sequential(impl.seq, config.seqBlockCalls));
          seqLatencies[side].push(result);
          seqCpu[side].hostNs += hostNs;
          seqCpu[side].childNs += childNs;
        }
      }
      const tputTotals = Object.fromEntries(sides.map((side) => [side, { completed: 0, ms: 0, cpuNs: 0 }]));
      for (let b = 0; b < config.tputBlocks; b++) {
        for (const side of turn(r + b)) {
          const impl = impls[side];
          await throughput(impl.pool, config.callers, config.settleMs);
          const { result, hostNs, childNs } = await withCpu(impl.poolPids(), () => throughput(impl.pool, config.callers, config.tputBlockMs));
          tputTotals[side].completed += result.completed;
          tputTotals[side].ms += result.elapsedMs;
          tputTotals[side].cpuNs += hostNs + childNs;
        }
      }
      const round = {};
      for (const side of sides) {
        const t = tputTotals[side];
        round[side] = {
          seq: summarise(concat(seqLatencies[side])),
          seqHostCpu: seqCpu[side].hostNs / 1000 / config.seqCalls,
          seqChildCpu: seqCpu[side].childNs / 1000 / config.seqCalls,
          tput: (t.completed * 1000) / t.ms,
          tputCpu: t.cpuNs / 1000 / t.completed,
        };
      }
      rounds.push(round);
      process.stderr.write(
        `round ${r + 1}/${config.rounds}: seq mean ${round.lib.seq.mean.toFixed(1)} µs vs ${round.raw.seq.mean.toFixed(1)} µs raw ` +
          `(${round.det.seq.mean.toFixed(1)} detached); throughput ${Math.round(round.lib.tput)} vs ${Math.round(round.raw.tput)} calls/s raw ` +
          `(${Math.round(round.det.tput)} detached)\n`,
      );
    }

    // Every baseline request must really have round-tripped: each child's own count matches ours.
    for (const [name, pool] of [['sequential', rawSeq], ['throughput', rawPool], ['detached sequential', detSeq], ['detached throughput', detPool]]) {
      const answered = await pool.answeredByChild();
      const sent = pool.sentByChild;
      const replies = pool.repliesByChild;
      if (answered.some((n, i) => n !== sent[i] || n !== replies[i]) || pool.completed !== sent.reduce((x, y) => x + y, 0)) {
        failures.push(`baseline ${name}: children answered ${answered}, host sent ${sent}, host received ${replies}`);
      }
    }
    const rawCompleted = raws.reduce((n, pool) => n + pool.completed, 0);
    const libStats = proxies.map((p) => ProcessProxy.poolOf(p).stats().totals);
    if (libStats.some((t) => t.failed !== 0 || t.crashes !== 0)) failures.push(`library calls failed: ${JSON.stringify(libStats)}`);

    const metric = (pick) => spread(rounds.map(pick));
    const compare = (pick) => ({
      lib: metric((r) => pick(r.lib)),
      raw: metric((r) => pick(r.raw)),
      det: metric((r) => pick(r.det)),
      ratio: metric((r) => pick(r.lib) / pick(r.raw)),
      detRatio: metric((r) => pick(r.lib) / pick(r.det)),
    });
    const results = {
      config,
      seq: { mean: compare((x) => x.seq.mean), p50: compare((x) => x.seq.p50), p99: compare((x) => x.seq.p99) },
      seqCpu: cpuSupported() ? { host: compare((x) => x.seqHostCpu), child: compare((x) => x.seqChildCpu), total: compare((x) => x.seqHostCpu + x.seqChildCpu) } : undefined,
      tput: compare((x) => x.tput),
      tputCpu: cpuSupported() ? compare((x) => x.tputCpu) : undefined,
      baselineRoundTrips: rawCompleted,
      libraryCalls: libStats.reduce((n, t) => n + t.calls, 0),
      seconds: (performance.now() - started) / 1000,
    };

    const machine = {
      cpu: os.cpus()[0]?.model?.trim() ?? 'unknown',
      cores: os.cpus().length,
      node: process.version,
      os: `${os.type()} ${os.release()} ${os.arch()}`,
      load: `${loadBefore.toFixed(2)} at the start, ${os.loadavg()[0].toFixed(2)} at the end`,
      busy: Math.max(loadBefore, os.loadavg()[0]) > os.cpus().length / 2,
      revision: libraryRevision(),
    };
    const command = ['node', 'bench/trivial-call.mjs', ...process.argv.slice(2)].join(' ');
    const report = render(results, machine, command, flags.quick);
    console.log('\n' + report.table);
    console.log(`\n${report.summary}`);
    console.log(`\nbaseline round trips verified: ${rawCompleted}; library calls: ${results.libraryCalls}; ${results.seconds.toFixed(1)} s`);
    if (flags.json) console.log(JSON.stringify({ machine, command, ...results }, null, 2));

    if (failures.length) {
      exitCode = 1;
      console.error(`\nbench: ${failures.length} check(s) failed:\n  ${failures.slice(0, 10).join('\n  ')}`);
    } else if (flags.write) {
      const docs = fileURLToPath(new URL('../docs/benchmarks.md', import.meta.url));
      writeSection(docs, 'trivial-call', report.markdown);
      console.log(`wrote its section of ${docs}`);
    }
  } catch (error) {
    exitCode = 1;
    if (abortCode === undefined) console.error(error);
  } finally {
    await cleanup();
  }
  if (abortCode !== undefined) exitCode = abortCode;

  const leftovers = proxies.flatMap((p) => ProcessProxy.poolOf(p).livePids()).length + raws.reduce((n, r) => n + r.alive, 0);
  if (leftovers > 0) {
    console.error(`bench: ${leftovers} child process(es) still alive after cleanup`);
    for (const r of raws) r.killAll();
    exitCode = 1;
  }
  process.exit(exitCode);
}

// ─── output ──────────────────────────────────────────────────────────────────

function render(results, machine, command, quick) {
  const n = results.config.rounds;
  const us = (v) => (v >= 100 ? v.toFixed(0) : v.toFixed(1));
  const cps = (v) => Math.round(v).toLocaleString('en-US');
  const x = (v) => `${v.toFixed(2)}x`;
  const cell = (s, fmt) => `${fmt(s.median)} (${fmt(s.min)}–${fmt(s.max)})`;

  const rows = [
    ['Sequential latency, mean (µs)', results.seq.mean, us],
    ['Sequential latency, p50 (µs)', results.seq.p50, us],
    ['Sequential latency, p99 (µs)', results.seq.p99, us],
    ...(results.seqCpu
      ? [
          ['Sequential, CPU per call, host + worker (µs)', results.seqCpu.total, us],
          ['Sequential, CPU per call, host (µs)', results.seqCpu.host, us],
          ['Sequential, CPU per call, worker (µs)', results.seqCpu.child, us],
        ]
      : []),
    [`Throughput, 2 workers, ${results.config.callers} callers (calls/s)`, results.tput, cps],
    ...(results.tputCpu ? [['Throughput, CPU per call, host + workers (µs)', results.tputCpu, us]] : []),
  ];
  const header = ['Measurement', 'process-sandbox', 'raw ping-pong', 'library / raw', 'raw, detached children', 'library / raw detached'];
  const body = rows.map(([label, m, fmt]) => [label, cell(m.lib, fmt), cell(m.raw, fmt), cell(m.ratio, x), cell(m.det, fmt), cell(m.detRatio, x)]);

  const widths = header.map((h, i) => Math.max(h.length, ...body.map((r) => r[i].length)));
  const line = (cells) => cells.map((c, i) => c.padEnd(widths[i])).join('  ');
  const table = [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...body.map(line)].join('\n');
  const mdTable = [`| ${header.join(' | ')} |`, `|${header.map((_, i) => (i === 0 ? '---' : '---:')).join('|')}|`, ...body.map((r) => `| ${r.join(' | ')} |`)].join('\n');

  const s = results.seq;
  const summary = [
    `sequential: ${x(s.mean.ratio.median)} the raw ping-pong latency (mean; p50 ${x(s.p50.ratio.median)}, p99 ${x(s.p99.ratio.median)})`,
    `throughput: ${x(results.tput.ratio.median)} the raw ping-pong throughput (2 workers, ${results.config.callers} callers)`,
    `against the detached-children baseline: sequential ${x(s.mean.detRatio.median)} (mean), throughput ${x(results.tput.detRatio.median)}`,
    ...(results.seqCpu ? [`CPU per sequential call: ${x(results.seqCpu.total.ratio.median)} the raw ping-pong (${us(results.seqCpu.total.lib.median)} vs ${us(results.seqCpu.total.raw.median)} µs, host + worker)`] : []),
  ].join('\n');

  const c = results.config;
  const markdown = `## A trivial call in depth (bench/trivial-call.mjs)

Cost of a trivial call, \`add(1, 2)\` on \`samples/calculator\`, through process-sandbox, next to a raw
baseline measured by the same script in the same run.${quick ? '\n\n> **Smoke run (`--quick`)**: samples are tiny; do not quote these numbers.' : ''}${
    machine.busy
      ? `\n\n> **This run shared the machine with other work** (1-minute load average ${machine.load}, on ${machine.cores} cores):\n> absolute figures are pessimistic and spreads wide; the per-round ratios are the figures to compare.`
      : ''
  }

${mdTable}

Each cell: median over ${n} rounds, with (min–max) across rounds. Ratios are computed per round
(library and baselines take turns within every round) and then summarised. Latency ratios above 1 and
throughput ratios below 1 are the library's cost.

${summary.split('\n').map((line) => `- ${line}`).join('\n')}

How to read it:

- **Placement dominates on small VMs.** A ping-pong between two processes on the same vCPU costs a
  fraction of one whose ends sit on different vCPUs (every wake-up of an idle vCPU goes through the
  hypervisor, which shows up as both wall time and CPU time), and the scheduler's placement changes from
  one second to the next, more so when other work shares the machine. Hence the wide spreads: compare
  ratios within one run, and treat single figures from a shared machine with suspicion.
- **CPU per call** (all threads of host and worker, from \`/proc/<pid>/task/*/schedstat\`, Linux only)
  splits the cost between the two sides; it is inflated by cross-vCPU placement too, but not by time
  spent waiting for a CPU.
- **raw, detached children** is the same baseline with each child started \`detached\` (its own session,
  so on Linux with \`kernel.sched_autogroup_enabled=1\` its own scheduling autogroup), as the library
  starts its workers. Against the plain baseline it shows what that difference cost in this run, before
  any library code runs; the last column is what remains for the library itself. Which vCPU a pair of
  processes shares sticks to the pair for seconds to minutes, detached or not (in
  bench/experiments/detached-pingpong.mjs the detached child was the faster one four runs out of five),
  so a single run's detached penalty is not a constant.

### What is measured

- **Sequential latency**: one caller awaits ${c.seqCalls.toLocaleString('en-US')} calls one after another per round and side, on a
  pool of one worker (\`minPoolSize: 1, maxPoolSize: 1\`); each call is timed on its own (\`performance.now()\`
  around the awaited call). After ${c.warmupCalls.toLocaleString('en-US')} warm-up calls.
- **Throughput**: a pool of two workers (\`minPoolSize: 2, maxPoolSize: 2\`), ${c.callers} concurrent callers
  each calling in a loop, ${c.tputMs / 1000} s per round and side; completed calls divided by the time until the last
  one returned. After a ${c.warmupMs / 1000} s warm-up.
- **Interleaving**: within a round, library and baseline take turns in blocks (${c.seqBlocks} × ${c.seqBlockCalls.toLocaleString('en-US')} sequential calls,
  ${c.tputBlocks} × ${c.tputBlockMs} ms of throughput, each block preceded by a short unmeasured run), alternating which
  side goes first, so that both sides see the same machine.
- **Raw ping-pong baseline**: this process and forked Node children over a Unix domain socket,
  frames of a 4-byte big-endian length prefix plus MessagePack (\`@msgpack/msgpack\`, one reused
  \`Encoder\`/\`Decoder\` per process), a streaming frame reader on both ends, request
  \`[3, id, 'add', [1, 2]]\` and reply \`[4, id, 3]\`, each call a promise. Sequential: one child.
  Throughput: two children, the same ${c.callers} callers, a FIFO queue on the host and one request in flight
  per child at a time (as the library's workers). Every reply's id is checked against the request
  in flight, and at the end each child's own count of answered requests is checked against the host's
  (${results.baselineRoundTrips.toLocaleString('en-US')} round trips in this run).
- Library defaults otherwise (health reports every 1 s while idle, 30 s call timeout). Every call's
  value is checked (\`=== 3\`).
- **CPU per call**: CPU time of this process plus the worker (or child) processes over the measured
  blocks, divided by the calls made. The host's share includes the benchmark loop itself, equally for
  both sides.

### Machine and run

- CPU: ${machine.cpu}, ${machine.cores} cores (${machine.cores <= 2 ? 'note: the throughput test runs the host and two children on these cores, so it is CPU-bound for both sides' : 'host and two children each get a core'})
- OS: ${machine.os}
- Node: ${machine.node}
- 1-minute load average: ${machine.load} (anything well above 0 means other work shared the CPUs)
- Library measured: commit ${machine.revision} (built dist)
- Date: ${new Date().toISOString()}
- Command (from the repository root, after \`npm run build\`): \`${command}\`
- Total run time: ${results.seconds.toFixed(0)} s

Re-run with \`npm run bench:trivial -- --write\` (builds first; rewrites this section only). \`--quick\` is a few-seconds smoke run.
`;
  return { table, summary, markdown };
}

// ─── entry ───────────────────────────────────────────────────────────────────

await main();

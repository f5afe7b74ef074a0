#!/usr/bin/env node
/**
 * Cost of a trivial call (`add(1, 2)`) through process-sandbox, against a raw baseline measured in
 * the same run on the same machine.
 *
 *   library   ProcessProxy over samples/calculator (the built dist: run `npx tsc -b` first)
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
 *   --write     rewrite docs/benchmarks.md with the results, the machine and this command
 *   --rounds=N  rounds per measurement (default 5, --quick 2)
 *   --json      also print the raw results as JSON
 *
 * Exits 0 when every call returned the right value and every baseline reply matched its request;
 * 1 otherwise. Pools are disposed and every forked child is gone before it exits.
 */
import { execFileSync, fork } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import os from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Decoder, Encoder } from '@msgpack/msgpack';

const CHILD_FLAG = '--pingpong-child';

// Message shapes mirror the library's protocol: Invoke [3, id, method, args], Result [4, id, value].
const INVOKE = 3;
const RESULT = 4;
/** Baseline only: "how many requests did you answer?" → [COUNT, id, answered]. */
const COUNT = 9;

// ─── framing shared by both ends of the baseline ─────────────────────────────

const encoder = new Encoder();
const decoder = new Decoder();

/** One buffer: uint32 BE length, then the MessagePack body (one write per frame, as the library does). */
function frame(message) {
  const body = encoder.encodeSharedRef(message);
  const out = Buffer.allocUnsafe(4 + body.byteLength);
  out.writeUInt32BE(body.byteLength, 0);
  out.set(body, 4);
  return out;
}

/**
 * A streaming frame reader: a chunk may hold part of a frame, or several frames and a part.
 * Leftover bytes are kept and joined with the next chunk (only when there is a leftover; fine for
 * the ~15-byte frames here, quadratic for a large frame trickling in, which never happens here).
 */
class FrameReader {
  #pending = null;

  constructor(onFrame) {
    this.onFrame = onFrame;
  }

  push(chunk) {
    let buf = this.#pending === null ? chunk : Buffer.concat([this.#pending, chunk]);
    this.#pending = null;
    let offset = 0;
    while (buf.length - offset >= 4) {
      const size = buf.readUInt32BE(offset);
      if (buf.length - offset - 4 < size) break;
      this.onFrame(buf.subarray(offset + 4, offset + 4 + size));
      offset += 4 + size;
    }
    if (offset < buf.length) this.#pending = buf.subarray(offset);
  }

  get buffered() {
    return this.#pending === null ? 0 : this.#pending.length;
  }
}

/** The reader must hand out exactly the frames written, however the stream is cut. Throws if not. */
function selfTestFrameReader() {
  const messages = Array.from({ length: 50 }, (_, i) => [INVOKE, i, 'add', [i, 'x'.repeat(i * 7)]]);
  const stream = Buffer.concat(messages.map(frame));
  const cuts = [[1], [3], [4], [5], [17], [stream.length], [2, 9, 1, 300, 4, 4, 64]];
  for (const sizes of cuts) {
    const seen = [];
    const reader = new FrameReader((bytes) => seen.push(decodeFrame(bytes)));
    for (let offset = 0, k = 0; offset < stream.length; k++) {
      const size = sizes[k % sizes.length];
      // subarray of a copy, so the reader cannot rely on chunks sharing one buffer
      reader.push(Buffer.from(stream.subarray(offset, offset + size)));
      offset += size;
    }
    if (reader.buffered !== 0 || JSON.stringify(seen) !== JSON.stringify(messages)) {
      throw new Error(`FrameReader self-test failed for chunk sizes ${sizes}`);
    }
  }
}

function decodeFrame(bytes) {
  return decoder.decode(bytes);
}

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

/** Forked children answering `add` over a Unix socket, one request in flight per child. */
class RawPool {
  #server;
  #children = [];
  #queue = [];
  #nextId = 1;
  #closed = false;
  completed = 0;

  static async start(size, dir, { detached = false } = {}) {
    const pool = new RawPool();
    await pool.#start(size, dir, detached);
    return pool;
  }

  async #start(size, dir, detached) {
    const path = join(dir, `raw-${Math.random().toString(36).slice(2)}.sock`);
    const server = createServer();
    this.#server = server;
    await new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(path, resolve);
    });
    const script = fileURLToPath(import.meta.url);
    for (let i = 0; i < size; i++) {
      // execArgv [] so that flags given to this process (--cpu-prof, --inspect) do not reach the children.
      const proc = fork(script, [CHILD_FLAG, path], { execArgv: [], stdio: ['ignore', 'inherit', 'inherit', 'ipc'], detached });
      const exited = new Promise((resolve) => proc.once('exit', resolve));
      // Children are started one at a time (in a private directory), so this connection is this child's.
      const socket = await new Promise((resolve, reject) => {
        const onConnection = (s) => {
          proc.off('exit', onExit);
          resolve(s);
        };
        const onExit = (code, signal) => {
          server.off('connection', onConnection);
          reject(new Error(`baseline child exited (${signal ?? code}) before connecting`));
        };
        server.once('connection', onConnection);
        proc.once('exit', onExit);
      });
      const child = { proc, exited, socket, inFlight: null, sent: 0, replies: 0 };
      child.reader = new FrameReader((bytes) => this.#onReply(child, decodeFrame(bytes)));
      socket.on('data', (chunk) => child.reader.push(chunk));
      socket.on('error', () => {});
      socket.on('close', () => this.#onChildGone(child));
      this.#children.push(child);
    }
    server.close(); // nobody else may connect
  }

  /** Resolves with the child's answer to add(a, b). */
  call(a, b) {
    if (this.#closed) return Promise.reject(new Error('baseline pool is closed'));
    return new Promise((resolve, reject) => {
      this.#queue.push({ kind: INVOKE, id: this.#nextId++, payload: ['add', [a, b]], resolve, reject });
      this.#pump();
    });
  }

  /** Asks each child how many requests it answered. */
  async answeredByChild() {
    const counts = [];
    for (const child of this.#children) {
      counts.push(
        await new Promise((resolve, reject) => {
          this.#queueFor(child, { kind: COUNT, id: this.#nextId++, payload: [], resolve, reject });
        }),
      );
    }
    return counts;
  }

  get pids() {
    return this.#children.map((c) => c.proc.pid);
  }

  get sentByChild() {
    return this.#children.map((c) => c.sent);
  }
  get repliesByChild() {
    return this.#children.map((c) => c.replies);
  }

  #queueFor(child, request) {
    if (child.inFlight) throw new Error('internal: child busy');
    this.#send(child, request);
  }

  #pump() {
    for (const child of this.#children) {
      if (this.#queue.length === 0) return;
      if (child.inFlight === null) this.#send(child, this.#queue.shift());
    }
  }

  #send(child, request) {
    child.inFlight = request;
    if (request.kind === INVOKE) child.sent++;
    child.socket.write(frame([request.kind, request.id, ...request.payload]));
  }

  #onReply(child, message) {
    const request = child.inFlight;
    const [kind, id, value] = message;
    if (request === null || id !== request.id || (kind !== RESULT && kind !== COUNT) || (kind === COUNT) !== (request.kind === COUNT)) {
      const error = new Error(`baseline: reply [${kind}, ${id}] does not answer ${request ? `request ${request.id}` : 'anything'}`);
      failures.push(error.message);
      request?.reject(error);
      return;
    }
    child.inFlight = null;
    if (kind === RESULT) {
      child.replies++;
      this.completed++;
    }
    request.resolve(value);
    this.#pump();
  }

  /** A pipe closed (we closed it, or the child died): nothing waiting on this pool may hang. */
  #onChildGone(child) {
    this.#closed = true;
    const error = new Error('baseline child went away');
    if (child.inFlight) child.inFlight.reject(error);
    child.inFlight = null;
    for (const request of this.#queue.splice(0)) request.reject(error);
  }

  /** Closes every pipe; children exit on EOF, and are killed if they have not after 2 s. */
  async close() {
    this.#closed = true;
    this.#server?.close();
    for (const child of this.#children) child.socket.end();
    await Promise.all(
      this.#children.map(async (child) => {
        const timer = setTimeout(() => child.proc.kill('SIGKILL'), 2000);
        await child.exited;
        clearTimeout(timer);
      }),
    );
  }

  /** Last resort (a signal or an error mid-run). */
  killAll() {
    for (const child of this.#children) if (child.proc.exitCode === null && child.proc.signalCode === null) child.proc.kill('SIGKILL');
  }

  get alive() {
    return this.#children.filter((c) => c.proc.exitCode === null && c.proc.signalCode === null).length;
  }
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

function concat(arrays) {
  const out = new Float64Array(arrays.reduce((n, a) => n + a.length, 0));
  let offset = 0;
  for (const a of arrays) {
    out.set(a, offset);
    offset += a.length;
  }
  return out;
}

function summarise(latencies) {
  const sorted = Float64Array.from(latencies).sort();
  let sum = 0;
  for (const v of sorted) sum += v;
  const at = (q) => sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)];
  return { mean: sum / sorted.length, p50: at(0.5), p99: at(0.99) };
}

function spread(values) {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  const median = sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
  return { min: sorted[0], median, max: sorted[sorted.length - 1], values };
}

/**
 * CPU time a process has used so far, in ns, all threads: the sum of /proc/<pid>/task/<tid>/schedstat
 * (Linux; elsewhere the CPU rows are left out). Splits a call's cost between host and worker.
 */
function cpuNs(pid) {
  let total = 0;
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      total += Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]);
    } catch {
      // the thread ended meanwhile
    }
  }
  return total;
}

function cpuSupported() {
  try {
    return cpuNs(process.pid) > 0;
  } catch {
    return false;
  }
}

/** Runs `fn`, returning its result and the CPU ns used meanwhile by this process and by `pids`. */
async function withCpu(pids, fn) {
  if (!cpuSupported.cached) return { result: await fn(), hostNs: NaN, childNs: NaN };
  const child0 = pids.reduce((n, pid) => n + cpuNs(pid), 0);
  const host0 = cpuNs(process.pid);
  const result = await fn();
  const hostNs = cpuNs(process.pid) - host0;
  const childNs = pids.reduce((n, pid) => n + cpuNs(pid), 0) - child0;
  return { result, hostNs, childNs };
}

/** Which library was measured: the git commit, and whether packages/ or samples/ had local changes. */
function libraryRevision() {
  const git = (...args) =>
    execFileSync('git', args, { cwd: fileURLToPath(new URL('..', import.meta.url)), stdio: ['ignore', 'pipe', 'ignore'] }).toString().trim();
  try {
    const commit = git('rev-parse', '--short', 'HEAD');
    const dirty = git('status', '--porcelain', '--untracked-files=no', '--', 'packages', 'samples') !== '';
    return dirty ? `${commit} plus uncommitted changes under packages/ or samples/` : commit;
  } catch {
    return 'unknown (not a git checkout)';
  }
}

async function main() {
  const flags = parseArgs(process.argv.slice(2));
  selfTestFrameReader();
  cpuSupported.cached = cpuSupported();
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
    const rawSeq = await RawPool.start(1, dir);
    raws.push(rawSeq);
    const rawPool = await RawPool.start(2, dir);
    raws.push(rawPool);
    // The same baseline with each child in its own session (detached), as the library starts its workers:
    // shows how much of the gap is process placement rather than the library's own work.
    const detSeq = await RawPool.start(1, dir, { detached: true });
    raws.push(detSeq);
    const detPool = await RawPool.start(2, dir, { detached: true });
    raws.push(detPool);

    const livePids = (proxy) => ProcessProxy.poolOf(proxy).livePids();
    const impls = {
      lib: { seq: (a, b) => seqProxy.add(a, b), pool: (a, b) => poolProxy.add(a, b), seqPids: () => livePids(seqProxy), poolPids: () => livePids(poolProxy) },
      raw: { seq: (a, b) => rawSeq.call(a, b), pool: (a, b) => rawPool.call(a, b), seqPids: () => rawSeq.pids, poolPids: () => rawPool.pids },
      det: { seq: (a, b) => detSeq.call(a, b), pool: (a, b) => detPool.call(a, b), seqPids: () => detSeq.pids, poolPids: () => detPool.pids },
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
      seqCpu: cpuSupported.cached ? { host: compare((x) => x.seqHostCpu), child: compare((x) => x.seqChildCpu), total: compare((x) => x.seqHostCpu + x.seqChildCpu) } : undefined,
      tput: compare((x) => x.tput),
      tputCpu: cpuSupported.cached ? compare((x) => x.tputCpu) : undefined,
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
      const docs = new URL('../docs/benchmarks.md', import.meta.url);
      writeFileSync(docs, report.markdown);
      console.log(`wrote ${fileURLToPath(docs)}`);
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
  const markdown = `# Benchmarks

<!-- Generated by bench/trivial-call.mjs --write; edits here are overwritten. -->

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
  starts its workers. Against the plain baseline it shows what that placement alone costs, before any
  library code runs; the last column is what remains for the library itself.

## What is measured

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

## Machine and run

- CPU: ${machine.cpu}, ${machine.cores} cores (${machine.cores <= 2 ? 'note: the throughput test runs the host and two children on these cores, so it is CPU-bound for both sides' : 'host and two children each get a core'})
- OS: ${machine.os}
- Node: ${machine.node}
- 1-minute load average: ${machine.load} (anything well above 0 means other work shared the CPUs)
- Library measured: commit ${machine.revision} (built dist)
- Date: ${new Date().toISOString()}
- Command (from the repository root, after \`npx tsc -b\`): \`${command}\`
- Total run time: ${results.seconds.toFixed(0)} s

Re-run with \`npm run bench -- --write\` (builds first). \`--quick\` is a few-seconds smoke run.
`;
  return { table, summary, markdown };
}

// ─── the baseline child ──────────────────────────────────────────────────────

function runChild(socketPath) {
  const socket = connect(socketPath);
  let answered = 0;
  const reader = new FrameReader((bytes) => {
    const [kind, id, method, args] = decodeFrame(bytes);
    if (kind === INVOKE) {
      if (method !== 'add') throw new Error(`baseline child: unknown method ${method}`);
      answered++;
      socket.write(frame([RESULT, id, args[0] + args[1]]));
    } else if (kind === COUNT) {
      socket.write(frame([COUNT, id, answered]));
    } else {
      throw new Error(`baseline child: unexpected message kind ${kind}`);
    }
  });
  socket.on('data', (chunk) => reader.push(chunk));
  // The parent closed the pipe or went away: nothing more to do.
  socket.on('close', () => process.exit(0));
  socket.on('error', () => process.exit(1));
}

// ─── entry ───────────────────────────────────────────────────────────────────

if (process.argv[2] === CHILD_FLAG) runChild(process.argv[3]);
else await main();

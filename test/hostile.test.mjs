// Hostile peers. On POSIX the channel is a socket the worker inherits: no path, no token, nothing
// in its environment or the file system that another process could use; a plugin of another pool of
// the same uid that scans /proc, stops the worker, reads its environment and descriptors and tries
// every way in gets nothing, and the pool starts and answers as if it were not there. Windows keeps a
// named pipe with a token: its listener (run here on a Unix socket path) drops any stranger — garbage,
// invalid MessagePack, a frame of an unknown kind, a Hello with a wrong token of any length — without
// a byte in reply, holds at most 4 of them at once and gives up after 64. A worker that breaks the
// protocol (a reply with an unknown correlation id, a reply sent twice, a message of an unknown kind) is
// killed; the call it was running fails with WorkerCrashedError, no other call is settled by it,
// nothing settles twice, and the host carries on.
import { expect } from 'chai';
import fc from 'fast-check';
import { mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { encodeFrame, encodeValue, MessageKind, PROTOCOL_VERSION } from '@process-sandbox/abstractions';
import { ProcessProxy, WorkerCrashedError } from '@process-sandbox/core';
import { MAX_STRANGERS, MAX_UNPROVEN, PipeListener } from '../packages/core/dist/pipe-endpoint.js';
import { createProxy, disposeProxies, fixture, memoryLogger } from './support/pools.mjs';
import { environOf, isAlive, markedProcesses, openFds, TEST_RUN_MARKER, waitFor } from './support/processes.mjs';
import { counted } from './support/forging.mjs';

/**
 * Connects, sends `bytes` and half-closes (so that an incomplete frame does not wait for the hello
 * deadline); resolves with every byte the listener sent back before the connection closed.
 */
function strangerSends(path, bytes, { end = true } = {}) {
  return new Promise((resolve, reject) => {
    const received = [];
    const socket = connect(path, () => (end ? socket.end(bytes) : socket.write(bytes)));
    socket.on('data', (d) => received.push(d));
    socket.on('error', (error) => (error.code === 'EPIPE' || error.code === 'ECONNRESET' ? undefined : reject(error)));
    socket.on('close', () => resolve(Buffer.concat(received)));
  });
}

const frame = (message) => encodeFrame(encodeValue(message));
const isRoot = process.getuid?.() === 0;
const NOBODY = 65534;

/** Starts a pool whose worker waits `delayMs` before it loads anything; resolves with its pid and the pending create(). */
async function startSlowWorker(options, delayMs) {
  const before = new Set(markedProcesses());
  const creating = ProcessProxy.create({
    workerModule: fixture('torture.mjs'),
    workerExport: 'Torture',
    maxPoolSize: 1,
    execArgv: ['--import', `data:text/javascript,await new Promise((r) => setTimeout(r, ${delayMs}))`],
    ...options,
  });
  creating.catch(() => {});
  const pid = await waitFor(() => markedProcesses().find((p) => !before.has(p)), 'the worker process to appear');
  expect(pid, 'the worker process appeared').to.be.a('number');
  return { pid, creating };
}

/** The Path column of /proc/net/unix for socket `inode`: undefined for an unnamed socket; null if not listed. */
function unixSocketName(inode) {
  for (const line of readFileSync('/proc/net/unix', 'utf8').split('\n').slice(1)) {
    const fields = line.trim().split(/\s+/);
    if (fields[6] === inode) return fields[7];
  }
  return null;
}

describe('hostile peers', function () {
  before(function () {
    // POSIX-specific: it finds a worker's pipe and token in /proc/<pid>/environ.
    if (process.platform === 'win32') this.skip();
  });
  this.timeout(30_000);
  afterEach(disposeProxies);

  describe('the channel (POSIX): an inherited socket, nothing to find, nothing to connect to', function () {
    it('no socket path or token in the worker\'s environment; its channel is an unnamed socket; nothing in the temp dir', async () => {
      const tmp = mkdtempSync(join(tmpdir(), 'ps-hostile-'));
      const saved = process.env.TMPDIR;
      process.env.TMPDIR = tmp;
      try {
        const { pid, creating } = await startSlowWorker({}, 1500);
        const env = environOf(pid);
        const ours = Object.entries(env).filter(([name]) => name.startsWith('PROCESS_SANDBOX_') && name !== TEST_RUN_MARKER);
        expect(ours.map(([name]) => name)).to.include('PROCESS_SANDBOX_CHANNEL_FD');
        expect(ours.map(([name]) => name).filter((name) => /PIPE|TOKEN/.test(name))).to.deep.equal([]);
        // What is there: descriptor numbers and the host's pid, nothing a stranger could use.
        for (const [name, value] of ours) expect(value, name).to.match(/^\d+$/);
        const link = readlinkSync(`/proc/${pid}/fd/${env.PROCESS_SANDBOX_CHANNEL_FD}`);
        expect(link).to.match(/^socket:\[\d+\]$/);
        expect(unixSocketName(link.slice(8, -1)), 'the channel has no name in /proc/net/unix').to.equal(undefined);
        expect(readdirSync(tmp), 'nothing in TMPDIR while the worker starts').to.deep.equal([]);
        const proxy = await creating;
        try {
          expect(await proxy.pid()).to.equal(pid);
          expect(readdirSync(tmp), 'nothing in TMPDIR while the pool serves').to.deep.equal([]);
        } finally {
          await ProcessProxy.poolOf(proxy).dispose();
        }
      } finally {
        if (saved === undefined) delete process.env.TMPDIR;
        else process.env.TMPDIR = saved;
        rmSync(tmp, { recursive: true, force: true });
      }
    });

    for (const [how, options] of [
      ['the host\'s own uid', {}],
      ['both pools as the same other user (option user)', { user: { uid: NOBODY, gid: NOBODY } }],
    ]) {
      it(`a plugin of another pool (${how}) scans /proc, stops the starting worker, reads its environment and descriptors, tries every way in: it gets nothing, and the pool starts and answers its own values`, async function () {
        if (options.user && !isRoot) this.skip(); // the user option needs root
        this.timeout(60_000);
        const intruder = await createProxy({ workerModule: fixture('intruder.mjs'), workerExport: 'Intruder', maxPoolSize: 1, ...options });
        const logger = memoryLogger();
        const { pid, creating } = await startSlowWorker({ logger, ...options }, 3000);
        let ready = false;
        creating.then(() => (ready = true), () => {});
        const report = await intruder.attack(`${TEST_RUN_MARKER}=${process.env[TEST_RUN_MARKER]}`, 5);
        expect(ready, 'the attack ran while the worker was starting').to.equal(false);
        const tried = report.attempts.filter((a) => a.pid === pid && a.what.startsWith('open fd')).map((a) => `${a.what}: ${a.outcome}`);
        console.log(`      the intruder read ${report.environ[pid]?.length} PROCESS_SANDBOX_* variables (${report.environ[pid]?.map((kv) => kv.split('=')[0].slice(16)).join(', ')}), fd 4 = ${report.fdLinks[pid]?.[4]}; ${[...new Set(tried)].slice(0, 3).join(', ')}…`);
        expect(report.targets, 'the intruder found the starting worker').to.include(pid);
        expect(report.successes, JSON.stringify(report.attempts)).to.equal(0);
        expect(report.environ[pid].filter((kv) => /PIPE|TOKEN/.test(kv))).to.deep.equal([]);
        // The channel descriptor was tried, and a socket cannot be reopened through /proc.
        expect(report.attempts.filter((a) => a.pid === pid && a.what === 'open fd 4').map((a) => a.outcome)).to.include('ENXIO');
        expect(report.attempts.map((a) => a.outcome)).to.not.include.members(['connected', 'opened']);

        const proxy = await creating;
        try {
          const pool = ProcessProxy.poolOf(proxy);
          expect(await proxy.pid()).to.equal(pid);
          for (let i = 0; i < 5; i++) expect(await proxy.echo(`B's value ${i}`)).to.equal(`B's value ${i}`);
          expect(pool.stats().totals).to.include({ failed: 0 });
          expect(logger.lines.filter((l) => l.level === 'error' || /dropped a connection/.test(l.msg))).to.deep.equal([]);
          if (options.user) {
            // Running as a user of its own, the worker made itself non-dumpable before its Hello: once
            // it runs, the other processes of that uid cannot even read its environment or descriptors.
            const again = await intruder.attack(`${TEST_RUN_MARKER}=${process.env[TEST_RUN_MARKER]}`, 1, [pid]);
            const onB = again.attempts.filter((a) => a.pid === pid).map((a) => `${a.what}: ${a.outcome}`);
            expect(onB).to.deep.equal(['read environ: EACCES', 'list fds: EACCES']);
            expect(again.successes).to.equal(0);
          }
          expect(await proxy.echo('still B')).to.equal('still B');
        } finally {
          await ProcessProxy.poolOf(proxy).dispose();
        }
      });
    }
  });

  describe('the Windows pipe listener (its logic, run on a Unix socket path)', function () {
    let dir;
    let listeners = [];
    let next = 0;
    beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'ps-listener-'))));
    afterEach(() => {
      for (const l of listeners) {
        l.listener.close();
        for (const a of l.events.accepted) a.channel.destroy();
      }
      listeners = [];
      rmSync(dir, { recursive: true, force: true });
    });

    function listen(logger = memoryLogger(), helloTimeoutMs = 10_000) {
      const events = { accepted: [], failed: [] };
      const listener = new PipeListener(1 << 20, helloTimeoutMs, logger, { onAccepted: (a) => events.accepted.push(a), onFailed: (e) => events.failed.push(e) }, join(dir, `l${++next}.sock`));
      const plan = { options: { env: {}, stdio: [] } };
      listener.prepare(plan);
      const entry = { listener, events, logger, path: listener.path, token: plan.options.env.PROCESS_SANDBOX_TOKEN };
      listeners.push(entry);
      return entry;
    }

    it('garbage, invalid MessagePack, a non-message, an unknown kind, a wrong-token Hello of any length: all dropped unanswered; the right Hello gets in, and nobody after it', async () => {
      const { path, token, events, logger } = listen();
      expect(token).to.be.a('string').with.length.above(30);
      const strangers = {
        'an HTTP request': Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'),
        'random bytes': Buffer.from('9f3a0c7e55d1b2e4a8c6f0e1d2c3b4a5', 'hex'),
        'invalid MessagePack (0xc1 is never used)': encodeFrame(Buffer.from([0xc1, 0xc1, 0xc1])),
        'MessagePack that is not a message (a map)': frame({ hello: 'world' }),
        'a message of an unknown kind': frame([99, PROTOCOL_VERSION, token, 4242]),
        'an Init (host-to-worker kind) first': frame([MessageKind.Init, '/etc/passwd', 'default', null, { healthIntervalMs: 0, maxMessageBytes: 1024 }]),
        'a Result for call 1 first': frame([MessageKind.Result, 1, 'forged', null]),
        'a Hello with a wrong token of the same length': frame([MessageKind.Hello, PROTOCOL_VERSION, 'x'.repeat(token.length), 4242]),
        'a Hello with a wrong token one character off': frame([MessageKind.Hello, PROTOCOL_VERSION, token.slice(0, -1) + (token.endsWith('A') ? 'B' : 'A'), 4242]),
        'a Hello with a shorter wrong token': frame([MessageKind.Hello, PROTOCOL_VERSION, token.slice(0, 8), 4242]),
        'a Hello with a longer wrong token': frame([MessageKind.Hello, PROTOCOL_VERSION, token + 'x', 4242]),
        'a Hello with an empty token': frame([MessageKind.Hello, PROTOCOL_VERSION, '', 4242]),
        'a Hello whose token is not a string': frame([MessageKind.Hello, PROTOCOL_VERSION, Buffer.from(token), 4242]),
        'a Hello of another protocol version': frame([MessageKind.Hello, PROTOCOL_VERSION + 1, token, 4242]),
        'a Hello frame larger than the Hello cap': frame([MessageKind.Hello, PROTOCOL_VERSION, 'z'.repeat(4096), 4242]),
      };
      for (const [what, bytes] of Object.entries(strangers)) {
        const answer = await strangerSends(path, bytes);
        expect(answer.length, `bytes answered to ${what}`).to.equal(0);
      }
      expect(events.accepted).to.deep.equal([]);
      expect(events.failed).to.deep.equal([]);
      // The first drops are logged one by one, with a reason; a flood would not flood the log.
      const drops = logger.lines.filter((l) => /dropped a connection/.test(l.msg));
      expect(drops).to.have.length(8);
      expect(drops.filter((d) => /wrong token/.test(d.obj.why)).length).to.be.at.least(1);

      const worker = connect(path, () => worker.write(frame([MessageKind.Hello, PROTOCOL_VERSION, token, 4242])));
      worker.on('error', () => {});
      const received = [];
      worker.on('data', (chunk) => received.push(chunk));
      await waitFor(() => events.accepted.length === 1, 'the listener to accept the worker');
      // The accepted channel is this worker's connection: what the host sends on it, the worker reads.
      const shutdown = frame([MessageKind.Shutdown]);
      events.accepted[0].channel.sendFrame(shutdown);
      await waitFor(() => Buffer.concat(received).equals(shutdown), 'the worker to read what the host sent on the accepted channel');
      // Once the worker is in, the listener is closed: nobody else can connect.
      const late = await new Promise((resolve) => connect(path).on('error', resolve).on('connect', () => resolve(undefined)));
      expect(late?.code).to.be.oneOf(['ENOENT', 'ECONNREFUSED']);
      worker.destroy();
    });

    it(`holds at most ${MAX_UNPROVEN} unproven connections at once (a flood is destroyed as it arrives), and gives up after ${MAX_STRANGERS} strangers: no host descriptor is held`, async () => {
      const { path, events } = listen();
      const fdsBefore = openFds();
      const open = (path) =>
        new Promise((resolve) => {
          const socket = connect(path, () => resolve(socket));
          socket.on('error', () => {});
          socket.closedAt = undefined;
          socket.on('close', () => (socket.closedAt = performance.now()));
        });
      const waiting = [];
      for (let i = 0; i < MAX_UNPROVEN; i++) waiting.push(await open(path));
      const flood = [];
      for (let i = 0; i < 20; i++) flood.push(await open(path));
      const floodClosed = await waitFor(() => flood.every((s) => s.closedAt !== undefined), 'every flooding connection to be closed');
      expect(floodClosed, 'every connection beyond the first ones was closed by the host').to.equal(true);
      expect(waiting.filter((s) => s.closedAt !== undefined), 'the first ones still wait for their Hello').to.deep.equal([]);
      for (let i = flood.length; i < MAX_STRANGERS && events.failed.length === 0; i++) (await open(path)).destroy();
      await waitFor(() => events.failed.length === 1, 'the listener to give up');
      expect(events.failed).to.have.length(1);
      expect(events.failed[0].message).to.match(/failed to prove the token/);
      await waitFor(() => waiting.every((s) => s.closedAt !== undefined), 'the waiting strangers to be closed');
      expect(waiting.every((s) => s.closedAt !== undefined), 'giving up drops the waiting ones').to.equal(true);
      const fdsAfter = await waitFor(() => (openFds() <= fdsBefore ? openFds() : undefined), 'the host\'s descriptors back to their count before');
      expect(fdsAfter, `host descriptors: ${openFds()} after, ${fdsBefore} before`).to.not.equal(undefined);
    });

    it('fast-check: arbitrary bytes or arbitrary first messages from strangers are never answered', async () => {
      let current = listen();
      const payload = fc.oneof(
        fc.uint8Array({ minLength: 0, maxLength: 96 }).map((a) => Buffer.from(a)),
        // A valid frame around arbitrary MessagePack: most protocol-shaped garbage
        fc.tuple(fc.integer({ min: -2, max: 12 }), fc.array(fc.jsonValue({ maxDepth: 2 }).filter((v) => !JSON.stringify(v).includes('"__proto__"')), { maxLength: 4 })).map(([kind, rest]) => frame([kind, ...rest])),
        // Hellos with random wrong tokens and pids
        fc.tuple(fc.string({ maxLength: 80 }), fc.integer()).map(([t, p]) => frame([MessageKind.Hello, PROTOCOL_VERSION, t, p])),
      );
      let runs = 0;
      await fc.assert(
        fc.asyncProperty(payload, async (bytes) => {
          // A listener gives up after MAX_STRANGERS: the next one takes over, as the pool's next worker would.
          if (current.events.failed.length > 0) current = listen();
          if (bytes.includes(current.token)) return true;
          runs++;
          const answer = await strangerSends(current.path, bytes);
          return answer.length === 0;
        }),
        { numRuns: 150, interruptAfterTimeLimit: 5000 },
      );
      expect(runs).to.be.at.least(20);
      console.log(`      ${runs} strangers sent fast-check payloads to ${listeners.length} listener(s); none was answered`);
      expect(listeners.flatMap((l) => l.events.accepted)).to.deep.equal([]);
    });

    it('the token check hashes both sides before timingSafeEqual, so no length or prefix shortcut exists', async () => {
      // The behaviour is asserted above (wrong tokens of the same, shorter and longer length are all
      // dropped alike); this pins the constant-time path in the built code the host runs.
      const hello = readFileSync(new URL('../packages/core/dist/hello.js', import.meta.url), 'utf8');
      expect(hello).to.match(/timingSafeEqual\(digest\(message\[2\]\), token\)/);
      expect(hello).to.match(/createHash\('sha256'\)/);
      const listener = readFileSync(new URL('../packages/core/dist/pipe-endpoint.js', import.meta.url), 'utf8');
      expect(listener).to.match(/helloProblem\(message, this\.#tokenDigest\)/);
      for (const source of [hello, listener]) {
        expect(source, 'no direct comparison with the token').to.not.match(/(===|!==|==|!=)\s*(this\.#token|token)\b|(this\.#token|\btoken)\s*(===|!==|==|!=)|\.token\.(localeCompare|startsWith)/);
      }
    });
  });

  describe('a worker that breaks the protocol', function () {
    const fake = { workerModule: fixture('torture.mjs'), execArgv: [fileURLToPath(new URL('./fixtures/fake-worker.mjs', import.meta.url))], maxPoolSize: 1 };

    for (const [method, why] of [
      ['wrongId', /protocol error: reply to call \d+, but call \d+ is in flight/],
      ['failureWrongId', /protocol error: reply to call \d+, but call \d+ is in flight/],
      ['unknownKind', /protocol error: unexpected message kind 99/],
      ['readyAgain', /protocol error: Ready outside the handshake/],
      ['garbage', /protocol error: Undecodable frame/],
    ]) {
      it(`${method}: the worker is killed, its call fails with WorkerCrashedError, calls behind it succeed once each, the host carries on`, async () => {
        const logger = memoryLogger();
        const proxy = await createProxy({ ...fake, logger });
        const pool = ProcessProxy.poolOf(proxy);
        const crashed = [];
        pool.on('workerCrashed', (e) => crashed.push(e));
        const first = await proxy.pid();
        const bad = counted(proxy[method]('poison'));
        const behind = Array.from({ length: 5 }, (_, i) => counted(proxy.echo(`behind-${i}`)));
        await Promise.all([bad.done, ...behind.map((b) => b.done)]);

        expect(bad.error, `${method} rejected`).to.be.an.instanceOf(WorkerCrashedError);
        expect(bad.error).to.include({ pid: first, method });
        expect(bad.error.message).to.match(why);
        // Only the call on the broken worker failed; nothing got the forged reply ('poison').
        behind.forEach((b, i) => expect(b.value, `echo behind-${i}`).to.equal(`behind-${i}`));
        await new Promise((resolve) => setTimeout(resolve, 50));
        for (const entry of [bad, ...behind]) expect(entry.settlements).to.equal(1);
        // A message the host could decode but not accept is logged as a protocol error; an undecodable
        // frame is reported through the call's error and the crash event (not logged at error level).
        if (method !== 'garbage') expect(logger.lines.some((l) => l.level === 'error' && /protocol error from worker/.test(l.msg))).to.equal(true);
        await waitFor(() => crashed.length > 0, 'a workerCrashed event');
        expect(crashed).to.have.length(1);
        expect(crashed[0]).to.include({ pid: first, method, reason: 'protocol' });
        expect(crashed[0].detail).to.match(why);
        await waitFor(() => !isAlive(first), 'the first worker to exit');
        expect(isAlive(first), 'the broken worker is gone').to.equal(false);
        expect(await proxy.pid()).to.not.equal(first);
        expect(pool.stats().totals).to.include({ calls: 8, succeeded: 7, failed: 1 });
      });
    }

    it('twice: the first reply settles its call, the duplicate settles nothing else, kills the worker and fails only the call it ran into', async () => {
      const logger = memoryLogger();
      const proxy = await createProxy({ ...fake, logger });
      const pool = ProcessProxy.poolOf(proxy);
      const first = await proxy.pid();
      const settledEvents = [];
      pool.on('callSettled', (e) => settledEvents.push(e));
      const twice = counted(proxy.twice('once'));
      const next = counted(proxy.echo('next'));
      await Promise.all([twice.done, next.done]);
      expect(twice.value).to.equal('once');
      // The call in flight when the duplicate arrived (sent ahead to the same worker) fails as a crash,
      // never with the duplicate's value; had it not been sent yet, it would have succeeded elsewhere.
      if (next.error) {
        expect(next.error).to.be.an.instanceOf(WorkerCrashedError);
        expect(next.error).to.include({ pid: first, method: 'echo' });
      } else {
        expect(next.value).to.equal('next');
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
      expect([twice.settlements, next.settlements]).to.deep.equal([1, 1]);
      expect(settledEvents).to.have.length(2);
      expect(logger.lines.some((l) => l.level === 'error' && /reply to call \d+/.test(l.obj?.why ?? ''))).to.equal(true);
      await waitFor(() => !isAlive(first), 'the first worker to exit');
      expect(isAlive(first)).to.equal(false);
      expect(await proxy.echo('after')).to.equal('after');
    });
  });
});

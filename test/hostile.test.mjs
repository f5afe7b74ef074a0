// Hostile peers. A stranger that connects to a worker's pipe while the worker starts (the window
// in which the pipe listens) and sends anything at all — garbage, invalid MessagePack, a frame of an
// unknown kind, a well-formed Hello with a wrong token of the same or another length — is dropped
// without a byte in reply, and the real worker and its calls go on. A worker that breaks the protocol
// (a reply with an unknown correlation id, a reply sent twice, a message of an unknown kind) is
// killed; the call it was running fails with WorkerCrashedError, no other call is settled by it,
// nothing settles twice, and the host carries on.
// (test/transport.test.mjs covers the 0700 directory, the token not in argv, and the 2 GiB prefix.)
import { expect } from 'chai';
import fc from 'fast-check';
import { readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { encodeFrame, encodeValue, MessageKind, PROTOCOL_VERSION } from '@process-sandbox/abstractions';
import { ProcessProxy, WorkerCrashedError } from '@process-sandbox/core';
import { createProxy, disposeProxies, fixture, memoryLogger, rejectionOf } from './support/pools.mjs';
import { environOf, isAlive, markedProcesses, waitFor } from './support/processes.mjs';

/**
 * Connects, sends `bytes` and half-closes (so that an incomplete frame does not wait for the hello
 * deadline); resolves with every byte the host sent back before the connection closed.
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

/** Starts a pool whose worker waits `delayMs` before it connects; resolves with the pipe, the token and the pending create(). */
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
  const env = await waitFor(() => {
    const e = environOf(pid);
    return e.PROCESS_SANDBOX_PIPE ? e : undefined;
  }, 'the worker to have its pipe in its environment');
  return { pid, pipe: env.PROCESS_SANDBOX_PIPE, token: env.PROCESS_SANDBOX_TOKEN, creating };
}

describe('hostile peers', function () {
  this.timeout(30_000);
  afterEach(disposeProxies);

  describe('a stranger on the pipe while the worker starts', function () {
    it('garbage, invalid MessagePack, a non-message, an unknown kind, a wrong-token Hello of any length: all dropped unanswered; the worker serves', async () => {
      const logger = memoryLogger();
      const { pid, pipe, token, creating } = await startSlowWorker({ logger }, 2000);
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
        'a Hello of another protocol version': frame([MessageKind.Hello, PROTOCOL_VERSION + 1, 'y'.repeat(token.length), 4242]),
        'a Hello frame larger than the Hello cap': frame([MessageKind.Hello, PROTOCOL_VERSION, 'z'.repeat(4096), 4242]),
      };
      for (const [what, bytes] of Object.entries(strangers)) {
        const answer = await strangerSends(pipe, bytes);
        expect(answer.length, `bytes answered to ${what}`).to.equal(0);
      }
      // One that sends nothing at all: still connected when the worker arrives, then dropped with it.
      const silentAnswer = strangerSends(pipe, Buffer.alloc(0), { end: false });

      const proxy = await creating;
      try {
        expect(await proxy.pid()).to.equal(pid);
        expect(await proxy.echo({ still: 'serving' })).to.deep.equal({ still: 'serving' });
        expect((await silentAnswer).length, 'bytes answered to a silent stranger').to.equal(0);
        // Every stranger that sent something was logged as dropped, with a reason.
        const drops = logger.lines.filter((l) => /dropped a connection/.test(l.msg));
        expect(drops.length).to.be.at.least(Object.keys(strangers).length - 2); // an HTTP request and random bytes may be cut off as oversized or incomplete
        expect(drops.filter((d) => /wrong token/.test(d.obj.why))).to.have.length(5);
        expect(drops.filter((d) => /malformed Hello|protocol version/.test(d.obj.why))).to.have.length(2);
        expect(drops.some((d) => /first message is kind 99/.test(d.obj.why))).to.equal(true);
        expect(logger.lines.filter((l) => l.level === 'error')).to.deep.equal([]);
        // Once the worker is in, the pipe is gone: nobody else can connect.
        const late = await new Promise((resolve) => connect(pipe).on('error', resolve).on('connect', () => resolve(undefined)));
        expect(late?.code).to.equal('ENOENT');
      } finally {
        await ProcessProxy.poolOf(proxy).dispose();
      }
    });

    it('fast-check: arbitrary bytes or arbitrary first messages from strangers are never answered', async () => {
      const { pid, pipe, token, creating } = await startSlowWorker({}, 4000);
      const tokenFree = (value) => !JSON.stringify(value ?? null)?.includes(token);
      const payload = fc.oneof(
        fc.uint8Array({ minLength: 0, maxLength: 96 }).map((a) => Buffer.from(a)),
        // A valid frame around arbitrary MessagePack: most protocol-shaped garbage
        fc.tuple(fc.integer({ min: -2, max: 12 }), fc.array(fc.jsonValue({ maxDepth: 2 }), { maxLength: 4 })).filter(tokenFree).map(([kind, rest]) => frame([kind, ...rest])),
        // Hellos with random wrong tokens and pids
        fc.tuple(fc.string({ maxLength: 80 }), fc.integer()).filter(([t]) => t !== token).map(([t, p]) => frame([MessageKind.Hello, PROTOCOL_VERSION, t, p])),
      );
      let runs = 0;
      await fc.assert(
        fc.asyncProperty(payload, async (bytes) => {
          runs++;
          const answer = await strangerSends(pipe, bytes);
          return answer.length === 0;
        }),
        { numRuns: 150, interruptAfterTimeLimit: 3000 },
      );
      expect(runs).to.be.at.least(20);
      console.log(`      ${runs} strangers sent fast-check payloads; none was answered`);
      const proxy = await creating;
      try {
        expect(await proxy.pid()).to.equal(pid);
      } finally {
        await ProcessProxy.poolOf(proxy).dispose();
      }
    });

    it('the token check hashes both sides before timingSafeEqual, so no length or prefix shortcut exists', async () => {
      // The behaviour is asserted above (wrong tokens of the same, shorter and longer length are all
      // dropped alike); this pins the constant-time path in the built code the host runs.
      const source = readFileSync(new URL('../packages/core/dist/pipe-endpoint.js', import.meta.url), 'utf8');
      expect(source).to.match(/timingSafeEqual\(digest\(message\[2\]\), this\.#tokenDigest\)/);
      expect(source).to.match(/createHash\('sha256'\)/);
      expect(source, 'no direct comparison with the token').to.not.match(/(===|!==|==|!=)\s*this\.token|this\.token\s*(===|!==|==|!=)|\.token\.(localeCompare|startsWith)/);
    });
  });

  describe('a worker that breaks the protocol', function () {
    const fake = { workerModule: fixture('torture.mjs'), execArgv: [new URL('./fixtures/fake-worker.mjs', import.meta.url).pathname], maxPoolSize: 1 };

    /** Counts each promise's settlements; resolves with { outcome, count } once the run is over. */
    function counted(promise) {
      const entry = { settlements: 0, value: undefined, error: undefined };
      entry.done = promise.then(
        (value) => {
          entry.settlements++;
          entry.value = value;
        },
        (error) => {
          entry.settlements++;
          entry.error = error;
        },
      );
      return entry;
    }

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

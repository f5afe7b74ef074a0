// What an implementation throws is untrusted input to the host. An error whose stack is an object,
// whose own properties are named `constructor`, `toString`, `then`…, whose code is an object or
// 10,000 characters, whose cause chain carries the same, or whose message is megabytes long: the
// host stays up, the call settles exactly once with a RemoteError that prints, inspects and
// serialises, a callSettled listener works, the worker serves the next call. RemoteError is also
// built directly from hostile objects (throwing getters, Proxies, arbitrary values): it never throws.
//
// Also here: the caller's own frames in the stacks of errors a call fails with; implementations
// with a then() method; and how a fatal error in the worker (unhandled rejection, uncaught
// exception) is attributed: to the call that was running, never to one that had not started.
import { expect } from 'chai';
import fc from 'fast-check';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inspect } from 'node:util';
import { ConfigurationError, ProcessProxy, RemoteError, WorkerCrashedError } from '@process-sandbox/core';
import { createProxy, disposeProxies, fixture, memoryLogger, nextEvent, rejectionOf } from './support/pools.mjs';
import { waitFor, waitForExit } from './support/processes.mjs';

const workerModule = fixture('hostile-errors.mjs');

/** Counts what escapes to the process while a block runs: none of it may. */
function watchHost() {
  const escaped = [];
  const onRejection = (reason) => escaped.push(['unhandledRejection', reason]);
  const onException = (error) => escaped.push(['uncaughtException', error]);
  return {
    escaped,
    start() {
      process.on('unhandledRejection', onRejection);
      process.on('uncaughtException', onException);
    },
    stop() {
      process.off('unhandledRejection', onRejection);
      process.off('uncaughtException', onException);
    },
  };
}

/** Every way callers and loggers turn an error into text: none may throw. */
function expectPrintable(error) {
  expect(String(error)).to.be.a('string');
  expect(error.toString()).to.be.a('string');
  expect(`${error}`).to.be.a('string');
  expect(inspect(error)).to.be.a('string');
  expect(inspect(error, { depth: Infinity, showHidden: true })).to.be.a('string');
  expect(JSON.stringify(error)).to.be.a('string');
  expect(error.stack).to.be.a('string');
  expect(error.message).to.be.a('string');
  expect(error.code).to.be.a('string');
  expect(error.constructor).to.equal(RemoteError);
  expect(typeof error.then).to.equal('undefined');
}

describe('hostile errors thrown by an implementation', function () {
  this.timeout(30_000);
  const host = watchHost();
  let proxy;
  let pool;
  let workerPid;
  const settled = [];

  before(async () => {
    host.start();
    proxy = await createProxy({ workerModule, workerExport: 'HostileErrors', maxPoolSize: 1 });
    pool = ProcessProxy.poolOf(proxy);
    // Any listener made the host crash on `constructor: null` (an OpenTelemetry SDK adds one).
    pool.on('callSettled', (e) => settled.push(e));
    workerPid = await proxy.pid();
  });
  after(async () => {
    host.stop();
    await disposeProxies();
  });
  afterEach(() => expect(host.escaped.map(([what, e]) => `${what}: ${e?.message ?? e}`)).to.deep.equal([]));

  /** Calls `method`, expects exactly one RemoteError settlement, and the worker still serving. */
  async function remoteErrorOf(method, ...args) {
    const before = settled.length;
    const error = await rejectionOf(proxy[method](...args));
    expect(error).to.be.an.instanceOf(RemoteError);
    expectPrintable(error);
    expect(error.method).to.equal(method);
    expect(error.pid).to.equal(workerPid);
    // The next call works, on the same worker: a thrown error is not a crash.
    expect(await proxy.ping('next')).to.equal('next');
    expect(await proxy.pid()).to.equal(workerPid);
    const mine = settled.slice(before).filter((e) => e.method === method);
    expect(mine.map((e) => e.outcome)).to.deep.equal(['ERR_PS_REMOTE']);
    return error;
  }

  it('an error whose stack is { toString: 1 }: the host lives, the call rejects once', async () => {
    const error = await remoteErrorOf('throwStackObject');
    expect(error.message).to.equal('x');
    expect(error.remoteStack).to.equal(undefined);
    expect(error.stack).to.match(/^Error: x\n/);
  });

  it('own properties named like prototype members never shadow them; all are kept in remoteProps', async () => {
    const error = await remoteErrorOf('throwShadowing');
    for (const key of ['constructor', 'toString', 'valueOf', 'toJSON', 'then', 'inspect', 'hasOwnProperty', 'remoteName', 'method', 'pid', 'remoteProps']) {
      expect(Object.getOwnPropertyDescriptor(error, key)?.value, key).to.not.equal('forged');
    }
    expect(Object.hasOwn(error, 'then')).to.equal(false);
    expect(Object.hasOwn(error, 'toString')).to.equal(false);
    expect(error.remoteName).to.equal('Error');
    expect(error.errno).to.equal(24); // clashes with nothing: copied
    expect(error.remoteProps).to.include({ constructor: null, toString: 'x', valueOf: 'v', toJSON: 'j', then: 't', inspect: 'i', remoteName: 'forged', method: 'forged', pid: -1, remoteProps: 'forged', errno: 24 });
    expect(Object.getPrototypeOf(error.remoteProps)).to.equal(null);
    const json = JSON.parse(JSON.stringify(error));
    expect(json).to.include({ name: 'RemoteError', code: 'ERR_PS_REMOTE', message: 'shadowing', method: 'throwShadowing', remoteName: 'Error' });
    expect(json.remoteProps.toString).to.equal('x');
    // Awaiting it does not treat it as a thenable.
    expect(await Promise.resolve(error)).to.equal(error);
  });

  it('`constructor: null` with a callSettled listener: no unhandled rejection, the class code is reported', async () => {
    const error = await remoteErrorOf('throwConstructorNull');
    expect(error.remoteProps.constructor).to.equal(null);
  });

  it('takes the remote code only when it is a short string or a finite number', async () => {
    expect((await remoteErrorOf('throwOddCodes', 'object')).code).to.equal('ERR_PS_REMOTE');
    expect((await remoteErrorOf('throwOddCodes', 'long')).code).to.equal('ERR_PS_REMOTE');
    expect((await remoteErrorOf('throwOddCodes', 'number')).code).to.equal('42');
    expect((await remoteErrorOf('throwOddCodes', 'fine')).code).to.equal('E_FINE');
    // The metric label stays the class's code whatever the instance carries.
    expect(settled.filter((e) => e.method === 'throwOddCodes').map((e) => e.outcome)).to.deep.equal(Array(4).fill('ERR_PS_REMOTE'));
  });

  it('rebuilds hostile errors in the cause chain and in properties (AggregateError-like `errors`) safely', async () => {
    const error = await remoteErrorOf('throwHostileCause');
    expect(error.message).to.equal('top');
    expect(error.cause).to.be.an.instanceOf(Error);
    expect(error.cause.message).to.equal('root');
    expect(String(error.cause)).to.equal('Error: root');
    expect(inspect(error.cause)).to.be.a('string');
    expect(error.errors).to.have.length(1);
    expect(error.errors[0]).to.be.an.instanceOf(Error);
    expect(inspect(error.errors[0])).to.be.a('string');
  });

  it('bounds a 4 MB message and stack', async () => {
    const error = await remoteErrorOf('throwHuge');
    expect(error.message.length).to.be.below(70 * 1024);
    expect(error.message).to.match(/more characters cut\]$/);
    expect(error.remoteStack.length).to.be.below(260 * 1024);
  });
});

describe('RemoteError built directly from hostile values', function () {
  const thrower = () => {
    throw new Error('getter ran');
  };
  const cases = {
    'getters that throw': Object.defineProperties(Object.create(Error.prototype), {
      name: { get: thrower },
      message: { get: thrower },
      stack: { get: thrower },
      code: { get: thrower, enumerable: true },
      cause: { get: thrower },
      extra: { get: thrower, enumerable: true },
    }),
    'a Proxy whose every trap throws': new Proxy(new Error('p'), {
      get: thrower,
      getOwnPropertyDescriptor: thrower,
      ownKeys: thrower,
      getPrototypeOf: thrower,
      has: thrower,
    }),
    'a revoked Proxy': (() => {
      const { proxy, revoke } = Proxy.revocable({}, {});
      revoke();
      return proxy;
    })(),
    'an error whose prototype is a throwing Proxy': Object.setPrototypeOf({ message: 'm' }, new Proxy({}, { getOwnPropertyDescriptor: thrower, getPrototypeOf: thrower })),
    'non-string fields': Object.assign(new Error('n'), { name: { toString: 1 }, message: Symbol('s'), stack: 12, code: { valueOf: thrower } }),
    'fields whose coercion throws': Object.assign(Object.create(null), {
      name: { [Symbol.toPrimitive]: thrower },
      message: { toString: thrower },
      stack: [thrower],
    }),
    'a huge BigInt message': Object.assign(new Error(), { message: 10n ** 5000n }),
    'a cyclic cause chain': (() => {
      const a = new Error('a');
      a.cause = a;
      return a;
    })(),
    'nested hostile errors in properties': Object.assign(new Error('nested'), {
      detail: { inner: Object.assign(new Error('i'), { stack: { toString: 1 } }), list: [Object.assign(new Error('j'), { name: { toString: 1 } })] },
    }),
    '10,000 own properties': Object.assign(new Error('many'), Object.fromEntries(Array.from({ length: 10_000 }, (_, i) => [`p${i}`, i]))),
    'an own __proto__ key': JSON.parse('{"message":"proto","__proto__":{"polluted":true}}'),
    null: null,
    undefined: undefined,
    'a string': 'just a string',
    'a number': 42,
    'a symbol': Symbol('thrown'),
    'a function': () => {},
  };

  for (const [what, value] of Object.entries(cases)) {
    it(`never throws, and prints: ${what}`, () => {
      const error = new RemoteError(value, 'method', 1234);
      expectPrintable(error);
      expect(error.method).to.equal('method');
      expect(error.pid).to.equal(1234);
      expect(error.remoteName).to.be.a('string');
    });
  }

  it('never throws for hostile method and pid arguments either', () => {
    const error = new RemoteError(new Error('e'), { toString: thrower }, { valueOf: thrower });
    expectPrintable(error);
    expect(error.method).to.equal('[an object]');
    expect(error.pid).to.equal(0);
  });

  it('keeps at most 64 properties, and never runs an accessor', () => {
    const error = new RemoteError(cases['10,000 own properties'], 'm', 1);
    expect(Object.keys(error.remoteProps)).to.have.length(64);
    const withGetter = new RemoteError(cases['getters that throw'], 'm', 1);
    expect(Object.hasOwn(withGetter.remoteProps, 'extra')).to.equal(false);
    expect(withGetter.message).to.equal('');
  });

  it('never throws for arbitrary values, as errors or as their fields (property test)', () => {
    const anything = fc.anything({ withBigInt: true, withDate: true, withMap: true, withSet: true, withTypedArray: true, withNullPrototype: true, withObjectString: true, withSparseArray: true });
    fc.assert(
      fc.property(anything, fc.dictionary(fc.constantFrom('name', 'message', 'stack', 'code', 'cause', 'constructor', 'toString', 'then', 'toJSON', '__proto__', 'x'), anything), (value, fields) => {
        for (const remote of [value, Object.assign(new Error('e'), fields)]) {
          const error = new RemoteError(remote, 'm', 1);
          String(error);
          inspect(error);
          JSON.stringify(error);
          if (typeof error.stack !== 'string' || typeof error.code !== 'string') return false;
        }
        return true;
      }),
      { numRuns: 500 },
    );
  });
});

describe("the caller's frames in the stack of an error", function () {
  this.timeout(30_000);
  afterEach(disposeProxies);

  async function aCallerNamedDistinctly(proxy, method) {
    return await proxy[method]();
  }
  /** Not async, and does not await: only a captured call site can show it. */
  function aSyncMiddleman(proxy, method) {
    return proxy[method]();
  }
  async function anAsyncOuter(proxy, method) {
    return await aSyncMiddleman(proxy, method);
  }

  it("a RemoteError's stack shows the remote stack, then the caller's own async function (default: async frames)", async () => {
    const proxy = await createProxy({ workerModule, workerExport: 'HostileErrors' });
    const error = await rejectionOf(aCallerNamedDistinctly(proxy, 'throwConstructorNull'));
    expect(error).to.be.an.instanceOf(RemoteError);
    const [remote, local] = error.stack.split(/\n {4}--- in worker \d+, throwConstructorNull\(\) called at ---\n/);
    expect(remote).to.match(/^Error: no constructor\n\s+at HostileErrors\.throwConstructorNull/);
    expect(local, error.stack).to.be.a('string').and.match(/^\s+at async aCallerNamedDistinctly \(.*hostile-errors\.test\.mjs/);
    expect(local).to.not.include('worker-handle.js').and.not.include('dispatcher.js').and.not.include('node:internal');
  });

  it("other errors a call fails with get the caller's frames appended", async () => {
    const proxy = await createProxy({ workerModule, workerExport: 'HostileErrors' });
    const error = await rejectionOf(aCallerNamedDistinctly(proxy, 'leakRejection'));
    expect(error).to.be.an.instanceOf(WorkerCrashedError);
    expect(error.stack).to.match(/\n {4}--- leakRejection\(\) called at ---\n\s+at async aCallerNamedDistinctly /);
  });

  it('a call through a lease gets them too', async () => {
    const proxy = await createProxy({ workerModule, workerExport: 'HostileErrors' });
    const error = await ProcessProxy.session(proxy, (leased) => rejectionOf(aCallerNamedDistinctly(leased, 'throwConstructorNull')));
    expect(error).to.be.an.instanceOf(RemoteError);
    expect(error.stack).to.match(/called at ---\n\s+at async aCallerNamedDistinctly /);
  });

  it('async frames show the awaiting async functions only; captureCallerStack: true shows the whole synchronous stack', async () => {
    const plain = await createProxy({ workerModule, workerExport: 'HostileErrors' });
    const asyncOnly = await rejectionOf(anAsyncOuter(plain, 'throwConstructorNull'));
    expect(asyncOnly.stack).to.match(/called at ---\n\s+at async anAsyncOuter /).and.not.include('aSyncMiddleman');
    const captured = await createProxy({ workerModule, workerExport: 'HostileErrors', captureCallerStack: true });
    const full = await rejectionOf(anAsyncOuter(captured, 'throwConstructorNull'));
    expect(full.stack).to.match(/called at ---\n\s+at aSyncMiddleman \(.*\n\s+at anAsyncOuter /);
    expect(full.stack.split('called at ---')[1]).to.not.include('dispatcher.js').and.not.include('process-proxy.js');
  });

  it('captureCallerStack must be a boolean', async () => {
    const error = await rejectionOf(ProcessProxy.create({ workerModule, workerExport: 'HostileErrors', captureCallerStack: 'yes' }));
    expect(error).to.be.an.instanceOf(ConfigurationError);
    expect(error.option).to.equal('captureCallerStack');
  });
});

describe('an implementation with a then() method', function () {
  this.timeout(30_000);
  afterEach(disposeProxies);

  for (const workerExport of ['WithThen', 'withThenObject', 'withThenFactory']) {
    it(`is served as is, not awaited: ${workerExport}`, async () => {
      const proxy = await createProxy({ workerModule, workerExport, processStartTimeoutMs: 10_000 });
      expect(await proxy.ping(7)).to.equal(7);
      // then() is not a remote method: the proxy must never be a thenable.
      expect(proxy.then).to.equal(undefined);
      expect(await Promise.resolve(proxy)).to.equal(proxy);
      expect(ProcessProxy.poolOf(proxy).methods).to.not.include('then');
    });
  }

  it('a factory that returns a Promise is still awaited', async () => {
    const proxy = await createProxy({ workerModule, workerExport: 'asyncFactory', workerOptions: { a: 1 } });
    expect(await proxy.ping(7)).to.deep.equal([7, { a: 1 }]);
  });
});

describe('fatal errors in the worker are attributed to the call that was running, or to none', function () {
  this.timeout(30_000);
  const host = watchHost();
  let dir;
  beforeEach(() => {
    host.start();
    dir = mkdtempSync(join(tmpdir(), 'ps-hostile-errors-'));
  });
  afterEach(async () => {
    host.stop();
    rmSync(dir, { recursive: true, force: true });
    await disposeProxies();
    expect(host.escaped.map(([what, e]) => `${what}: ${e?.message ?? e}`)).to.deep.equal([]);
  });

  async function singleWorker(extra = {}) {
    const proxy = await createProxy({ workerModule, workerExport: 'HostileErrors', maxPoolSize: 1, ...extra });
    const pool = ProcessProxy.poolOf(proxy);
    const settled = [];
    pool.on('callSettled', (e) => settled.push(`${e.method}:${e.outcome}`));
    return { proxy, pool, settled, pid: await proxy.pid() };
  }

  it('a rejection left unhandled by a method that returned at once fails that call, not the next', async () => {
    const { proxy, settled, pid } = await singleWorker();
    const leaking = proxy.leakRejection();
    const next = proxy.ping('next'); // sent ahead to the same worker
    const error = await rejectionOf(leaking);
    expect(error).to.be.an.instanceOf(WorkerCrashedError);
    expect(error.method).to.equal('leakRejection');
    expect(error.exitCode).to.equal(70);
    expect(error.pid).to.equal(pid);
    expect(error.cause?.message).to.equal('leaked by leakRejection');
    expect(await next).to.equal('next');
    expect(await proxy.pid()).to.not.equal(pid);
    await waitForExit([pid]);
    expect(settled.slice(1)).to.deep.equal(['leakRejection:ERR_PS_WORKER_CRASHED', 'ping:success', 'pid:success']);
  });

  for (const [method, args, message] of [
    ['rejectWhileRunning', [500], 'stray rejection while running'],
    // The method ends just after the rejection is reported: the dying worker must not start the next call.
    ['rejectThenFinishSoon', [], 'stray rejection, then finished'],
  ]) {
    it(`an unhandled rejection while a call runs fails that call; the call sent ahead runs once, on the replacement (${method})`, async () => {
      const { proxy, pid } = await singleWorker();
      const runs = join(dir, 'runs');
      const running = proxy[method](...args);
      const ahead = proxy.appendRun(runs, 'ahead');
      const error = await rejectionOf(running);
      expect(error).to.be.an.instanceOf(WorkerCrashedError);
      expect(error.method).to.equal(method);
      expect(error.exitCode).to.equal(70);
      expect(error.cause?.message).to.equal(message);
      const aheadPid = await ahead;
      expect(aheadPid).to.not.equal(pid);
      expect(readFileSync(runs, 'utf8')).to.equal(`ahead ${aheadPid}\n`); // exactly once, never in the dying worker
      await waitForExit([pid]);
    });
  }

  it('an uncaught exception while a call runs fails that call', async () => {
    const { proxy, pid } = await singleWorker();
    const error = await rejectionOf(proxy.throwFromTimerWhileRunning(2000));
    expect(error).to.be.an.instanceOf(WorkerCrashedError);
    expect(error.method).to.equal('throwFromTimerWhileRunning');
    expect(error.cause?.message).to.equal('uncaught while running');
    expect(await proxy.ping(1)).to.equal(1);
    await waitForExit([pid]);
  });

  it('an unhandled rejection while the worker is idle fails no call; the worker is replaced', async () => {
    const logger = memoryLogger();
    const { proxy, pool, settled, pid } = await singleWorker({ logger });
    const crashed = nextEvent(pool, 'workerCrashed');
    expect(await proxy.rejectLater(50)).to.equal('scheduled');
    const crash = await crashed;
    expect(crash.pid).to.equal(pid);
    expect(crash.exitCode).to.equal(70);
    expect(crash.method).to.equal(undefined);
    await waitForExit([pid]);
    expect(await proxy.ping('after')).to.equal('after');
    expect(settled).to.deep.equal(['pid:success', 'rejectLater:success', 'ping:success']);
    expect(pool.stats().totals.failed).to.equal(0);
    const said = await waitFor(() => logger.lines.find((l) => /unhandled rejection while idle: Error: rejected while idle/.test(l.msg)), 'the worker\'s line about the rejection while idle');
    expect(said, 'the worker says on stderr that it was idle').to.not.equal(undefined);
  });
});

import { expect } from 'chai';
import { ConfigurationError, ProcessProxy, WorkerStartError } from '@process-sandbox/core';
import { createProxy, disposeProxies, fixture, rejectionOf } from './support/pools.mjs';

/**
 * create() must fail with WorkerStartError naming the reason, and fast: on the failure itself, not
 * by the start timeout (processStartTimeoutMs, 10 s by default), whose reason would say so.
 */
async function startFailure(options, reason) {
  const error = await rejectionOf(ProcessProxy.create(options));
  expect(error, error.stack).to.be.an.instanceOf(WorkerStartError);
  expect(error.code).to.equal('ERR_PS_WORKER_START');
  expect(error.reason).to.match(reason);
  expect(error.reason, 'failed on the failure itself, not by the start timeout').to.not.match(/did not become ready within/);
  return error;
}

describe('starting workers', function () {
  afterEach(disposeProxies);

  describe('start-up failures give WorkerStartError with the reason, fast', function () {
    it('a missing module file', async () => {
      await startFailure({ workerModule: '/nonexistent/dir/impl.mjs' }, /workerModule not found: \/nonexistent\/dir\/impl\.mjs/);
    });
    it('a missing export, listing the exports there are', async () => {
      await startFailure({ workerModule: fixture('torture.mjs'), workerExport: 'Nope' }, /has no export 'Nope'; it exports: .*Torture/);
    });
    it('a constructor that throws', async () => {
      await startFailure({ workerModule: fixture('ctor-throws.mjs'), workerExport: 'Broken' }, /constructor of 'Broken' threw: Error: constructor refuses to build/);
    });
    it('a module that throws while loading, with the worker stderr tail', async () => {
      await startFailure({ workerModule: fixture('throws-on-load.mjs') }, /threw: Error: module exploded while loading/);
    });
    it('a factory that returns no object', async () => {
      await startFailure({ workerModule: fixture('forms.mjs'), workerExport: 'badFactory' }, /factory 'badFactory' returned number/);
    });
    it('an export that is neither class, object nor function', async () => {
      await startFailure({ workerModule: fixture('forms.mjs'), workerExport: 'notCallable' }, /is a number; expected a class, an object or a factory function/);
    });
    it('a worker that does not complete the handshake in time', async () => {
      // A node flag that makes the process wait for ever before running the worker entry point.
      const error = await rejectionOf(ProcessProxy.create({ workerModule: fixture('torture.mjs'), workerExport: 'Torture', execArgv: ['--import', 'data:text/javascript,await new Promise(() => setInterval(() => {}, 1000))'], processStartTimeoutMs: 500 }));
      expect(error).to.be.an.instanceOf(WorkerStartError);
      expect(error.reason).to.match(/did not become ready within processStartTimeoutMs \(500 ms\)/);
    });
  });

  describe('the forms an implementation can take', function () {
    it('an ES class (own and inherited methods, no constructor, accessors not read)', async () => {
      const proxy = await createProxy({ workerModule: fixture('forms.mjs'), workerExport: 'Derived' });
      expect(await proxy.own()).to.equal('own');
      expect(await proxy.inherited()).to.equal('from base');
      expect([...ProcessProxy.poolOf(proxy).methods].sort()).to.deep.equal(['inherited', 'own']);
    });
    it('a plain object, used as is', async () => {
      const proxy = await createProxy({ workerModule: fixture('forms.mjs'), workerExport: 'plainObject' });
      expect(await proxy.kind()).to.equal('object');
    });
    it('an async factory, awaited before the worker reports ready, given workerOptions', async () => {
      const proxy = await createProxy({ workerModule: fixture('forms.mjs'), workerExport: 'factory', workerOptions: { greeting: 'hi' } });
      expect(await proxy.kind()).to.equal('factory');
      expect(await proxy.greeting()).to.equal('hi');
    });
    it('a CommonJS module, named export', async () => {
      const proxy = await createProxy({ workerModule: fixture('cjs-impl.cjs'), workerExport: 'CjsImpl' });
      expect(await proxy.hello('you')).to.equal('hello you from CommonJS');
    });
    it('a CommonJS module, module.exports = class, with the default workerExport', async () => {
      const proxy = await createProxy({ workerModule: fixture('cjs-default.cjs') });
      expect(await proxy.kind()).to.equal('cjs default class');
    });
    it('a workerModule given as a path string rather than a URL', async () => {
      const { fileURLToPath } = await import('node:url');
      const proxy = await createProxy({ workerModule: fileURLToPath(fixture('torture.mjs')), workerExport: 'Torture' });
      expect(await proxy.echo(1)).to.equal(1);
    });
    it('minPoolSize workers are ready when create() resolves', async () => {
      const proxy = await createProxy({ workerModule: fixture('torture.mjs'), workerExport: 'Torture', minPoolSize: 3, maxPoolSize: 3 });
      const workers = ProcessProxy.poolOf(proxy).stats().workers;
      expect(workers).to.have.length(3);
      expect(workers.every((w) => w.state === 'idle' && w.pid > 0)).to.equal(true);
    });
  });

  describe('options are validated up front', function () {
    const base = { workerModule: fixture('torture.mjs') };
    const bad = [
      [{}, 'workerModule', /is required/],
      [{ workerModule: 'relative/impl.mjs' }, 'workerModule', /absolute path or a file: URL/],
      [{ workerModule: 42 }, 'workerModule', /string or URL/],
      [{ ...base, minPoolSize: -1 }, 'minPoolSize', /between 0 and/],
      [{ ...base, maxPoolSize: 0 }, 'maxPoolSize', /between 1 and/],
      [{ ...base, minPoolSize: 3, maxPoolSize: 2 }, 'minPoolSize', /must not exceed maxPoolSize/],
      [{ ...base, maxPoolSize: 1.5 }, 'maxPoolSize', /whole number/],
      [{ ...base, methodCallTimeoutMs: '100' }, 'methodCallTimeoutMs', /expected a number/],
      [{ ...base, methodCallTimeoutMs: 0 }, 'methodCallTimeoutMs', /between 1 and/],
      [{ ...base, maxQueueSize: -5 }, 'maxQueueSize', /between 0 and/],
      [{ ...base, maxMessageBytes: 10 }, 'maxMessageBytes', /between 1024 and/],
      [{ ...base, workerExport: '' }, 'workerExport', /non-empty string/],
      [{ ...base, execArgv: '--inspect' }, 'execArgv', /array of strings/],
      [{ ...base, execPath: '/no/such/node' }, 'execPath', /no such file/],
      [{ ...base, env: { A: 1 } }, 'env', /value of A must be a string/],
      [{ ...base, cwd: '/no/such/dir' }, 'cwd', /no such directory/],
      [{ ...base, logger: { info() {} } }, 'logger', /debug\(\) method/],
      [{ ...base, maxPoolsize: 2 }, 'maxPoolsize', /unknown option/],
    ];
    for (const [options, option, pattern] of bad) {
      it(`${option}: ${JSON.stringify(options, (k, v) => (k === 'workerModule' && typeof v === 'object' ? '<url>' : v))}`, async () => {
        const error = await rejectionOf(ProcessProxy.create(options));
        expect(error).to.be.an.instanceOf(ConfigurationError);
        expect(error.code).to.equal('ERR_PS_CONFIGURATION');
        expect(error.option).to.equal(option);
        expect(error.message).to.match(pattern);
      });
    }
  });
});

// Integrity pinning (`integrity: 'sha384-…'`), through the public API with real worker processes:
// each worker hashes the workerModule file before loading it, JavaScript or WebAssembly alike, and a
// different file fails the start with a WorkerStartError naming both digests.
import { expect } from 'chai';
import { fileURLToPath } from 'node:url';
import { ConfigurationError, ProcessProxy, WorkerStartError } from '@process-sandbox/core';
import { createProxy, disposeProxies, fixture, rejectionOf } from './support/pools.mjs';
import { sri, startFailure, wasmFile, wasmFixture } from './support/wasm.mjs';

const plugin = wasmFixture('plugin');
const grantLog = { hostFunctions: { module: fileURLToPath(fixture('wasm/host-functions.mjs')), grant: ['log'] } };

describe('integrity', function () {
  this.timeout(60_000);
  afterEach(disposeProxies);

  describe('pinning', function () {
    const js = fileURLToPath(fixture('torture.mjs'));

    it('a JavaScript module with the pinned digest loads (sha256, sha384, sha512)', async () => {
      for (const algorithm of ['sha256', 'sha384', 'sha512']) {
        const proxy = await createProxy({ workerModule: js, workerExport: 'Torture', integrity: sri(js, algorithm) });
        expect(await proxy.echo(algorithm)).to.equal(algorithm);
      }
    });

    it('a JavaScript module whose digest differs is refused, naming both digests', async () => {
      const wrong = sri(fileURLToPath(fixture('forms.mjs')));
      const error = await startFailure({ workerModule: js, workerExport: 'Torture', integrity: wrong }, /integrity mismatch/);
      expect(error.reason).to.include(`expected ${wrong}`);
      expect(error.reason).to.include(`the file has ${sri(js)}`);
    });

    it('a WebAssembly module: the pinned digest loads, another is refused naming both', async () => {
      const proxy = await createProxy({ workerModule: plugin, integrity: sri(plugin, 'sha512'), wasm: grantLog });
      expect(await proxy.add(2, 3)).to.equal(5);
      const other = wasmFile('(module (func (export "f")))');
      const error = await startFailure({ workerModule: plugin, integrity: sri(other), wasm: grantLog }, /integrity mismatch/);
      expect(error.reason).to.include(`expected ${sri(other)}`).and.include(`the file has ${sri(plugin)}`);
    });

    it('reload(): a new module drops the old pin unless it brings its own; a new pin is checked by the new workers', async () => {
      const { resolveOptions, reloadOptions } = await import(new URL('../packages/core/dist/options.js', import.meta.url).href);
      const pinned = resolveOptions({ workerModule: js, integrity: sri(js) });
      expect(reloadOptions(pinned, { workerOptions: 1 }).integrity).to.equal(sri(js));
      expect(reloadOptions(pinned, { workerModule: plugin }).integrity).to.equal(undefined);
      expect(reloadOptions(pinned, { workerModule: plugin, integrity: sri(plugin) }).integrity).to.equal(sri(plugin));
      const proxy = await createProxy({ workerModule: js, workerExport: 'Torture', integrity: sri(js) });
      const pool = ProcessProxy.poolOf(proxy);
      const wrong = sri(fileURLToPath(fixture('forms.mjs')));
      const error = await rejectionOf(pool.reload({ integrity: wrong }));
      expect(String(error?.message ?? error)).to.match(/integrity mismatch/);
      expect(await proxy.echo('still served')).to.equal('still served');
    });

    it('a malformed digest is a ConfigurationError naming integrity', async () => {
      for (const integrity of ['md5-abc', 'sha384-', 'sha384-AAAA', 42]) {
        const error = await rejectionOf(ProcessProxy.create({ workerModule: js, integrity }));
        expect(error, String(integrity)).to.be.an.instanceOf(ConfigurationError);
        expect(error.option).to.equal('integrity');
      }
    });
  });

});

// The worker runtime as core spawns it: one bundled file (packages/worker/scripts/bundle.mjs, run by
// `npm run build`), self-contained but for Node's built-ins and the optional koffi, with its watchdog
// thread bundled beside it; and the check that stops a test run on a stale bundle.
import { expect } from 'chai';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { ProcessProxy } from '@process-sandbox/core';
import { workerBinPath } from '@process-sandbox/worker';
import { BUNDLE_FILES, bundleProblem } from './support/worker-bundle.mjs';
import { createProxy, disposeProxies, fixture } from './support/pools.mjs';

/** Every module specifier a file imports or requires, statically or through esbuild's __require. */
function specifiers(text) {
  const found = new Set();
  for (const re of [/\bfrom\s*["']([^"']+)["']/g, /\bimport\s*["']([^"']+)["']/g, /\brequire\(\s*["']([^"']+)["']\s*\)/g, /\b__require\(\s*["']([^"']+)["']\s*\)/g]) {
    for (const m of text.matchAll(re)) found.add(m[1]);
  }
  return [...found];
}

describe('the worker bundle', function () {
  afterEach(disposeProxies);

  it('is what core spawns: dist/bundle/bin.js, with the watchdog thread beside it', () => {
    expect(workerBinPath).to.equal(BUNDLE_FILES[0]);
    expect(basename(dirname(workerBinPath))).to.equal('bundle');
    expect(readFileSync(BUNDLE_FILES[1], 'utf8')).to.include('parentPort');
  });

  it('needs nothing at run time but Node built-ins and the optional koffi (abstractions and msgpack are inside)', () => {
    for (const file of BUNDLE_FILES) {
      const outside = specifiers(readFileSync(file, 'utf8')).filter((s) => !s.startsWith('node:') && s !== 'koffi');
      expect(outside, `${file} imports`).to.deep.equal([]);
    }
    const bin = readFileSync(BUNDLE_FILES[0], 'utf8');
    expect(bin).to.include('checkCodecInternals'); // the codec's self-check came along, and runs
    // Its round trips ran when the bundle was built (scripts/bundle.mjs), on the msgpack it bundles:
    // the constant that skips them at a worker's start was replaced.
    expect(bin).to.not.include('PROCESS_SANDBOX_CODEC_CHECKED_AT_BUILD');
    expect(bin).to.match(/\bWorkerHost\b/);
  });

  it('a live worker runs it, and serves calls', async function () {
    if (process.platform !== 'linux') this.skip(); // /proc
    const proxy = await createProxy({ workerModule: fixture('spawner.mjs'), workerExport: 'Spawner', maxPoolSize: 1 });
    const pid = await proxy.pid();
    const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    expect(argv).to.include(workerBinPath);
    expect(ProcessProxy.poolOf(proxy).stats().totals.failed).to.equal(0);
  });

  it('a stale or missing bundle is refused, naming the file and the fix', () => {
    const dir = mkdtempSync(join(tmpdir(), 'ps-bundle-'));
    try {
      const input = join(dir, 'dist');
      mkdirSync(join(input, 'bundle'), { recursive: true });
      const bundle = [join(input, 'bundle', 'bin.js'), join(input, 'bundle', 'parent-watchdog-thread.cjs')];
      const source = join(input, 'worker-host.js');
      for (const file of [...bundle, source]) writeFileSync(file, '');
      const at = (file, seconds) => utimesSync(file, seconds, seconds);
      at(source, 1000);
      for (const file of bundle) at(file, 2000);
      expect(bundleProblem(bundle, [input])).to.equal(undefined);
      at(source, 3000); // tsc -b ran again, the bundler did not
      expect(bundleProblem(bundle, [input])).to.match(/older than .*worker-host\.js: run `npm run build`/);
      rmSync(bundle[1]);
      expect(bundleProblem(bundle, [input])).to.match(/parent-watchdog-thread\.cjs is missing: run `npm run build`/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

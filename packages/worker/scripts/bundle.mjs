#!/usr/bin/env node
/**
 * Bundles the worker runtime into one file per thread, so that a worker's start reads two files
 * instead of resolving and loading some thirty modules over three packages (measured in
 * docs/benchmarks.md, "Worker start"):
 *
 *   dist/bundle/bin.js                       the worker's entry (ESM): dist/bin.js and everything it
 *                                            imports, @process-sandbox/abstractions and
 *                                            @msgpack/msgpack included; koffi stays outside
 *                                            (a native addon, optional, loaded when first used)
 *   dist/bundle/parent-watchdog-thread.cjs   the parent watchdog thread (CommonJS), with the process
 *                                            table reader it requires
 *
 * Run after `tsc -b` (the root's `npm run build` does both): it bundles tsc's output, so the bundle
 * runs exactly the code the declarations describe. The two files keep the names and the relative
 * place they have in dist/, so that `new URL('./parent-watchdog-thread.cjs', import.meta.url)` in
 * the bundled bin finds the bundled thread. core spawns dist/bundle/bin.js (workerBinPath).
 *
 * The codec's self-check (abstractions' codec-check.ts) has a costly half, round trips through the
 * codec: it runs here, once, in a bundle of the codec built with the same resolution as bin.js (the
 * build fails if the two did not bundle the same @msgpack/msgpack files), and bin.js is built with
 * PROCESS_SANDBOX_CODEC_CHECKED_AT_BUILD defined, so that its workers check only the members.
 */
import { build } from 'esbuild';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const dist = fileURLToPath(new URL('../dist/', import.meta.url));
const outdir = `${dist}bundle`;
rmSync(outdir, { recursive: true, force: true });

const common = {
  bundle: true,
  platform: 'node',
  target: 'node18', // the worker runs on Node 18 or later (execPath), the packages need 20.19
  outdir,
  // koffi is optional and native: resolved at run time from this package (native.ts), or absent.
  // binaryen is optional too, and large (15 MB): imported only by a worker whose pool sets wasm.fuelPerCall.
  external: ['koffi', 'binaryen'],
  // Readable stack traces from the worker runtime without a source map (a map would point at
  // sources of three packages that this package does not ship).
  minify: false,
  keepNames: true,
  legalComments: 'inline',
  logLevel: 'warning',
};

/** The @msgpack/msgpack files a build's metafile lists, sorted. */
const msgpackInputs = (metafile) => Object.keys(metafile.inputs).filter((path) => path.includes('@msgpack/msgpack')).sort();

// The codec's full self-check, bundled as bin.js bundles the codec, and run now.
const checkDir = mkdtempSync(join(tmpdir(), 'ps-codec-check-'));
let checked;
try {
  checked = await build({
    ...common,
    outdir: checkDir,
    stdin: { contents: "import '@process-sandbox/abstractions';", resolveDir: dist, sourcefile: 'codec-check-entry.js' },
    format: 'esm',
    outExtension: { '.js': '.mjs' },
    banner: { js: "import { createRequire as __bundleCreateRequire } from 'node:module'; const require = __bundleCreateRequire(import.meta.url);" },
    metafile: true,
  });
  await import(pathToFileURL(join(checkDir, 'stdin.mjs')).href); // throws if the codec's check fails
} finally {
  rmSync(checkDir, { recursive: true, force: true });
}

const bin = await build({
  ...common,
  metafile: true,
  define: { PROCESS_SANDBOX_CODEC_CHECKED_AT_BUILD: 'true' },
  entryPoints: [{ in: `${dist}bin.js`, out: 'bin' }],
  format: 'esm',
  outExtension: { '.js': '.js' },
  // CommonJS parts (the process table reader) require Node built-ins; an ES module has no require.
  banner: {
    js: [
      '// @process-sandbox/worker: the worker runtime, bundled (scripts/bundle.mjs). Includes',
      '// @process-sandbox/abstractions (MIT) and @msgpack/msgpack (ISC, https://github.com/msgpack/msgpack-javascript).',
      "import { createRequire as __bundleCreateRequire } from 'node:module';",
      'const require = __bundleCreateRequire(import.meta.url);',
    ].join('\n'),
  },
});

const [ran, shipped] = [msgpackInputs(checked.metafile), msgpackInputs(bin.metafile)];
if (ran.length === 0 || ran.join('\n') !== shipped.join('\n')) {
  rmSync(outdir, { recursive: true, force: true });
  throw new Error(`the codec's self-check ran on other @msgpack/msgpack files than bin.js bundles:\n  checked: ${ran.join(', ')}\n  bundled: ${shipped.join(', ')}`);
}

await build({
  ...common,
  entryPoints: [{ in: `${dist}parent-watchdog-thread.cjs`, out: 'parent-watchdog-thread' }],
  format: 'cjs',
  outExtension: { '.js': '.cjs' },
  banner: { js: '// @process-sandbox/worker: the parent watchdog thread, bundled (scripts/bundle.mjs).' },
});

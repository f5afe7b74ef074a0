// The worker runs from a bundle (packages/worker/dist/bundle/, made by `npm run build` after tsc -b).
// `tsc -b` alone refreshes dist/ but not the bundle, and the tests would then run the old worker:
// the root hook stops the run first, saying so.
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = fileURLToPath(new URL('../../', import.meta.url));
export const BUNDLE_FILES = ['bin.js', 'parent-watchdog-thread.cjs'].map((f) => join(repo, 'packages/worker/dist/bundle', f));
/** What the bundle is made of: tsc's output of the worker and of abstractions (msgpack is pinned). */
export const BUNDLE_INPUTS = ['packages/worker/dist', 'packages/abstractions/dist'].map((d) => join(repo, d));

function scripts(dir, skip) {
  const found = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) {
      if (path !== skip) found.push(...scripts(path, skip));
    } else if (/\.c?js$/.test(entry.name)) found.push(path);
  }
  return found;
}

/** Why the bundle cannot be trusted to be the current code (missing, or older than an input), or undefined. */
export function bundleProblem(bundleFiles = BUNDLE_FILES, inputDirs = BUNDLE_INPUTS) {
  let built = Infinity;
  for (const file of bundleFiles) {
    try {
      built = Math.min(built, statSync(file).mtimeMs);
    } catch {
      return `${file} is missing: run \`npm run build\` (tsc -b alone does not bundle the worker)`;
    }
  }
  const skip = join(bundleFiles[0], '..');
  for (const dir of inputDirs) {
    for (const file of scripts(dir, skip)) {
      if (statSync(file).mtimeMs > built) return `the worker bundle is older than ${file}: run \`npm run build\` (tsc -b alone does not bundle the worker)`;
    }
  }
  return undefined;
}

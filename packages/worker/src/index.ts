import { fileURLToPath } from 'node:url';

/**
 * Absolute path of the worker entry point that core spawns: the worker runtime bundled into one
 * file (scripts/bundle.mjs, run by the build), which loads in a fraction of the time the thirty
 * modules it is made of take (docs/benchmarks.md, "Worker start").
 */
export const workerBinPath: string = fileURLToPath(new URL('./bundle/bin.js', import.meta.url));

import { fileURLToPath } from 'node:url';

/**
 * Absolute path of the worker entry point that core spawns: the worker runtime bundled into one
 * file (scripts/bundle.mjs, run by the build), which loads in a fraction of the time the thirty
 * modules it is made of take (docs/benchmarks.md, "Worker start").
 */
export const workerBinPath: string = fileURLToPath(new URL('./bundle/bin.js', import.meta.url));
/**
 * What the implementation's constructor or factory gets as its second argument (emit()). A callback
 * called after its call ended throws an Error named 'CallbackExpiredError' (check the name: the
 * class lives in the bundled runtime).
 */
export type { WorkerContext } from './worker-events.js';

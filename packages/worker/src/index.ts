import { fileURLToPath } from 'node:url';

/** Absolute path of the worker entry point that core spawns. */
export const workerBinPath: string = fileURLToPath(new URL('./bin.js', import.meta.url));
export type { WorkerContext } from './worker-events.js';
export { CallbackExpiredError } from './callback-stubs.js';

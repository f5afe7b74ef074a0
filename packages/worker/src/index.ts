import { fileURLToPath } from 'node:url';

/** Absolute path of the worker entry point that core spawns. */
export const workerBinPath: string = fileURLToPath(new URL('./bin.js', import.meta.url));
export { WorkerExitCode } from './worker-host.js';
export { methodNames } from './implementation.js';
export { ENV_HOST_PID, ENV_LIFELINE_FD, ENV_LIMITS, ENV_NOT_DUMPABLE, ENV_PARENT_GUARD, LIFELINE_FD, type WorkerLimits } from './guard-env.js';

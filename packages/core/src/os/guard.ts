/**
 * What ties a worker's life to the host's, per platform, behind one interface:
 *  - POSIX (posix.ts): the worker leads its own process group and runs a parent-death watchdog
 *    (in @process-sandbox/worker) fed by a lifeline descriptor and the host's pid;
 *  - Windows (windows.ts): the worker is assigned to a Job Object with KILL_ON_JOB_CLOSE, which the
 *    kernel closes, killing every process in it, when the host process ends however it ends.
 */
import type { ChildProcess, SpawnOptions } from 'node:child_process';
import type { Logger } from '../logger.js';
import { posixGuard } from './posix.js';
import { windowsGuard } from './windows.js';

export interface SpawnPlan {
  file: string;
  args: string[];
  options: SpawnOptions & { env: Record<string, string | undefined>; stdio: Array<'ignore' | 'pipe'> };
}

export interface PlatformGuard {
  /** Shapes the spawn of every worker (extra stdio, environment, process group). */
  prepare(plan: SpawnPlan): void;
  /** Called synchronously right after spawn, before the worker can have started anything. */
  adopt(child: ChildProcess, logger: Logger): void;
}

export function platformGuard(): PlatformGuard {
  return process.platform === 'win32' ? windowsGuard : posixGuard;
}

/**
 * How a worker process is started: binary, arguments, environment and spawn options, derived from
 * the pool's options. Kept apart from the state machine so that what shapes the process (limits,
 * permissions, runtime, the platform's guard) has one place to grow.
 *
 * Environment: `options.env` (the host's `process.env` unless given; given, it replaces it
 * entirely) plus the library's own variables, which the worker reads and removes before the
 * implementation loads.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { ENV_PIPE, ENV_TOKEN } from '@process-sandbox/abstractions';
import { ENV_LIMITS, workerBinPath } from '@process-sandbox/worker';
import { placeInCgroup, type ResolvedCgroup } from './cgroup.js';
import type { Logger } from './logger.js';
import { platformGuard, type SpawnPlan } from './os/guard.js';
import { limitFlags, workerLimits, type ResolvedLimits } from './resource-limits.js';

export type WorkerCommand = SpawnPlan;

/** The part of the pool's options that shapes the process. */
export interface CommandOptions {
  execPath: string;
  execArgv: string[];
  env: Record<string, string | undefined>;
  cwd: string | undefined;
  limits?: ResolvedLimits;
  cgroup?: ResolvedCgroup;
  logger: Logger;
}

export function workerCommand(options: CommandOptions, pipePath: string, token: string): WorkerCommand {
  const env: Record<string, string | undefined> = { ...options.env, [ENV_PIPE]: pipePath, [ENV_TOKEN]: token };
  const limits = workerLimits(options.limits);
  if (limits) env[ENV_LIMITS] = JSON.stringify(limits);
  const plan: SpawnPlan = {
    file: options.execPath,
    // The limits' flags first: the user's own execArgv cannot contradict them (options refuse it).
    args: [...limitFlags(options.limits), ...options.execArgv, workerBinPath],
    options: {
      env,
      cwd: options.cwd,
      stdio: ['ignore', 'pipe', 'pipe'],
      windowsHide: true,
    },
  };
  // POSIX: its own process group and a lifeline for the parent watchdog; Windows: a Job Object.
  platformGuard().prepare(plan);
  return plan;
}

/**
 * Spawns the worker and, synchronously, before it can have loaded anything: ties it to the host's
 * life (platform guard) and moves it into its cgroup. Throws like spawn() does.
 */
export function spawnWorker(command: WorkerCommand, options: CommandOptions): ChildProcess {
  const child = spawn(command.file, command.args, command.options);
  if (child.pid === undefined) return child; // spawn failed; 'error' follows
  platformGuard().adopt(child, options.logger);
  if (options.cgroup) placeInCgroup(child, options.cgroup, options.logger);
  return child;
}

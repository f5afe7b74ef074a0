/**
 * How a worker process is started: binary, arguments, environment and spawn options, derived from
 * the pool's options. Kept apart from the state machine so that what shapes the process (limits,
 * permissions, runtime) has one place to grow.
 */
import type { SpawnOptions } from 'node:child_process';
import { ENV_PIPE, ENV_TOKEN } from '@process-sandbox/abstractions';
import { workerBinPath } from '@process-sandbox/worker';
import type { ResolvedOptions } from './options.js';

export interface WorkerCommand {
  file: string;
  args: string[];
  options: SpawnOptions;
}

export function workerCommand(options: ResolvedOptions, pipePath: string, token: string): WorkerCommand {
  return {
    file: options.execPath,
    args: [...options.execArgv, workerBinPath],
    options: {
      env: { ...options.env, [ENV_PIPE]: pipePath, [ENV_TOKEN]: token },
      cwd: options.cwd,
      stdio: ['ignore', 'pipe', 'pipe'],
      // Its own process group on POSIX, so that one signal reaches everything it starts.
      detached: process.platform !== 'win32',
      windowsHide: true,
    },
  };
}

#!/usr/bin/env node
/**
 * Entry point of a worker process. Spawned by @process-sandbox/core, never by hand: the pipe path
 * and the token arrive through the environment (never argv, where `ps` would show the token).
 */
import { ENV_PIPE, ENV_TOKEN } from '@process-sandbox/abstractions';
import { killDescendants } from './descendants.cjs';
import { becomeSubreaper } from './subreaper.js';
import { ENV_HOST_PID, ENV_LIFELINE_FD, ENV_LIMITS, ENV_PARENT_GUARD } from './guard-env.js';
import { applyLimits } from './limits.js';
import { startParentGuard } from './parent-watchdog.js';
import { WorkerExitCode, WorkerHost } from './worker-host.js';

const pipe = process.env[ENV_PIPE];
const token = process.env[ENV_TOKEN];
const hostPid = Number(process.env[ENV_HOST_PID]) || process.ppid;
const lifelineFd = process.env[ENV_LIFELINE_FD] === undefined ? -1 : Number(process.env[ENV_LIFELINE_FD]);
const limits = process.env[ENV_LIMITS];
const parentGuard = process.env[ENV_PARENT_GUARD] !== '0';
// Neither the implementation nor anything it spawns needs them.
for (const name of [ENV_PIPE, ENV_TOKEN, ENV_HOST_PID, ENV_LIFELINE_FD, ENV_LIMITS, ENV_PARENT_GUARD]) delete process.env[name];

// Before anything can spawn: a descendant whose parent dies (a double fork, `setsid cmd &`) is
// reparented to this worker instead of init, so the descendant walks below still find it.
becomeSubreaper();

if (!pipe || !token) {
  process.stderr.write(`process-sandbox-worker is started by @process-sandbox/core; ${ENV_PIPE} and ${ENV_TOKEN} are not set.\n`);
  process.exit(64);
}
// First the parent-death guard, so that a host killed from now on takes this worker and everything
// it starts along (Windows: the host's Job Object does it). Its thread takes tens of ms to start:
// the worker connects and says hello meanwhile, and waits for it only before loading the
// implementation, the first code that may block or spawn.
const guardReady = parentGuard && process.platform !== 'win32' ? startParentGuard(hostPid, lifelineFd) : Promise.resolve();
// Whenever the worker exits by itself, descendants that left its process group go with it (the
// host kills the group; only the parent links lead to the others, and only while we are alive).
process.on('exit', () => void killDescendants());
// Then the OS limits, before the implementation loads (its children inherit them).
if (limits) {
  try {
    applyLimits(JSON.parse(limits));
  } catch (error) {
    process.stderr.write(`[process-sandbox worker] ${(error as Error).message}\n`);
    process.exit(WorkerExitCode.StartFailed);
  }
}
new WorkerHost(pipe, token, guardReady);

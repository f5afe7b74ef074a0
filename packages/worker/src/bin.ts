#!/usr/bin/env node
/**
 * Entry point of a worker process. Spawned by @process-sandbox/core, never by hand. Its channel to
 * the host: on POSIX a socket it inherits, on the descriptor named by PROCESS_SANDBOX_CHANNEL_FD;
 * on Windows a named pipe and a token, through the environment (never argv, where `ps` would show them).
 */
import { connect, Socket } from 'node:net';
import { ENV_CHANNEL_FD, ENV_HOST_PID, ENV_LIFELINE_FD, ENV_LIMITS, ENV_NOT_DUMPABLE, ENV_PARENT_GUARD, ENV_PIPE, ENV_TOKEN, WorkerExitCode } from '@process-sandbox/abstractions';
import { killDescendants } from './descendants.cjs';
import { becomeSubreaper } from './subreaper.js';
import { applyLimits } from './limits.js';
import { libc } from './native.js';
import { startParentGuard } from './parent-watchdog.js';
import { WorkerHost } from './worker-host.js';

const channelFd = process.env[ENV_CHANNEL_FD];
const pipe = process.env[ENV_PIPE];
const token = process.env[ENV_TOKEN];
const hostPid = Number(process.env[ENV_HOST_PID]) || process.ppid;
const lifelineFd = process.env[ENV_LIFELINE_FD] === undefined ? -1 : Number(process.env[ENV_LIFELINE_FD]);
const limits = process.env[ENV_LIMITS];
const parentGuard = process.env[ENV_PARENT_GUARD] !== '0';
const notDumpable = process.env[ENV_NOT_DUMPABLE] === '1';
// Neither the implementation nor anything it spawns needs them.
for (const name of [ENV_CHANNEL_FD, ENV_PIPE, ENV_TOKEN, ENV_HOST_PID, ENV_LIFELINE_FD, ENV_LIMITS, ENV_PARENT_GUARD, ENV_NOT_DUMPABLE]) delete process.env[name];

/** The socket to the host: nothing of the host's reaches the implementation but through it. */
function openChannel(): Socket {
  if (channelFd !== undefined) {
    try {
      return new Socket({ fd: Number(channelFd), readable: true, writable: true });
    } catch (error) {
      process.stderr.write(`process-sandbox-worker: descriptor ${channelFd} (${ENV_CHANNEL_FD}) is not the channel to the host: ${(error as Error).message}\n`);
      process.exit(64);
    }
  }
  if (pipe && token) return connect(pipe);
  process.stderr.write(`process-sandbox-worker is started by @process-sandbox/core; neither ${ENV_CHANNEL_FD} nor ${ENV_PIPE} and ${ENV_TOKEN} are set.\n`);
  process.exit(64);
}

// The order below is the start-up's critical path (docs/benchmarks.md, "Worker start"). The Hello
// goes out first, so that the host's answer travels while the guards are armed; all of them are in
// force before the event loop first turns, so before the Init (and the workerOptions it brings) is
// even read, and so before the implementation loads. (The token proves a pipe's client on Windows;
// an inherited channel needs none.)
new WorkerHost(openChannel(), channelFd === undefined ? token! : '');
// The parent-death guard: PR_SET_PDEATHSIG at once, then the watchdog thread, which starts in the
// background (Windows: the host's Job Object does it). Nothing waits for the thread (see
// parent-watchdog.ts for why a host that dies before it runs still takes everything along).
if (parentGuard && process.platform !== 'win32') void startParentGuard(hostPid, lifelineFd);
// Before anything can spawn: a descendant whose parent dies (a double fork, `setsid cmd &`) is
// reparented to this worker instead of init, so the descendant walks below still find it.
becomeSubreaper();
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
// Running as a user of its own: before Init brings workerOptions, shut out the other processes of
// that uid. Best effort: without koffi (or under the permission model) it stays dumpable, as it
// was in the few ms since exec in any case (docs/reliability.md).
if (notDumpable) libc()?.setNotDumpable?.();

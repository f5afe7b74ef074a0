/**
 * POSIX: each worker leads its own process group (spawned detached: setsid), so one kill(-pid)
 * reaches everything it started that stayed in the group (process-tree.ts). For a host that dies
 * without running any code (SIGKILL), the worker guards itself (@process-sandbox/worker's parent
 * watchdog): it gets the host's pid, and a lifeline on descriptor 3, a socket whose other end only
 * the host holds. The kernel closes the host's end when the host dies, however it dies; the
 * watchdog sees EOF at once and kills the worker's group.
 */
import type { ChildProcess } from 'node:child_process';
import type { Socket } from 'node:net';
import { ENV_HOST_PID, ENV_LIFELINE_FD, LIFELINE_FD } from '@process-sandbox/abstractions';
import type { PlatformGuard } from './guard.js';

export const posixGuard: PlatformGuard = {
  prepare(plan) {
    plan.options.detached = true;
    while (plan.options.stdio.length < LIFELINE_FD) plan.options.stdio.push('ignore');
    plan.options.stdio[LIFELINE_FD] = 'pipe';
    plan.options.env[ENV_HOST_PID] = String(process.pid);
    plan.options.env[ENV_LIFELINE_FD] = String(LIFELINE_FD);
  },
  adopt(child: ChildProcess) {
    const lifeline = child.stdio[LIFELINE_FD] as Socket | null | undefined;
    if (!lifeline) return;
    // Never read, never written, never what keeps the host alive; closed when the worker is gone.
    lifeline.unref();
    lifeline.on('error', () => {});
    child.once('exit', () => lifeline.destroy());
  },
};

/**
 * Ending a worker and everything it started.
 *
 * POSIX: each worker leads its own process group (spawned detached), so one kill(-pid) reaches every
 * descendant that stayed in the group. tree-kill walks the parent links to find those that left it
 * (setsid, daemonising legacy code); it must run while the worker is still alive to be their
 * parent, so it goes first and the group kill follows in its callback. Meanwhile the group is
 * stopped (SIGSTOP): listing the tree takes tens of ms, and a worker running away with memory or
 * forking must not go on meanwhile; a stopped process is still alive, so its parent links hold.
 * A descendant in another group keeps running until its SIGKILL; the worker is a child subreaper
 * (see @process-sandbox/worker's subreaper.ts), so a double-forked one is still linked to it.
 *
 * Windows: each worker has a Job Object of its own (os/windows.ts); TerminateJobObject ends the
 * worker and every process it started, detached or not. Only a worker that could not be put in a
 * job (no koffi) falls back to tree-kill (taskkill /T, which follows parent pids).
 */
import treeKill from 'tree-kill';
import { releaseJob, terminateJob } from './os/windows.js';

const isWindows = process.platform === 'win32';

/**
 * SIGKILL to the whole process group led by `pid` (Windows: its job, whose handles are then let go:
 * call it once the worker has exited, or when the host exits). Synchronous; safe on a group that is gone.
 */
export function killProcessGroup(pid: number): void {
  try {
    if (!isWindows) process.kill(-pid, 'SIGKILL');
    else if (!releaseJob(pid)) process.kill(pid, 'SIGKILL');
  } catch {
    // ESRCH: nothing left in the group.
  }
}

/** Kills the worker, its group and every descendant. `done` runs once the signals are sent. */
export function killProcessTree(pid: number, done?: () => void): void {
  if (isWindows && terminateJob(pid)) {
    done?.();
    return;
  }
  let finished = false;
  const finish = (): void => {
    if (finished) return;
    finished = true;
    clearTimeout(fallback);
    killProcessGroup(pid);
    done?.();
  };
  // If listing the tree hangs (a wedged `ps`), the group kill must not wait for it.
  const fallback = setTimeout(finish, 1_000);
  fallback.unref();
  if (!isWindows) {
    try {
      process.kill(-pid, 'SIGSTOP');
    } catch {
      // The group is gone already; tree-kill finds nothing and the group kill is a no-op.
    }
  }
  treeKill(pid, 'SIGKILL', finish);
}

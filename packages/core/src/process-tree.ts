/**
 * Ending a worker and everything it started.
 *
 * POSIX: each worker leads its own process group (spawned detached), so one kill(-pid) reaches every
 * descendant that stayed in the group. Those that left it (setsid, daemonising legacy code) are
 * found through their parent links, which hold only while the worker is alive to be their parent:
 * so the group is first stopped (SIGSTOP: a worker running away with memory or forking must not go
 * on meanwhile, and a stopped process is still alive), the descendants are listed and killed, and
 * the group kill comes last. The worker is a child subreaper (see @process-sandbox/worker's
 * subreaper.ts), so a double-forked descendant is still linked to it.
 *
 * Listing: on Linux, /proc, synchronously, through the reader the worker uses for its own
 * descendants (@process-sandbox/abstractions/process-table); no `ps` is spawned while a tree is
 * being killed. Elsewhere (macOS), tree-kill, which walks `ps` output asynchronously.
 *
 * Windows: each worker has a Job Object of its own (os/windows.ts); TerminateJobObject ends the
 * worker and every process it started, detached or not. Only a worker that could not be put in a
 * job (no koffi) falls back to tree-kill (taskkill /T, which follows parent pids).
 */
import { descendantsOf, killAll } from '@process-sandbox/abstractions/process-table';
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

/** Kills the worker, its group and every descendant: at once on Linux and for a Windows job, else once `ps` answers. */
export function killProcessTree(pid: number): void {
  if (isWindows && terminateJob(pid)) return;
  if (!isWindows) {
    try {
      process.kill(-pid, 'SIGSTOP');
    } catch {
      // The group is gone already; the walk finds nothing and the group kill is a no-op.
    }
  }
  if (process.platform === 'linux') {
    killAll([...descendantsOf(pid), pid]);
    killProcessGroup(pid);
    return;
  }
  let finished = false;
  const finish = (): void => {
    if (finished) return;
    finished = true;
    clearTimeout(fallback);
    killProcessGroup(pid);
  };
  // If listing the tree hangs (a wedged `ps`), the group kill must not wait for it.
  const fallback = setTimeout(finish, 1_000);
  fallback.unref();
  treeKill(pid, 'SIGKILL', finish);
}

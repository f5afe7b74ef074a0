/**
 * Makes the worker a child subreaper (Linux 3.4+, prctl PR_SET_CHILD_SUBREAPER), so that a daemon
 * its implementation starts by double-forking (`sh -c 'setsid cmd &'`) is reparented to the worker
 * rather than to init. The worker's exit hook, its parent watchdog and the host's tree kill all
 * find descendants through parent links: without this, a double-forked daemon has no link left to
 * anything of ours the moment its intermediate parent exits.
 *
 * Needs koffi (an optional dependency). Without it, or off Linux, this does nothing and says so:
 * double-forked daemons then escape every parent-link walk; only a per-worker cgroup (the
 * `cgroup` option) still catches them.
 *
 * The cost: a reparented descendant that exits while the worker lives stays a zombie until the
 * worker exits (Node reaps only the children it spawned itself); it holds a pid, no memory.
 */
import { libc } from './native.js';

/** True when the worker is now a subreaper. */
export function becomeSubreaper(): boolean {
  if (process.platform !== 'linux') return false;
  return libc()?.becomeSubreaper?.() ?? false;
}

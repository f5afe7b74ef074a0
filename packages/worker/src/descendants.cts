/**
 * The worker's own descendants, killed from inside the worker, synchronously.
 *
 * The host kills a worker's process group; a descendant that left the group (setsid, a daemonising
 * legacy tool) is only reachable through the parent links, and only while the worker is alive to be
 * its parent. So the worker kills them itself on its way out (exit hook, parent watchdog). The
 * worker is a child subreaper (subreaper.ts), so a double-forked daemon is still its descendant
 * here. Linux only (the /proc reader is shared with the host); elsewhere this finds nothing and the
 * group kill is all there is.
 */
import { descendantsOf, killAll } from '@process-sandbox/abstractions/process-table';

/** SIGKILL to every descendant of this process (not to itself). Returns how many were signalled. */
export function killDescendants(): number {
  return killAll(descendantsOf(process.pid));
}

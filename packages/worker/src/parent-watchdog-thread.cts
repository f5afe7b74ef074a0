/**
 * The body of the parent watchdog: a worker_thread with its own event loop, so it keeps watching
 * while the worker's main thread is blocked in native code (or in `Atomics.wait`, or a busy loop).
 *
 * Two signals that the host is gone, whichever comes first:
 *  - the lifeline (a socket whose other end only the host holds) reaches EOF: the kernel closes the
 *    host's descriptors the moment it dies, however it dies;
 *  - `process.ppid` (live in a worker_thread: it calls getppid() each time) is no longer the host,
 *    checked every `pollMs`: a backstop for a lifeline the implementation closed.
 * Then: SIGKILL to every descendant (those that left the group too), then to the worker's own
 * process group, which ends the worker itself.
 */
import { Socket } from 'node:net';
import { parentPort, workerData } from 'node:worker_threads';
import { killDescendants } from './descendants.cjs';

export interface WatchdogData {
  hostPid: number;
  /** -1 when the host gave no lifeline. */
  lifelineFd: number;
  pollMs: number;
}

const { hostPid, lifelineFd, pollMs } = workerData as WatchdogData;
let fired = false;

function hostGone(): void {
  if (fired) return;
  fired = true;
  killDescendants();
  try {
    process.kill(-process.pid, 'SIGKILL'); // the worker leads its group (spawned detached)
  } catch {
    // Not a group leader: only itself.
  }
  process.kill(process.pid, 'SIGKILL');
}

function check(): void {
  if (process.ppid !== hostPid) hostGone();
}

check();
setInterval(check, pollMs);

if (lifelineFd >= 0) {
  try {
    const lifeline = new Socket({ fd: lifelineFd, readable: true, writable: false });
    lifeline.on('data', () => {}); // the host never writes; keep the stream flowing to see EOF
    lifeline.on('end', hostGone);
    lifeline.on('error', check); // not a proof of death by itself: the poll decides
  } catch {
    // The descriptor is not usable (closed by the implementation, not a socket): the poll remains.
  }
}

parentPort?.postMessage('ready');

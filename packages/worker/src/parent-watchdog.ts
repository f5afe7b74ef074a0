/**
 * The worker's guard against a host that dies without a word (SIGKILL, OOM killer, a crash):
 * the worker, everything in its process group and every other descendant must end within a second,
 * even while the worker's main thread is blocked in native code.
 *
 * Two layers (see docs/architecture.md, "Parent death", for why they are arranged this way):
 *  1. The watchdog thread (parent-watchdog-thread.ts): wakes on the lifeline's EOF or a change of
 *     parent, kills the descendants, then the process group. Needs no help from the main thread.
 *  2. Linux, when koffi loads: prctl(PR_SET_PDEATHSIG), armed first, before the thread is even
 *     started. It is SIGTERM, handled (onSigterm), from the start: a SIGKILL death signal is sent in
 *     the same instant the lifeline closes and would kill the worker before the watchdog has killed
 *     its group, leaving the grandchildren behind, reparented to init. The main thread's listener
 *     ends everything when it is free; when it is blocked, the watchdog does, also one that was
 *     still starting when the host died (its first check compares the parent). So the worker need
 *     not wait for the thread (tens of ms: its own Node environment) before it loads the
 *     implementation and says Ready. Where the watchdog cannot run (it failed, or it ended), the
 *     signal is SIGKILL: the kernel's own backstop. The parent is checked right after each prctl,
 *     closing the race with a host that died before it.
 */
import { Socket } from 'node:net';
import { constants } from 'node:os';
import { Worker } from 'node:worker_threads';
import { killDescendants } from './descendants.cjs';
import { libc } from './native.js';
import type { WatchdogData } from './parent-watchdog-thread.cjs';

/** How often the watchdog compares the parent pid, as a backstop to the lifeline. */
const POLL_MS = 100;

export interface ParentGuard {
  /** Whether the watchdog thread reported that it runs. */
  watchdog: boolean;
  /** The PR_SET_PDEATHSIG signal in force, if any. */
  deathSignal: NodeJS.Signals | undefined;
}

/** Kills descendants, the group and the worker, from whichever thread sees the host gone. */
function endEverything(): never {
  killDescendants();
  try {
    process.kill(-process.pid, 'SIGKILL');
  } catch {
    // Not a group leader.
  }
  process.kill(process.pid, 'SIGKILL');
  throw new Error('unreachable');
}

/**
 * SIGTERM once our listener exists: the death signal (host gone: end everything), or a SIGTERM from
 * someone else. Then an implementation that listens for SIGTERM itself keeps control; otherwise the
 * worker ends as it would have without our listener, and takes its family along.
 */
function onSigterm(hostPid: number): void {
  if (process.ppid !== hostPid) endEverything();
  if (process.listenerCount('SIGTERM') > 1) return;
  endEverything();
}

function setDeathSignal(signal: NodeJS.Signals, hostPid: number): boolean {
  const native = libc();
  if (!native?.setParentDeathSignal) return false;
  if (!native.setParentDeathSignal(constants.signals[signal])) return false;
  // The host may have died before prctl: then no signal will ever come. Check now.
  if (process.ppid !== hostPid) endEverything();
  return true;
}

/**
 * Arms the guard: the death signal, then the watchdog thread. Resolves once the thread runs (or
 * failed to start, in which case the death signal becomes SIGKILL where available and a warning
 * goes to stderr). Nothing needs to wait for it (see above).
 */
export function startParentGuard(hostPid: number, lifelineFd: number): Promise<ParentGuard> {
  const guard: ParentGuard = { watchdog: false, deathSignal: undefined };
  if (process.ppid !== hostPid) endEverything();
  // Under Node's permission model without --allow-worker (the pool's `permissions` without
  // workerThreads) no thread may start, and koffi (a native addon) may not load. The host armed
  // PR_SET_PDEATHSIG=SIGKILL through setpriv instead; the main thread watches too, while it is free.
  const permission = (process as { permission?: { has(scope: string): boolean } }).permission;
  if (permission && !permission.has('worker')) {
    watchFromMainThread(hostPid, lifelineFd);
    return Promise.resolve(guard);
  }
  // pid 1 of its own PID namespace (the pool's namespaces.pid): the kernel kills every process in the
  // namespace when this one dies, so a SIGKILL death signal leaves nothing behind; and a pid 1 cannot
  // SIGKILL itself, so a SIGTERM handler blocked with the main thread would leave it running.
  if (process.pid !== 1) {
    // The listener first, so that the signal never finds the worker without it; kept only with the
    // signal (without koffi, or off Linux, a SIGTERM does what it always does).
    const listener = (): void => onSigterm(hostPid);
    process.on('SIGTERM', listener);
    if (setDeathSignal('SIGTERM', hostPid)) guard.deathSignal = 'SIGTERM';
    else process.off('SIGTERM', listener);
  } else if (setDeathSignal('SIGKILL', hostPid)) guard.deathSignal = 'SIGKILL';
  /** Without a watchdog, a handled signal guards nothing while the main thread is blocked: back to the kernel's SIGKILL. */
  const withoutWatchdog = (): void => {
    guard.watchdog = false;
    if (guard.deathSignal === 'SIGTERM' && setDeathSignal('SIGKILL', hostPid)) guard.deathSignal = 'SIGKILL';
  };

  return new Promise((resolve) => {
    let thread: Worker;
    const failed = (error: unknown): void => {
      withoutWatchdog();
      process.stderr.write(`[process-sandbox worker] the parent watchdog thread did not start (${String(error)}); ` +
        `${guard.deathSignal ? `PR_SET_PDEATHSIG=${guard.deathSignal} remains` : 'no parent-death guard is active'}\n`);
      resolve(guard);
    };
    try {
      const data: WatchdogData = { hostPid, lifelineFd, pollMs: POLL_MS };
      thread = new Worker(new URL('./parent-watchdog-thread.cjs', import.meta.url), {
        workerData: data,
        execArgv: [],
        env: {},
        stdout: true, // never printed: the watchdog has nothing to say to the host
        stderr: true,
        resourceLimits: { maxOldGenerationSizeMb: 16, maxYoungGenerationSizeMb: 2 },
      });
    } catch (error) {
      failed(error);
      return;
    }
    thread.unref(); // never what keeps the worker alive
    thread.once('error', failed);
    thread.once('message', () => {
      thread.off('error', failed);
      guard.watchdog = true;
      resolve(guard);
    });
    thread.once('exit', () => {
      // The watchdog is gone (it should never end): the kernel's SIGKILL is the guard again.
      if (guard.watchdog) withoutWatchdog();
    });
  });
}

/** The watchdog's two checks on the main thread (unref'd: they never keep the worker alive). */
function watchFromMainThread(hostPid: number, lifelineFd: number): void {
  setInterval(() => {
    if (process.ppid !== hostPid) endEverything();
  }, POLL_MS).unref();
  if (lifelineFd < 0) return;
  try {
    const lifeline = new Socket({ fd: lifelineFd, readable: true, writable: false });
    lifeline.on('data', () => {});
    lifeline.on('end', () => endEverything());
    lifeline.on('error', () => {});
    lifeline.unref();
  } catch {
    // Not usable: the poll remains.
  }
}

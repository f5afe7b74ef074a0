/**
 * The last line of defence on the host side: when the host process exits (normally or through
 * `process.exit`), every worker of every live pool is killed, synchronously, with its group.
 * (The worker side has its own guard for a host that dies by SIGKILL.)
 *
 * SIGINT, SIGTERM and SIGHUP end a Node process without running 'exit' listeners when nobody
 * listens for them. So while a pool is alive we listen, but never swallow the signal: if the
 * application has a listener of its own when the signal arrives, it decides (and if it exits, the
 * 'exit' hook kills the workers); if not, we kill every worker, remove our listener and raise the
 * signal again, so the process ends by it with the default behaviour (exit status 128+n).
 */
import { killProcessGroup } from './process-tree.js';

export interface ExitGuarded {
  /** Pids of the pool's worker processes that may still be alive. */
  livePids(): number[];
}

const pools = new Set<ExitGuarded>();
let installed = false;

/** Signals whose default action ends the process without 'exit' listeners. Not on Windows (Job Object). */
const SIGNALS: readonly NodeJS.Signals[] = process.platform === 'win32' ? [] : ['SIGINT', 'SIGTERM', 'SIGHUP'];
const signalListeners = new Map<NodeJS.Signals, () => void>();

function killAll(): void {
  for (const pool of pools) for (const pid of pool.livePids()) killProcessGroup(pid);
}

function onSignal(signal: NodeJS.Signals): void {
  // Someone else listens: the application handles this signal and keeps control.
  if (process.listenerCount(signal) > 1) return;
  killAll();
  removeSignalListeners();
  // No listener left: Node restores the default disposition, and the signal ends the process.
  process.kill(process.pid, signal);
}

function addSignalListeners(): void {
  for (const signal of SIGNALS) {
    if (signalListeners.has(signal)) continue;
    const listener = (): void => onSignal(signal);
    signalListeners.set(signal, listener);
    process.on(signal, listener);
  }
}

function removeSignalListeners(): void {
  for (const [signal, listener] of signalListeners) process.removeListener(signal, listener);
  signalListeners.clear();
}

export function guardOnExit(pool: ExitGuarded): void {
  pools.add(pool);
  if (!installed) {
    installed = true;
    process.on('exit', killAll);
  }
  addSignalListeners();
}

export function unguard(pool: ExitGuarded): void {
  pools.delete(pool);
  // With no pool alive, the application's signals behave exactly as without the library.
  if (pools.size === 0) removeSignalListeners();
}

/** Every pool that is not yet disposed, for ProcessProxy.disposeAll(). */
export function guardedPools(): ExitGuarded[] {
  return [...pools];
}

/**
 * The last line of defence on the host side: when the host process exits (normally or through
 * `process.exit`), every worker of every live pool is killed, synchronously, with its group.
 * (The worker side has its own guard for a host that dies by SIGKILL.)
 */
import { killProcessGroup } from './process-tree.js';

export interface ExitGuarded {
  /** Pids of the pool's worker processes that may still be alive. */
  livePids(): number[];
}

const pools = new Set<ExitGuarded>();
let installed = false;

function killAll(): void {
  for (const pool of pools) for (const pid of pool.livePids()) killProcessGroup(pid);
}

export function guardOnExit(pool: ExitGuarded): void {
  pools.add(pool);
  if (!installed) {
    installed = true;
    process.on('exit', killAll);
  }
}

export function unguard(pool: ExitGuarded): void {
  pools.delete(pool);
}

/** Every pool that is not yet disposed, for ProcessProxy.disposeAll(). */
export function guardedPools(): ExitGuarded[] {
  return [...pools];
}

/**
 * Linux's process table from /proc, and the descendants of a process in it: read synchronously, with
 * no child process (no `ps`). One reader for both sides: the host, which kills a worker's tree
 * (core's process-tree.ts), and the worker, which kills its own descendants on its way out, from its
 * exit hook and from its watchdog thread (worker's descendants.cts), where nothing asynchronous runs.
 *
 * CommonJS, dependency-free, and its own entry point (`@process-sandbox/abstractions/process-table`),
 * so that the worker's watchdog thread can require it without loading the codec.
 *
 * Linux only: elsewhere the table is empty. Under Wine, "/proc" is the Linux host's, whose pids are
 * not Windows pids (killing by them would hit unrelated processes).
 */
import { readdirSync, readFileSync } from 'node:fs';

export interface ProcEntry {
  pid: number;
  ppid: number;
}

/** Every process visible in /proc with its parent; [] when there is no /proc to read. */
export function processTable(): ProcEntry[] {
  if (process.platform !== 'linux') return [];
  let entries: string[];
  try {
    entries = readdirSync('/proc');
  } catch {
    return [];
  }
  const table: ProcEntry[] = [];
  for (const entry of entries) {
    const c = entry.charCodeAt(0);
    if (c < 48 || c > 57) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'latin1');
      // "pid (comm) state ppid …": comm may contain spaces and parentheses; the last ')' ends it.
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      table.push({ pid: Number(entry), ppid: Number(fields[1]) });
    } catch {
      // Gone meanwhile.
    }
  }
  return table;
}

/** Pids of every live descendant of `root`, parents before children. */
export function descendantsOf(root: number): number[] {
  const table = processTable();
  const found: number[] = [];
  const seen = new Set([root]);
  for (let i = -1; i < found.length; i++) {
    const parent = i < 0 ? root : found[i]!;
    for (const entry of table) {
      if (entry.ppid === parent && !seen.has(entry.pid)) {
        seen.add(entry.pid);
        found.push(entry.pid);
      }
    }
  }
  return found;
}

/** SIGKILL to each pid; returns how many were signalled (the others had gone). */
export function killAll(pids: readonly number[]): number {
  let killed = 0;
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
      killed++;
    } catch {
      // Already gone.
    }
  }
  return killed;
}

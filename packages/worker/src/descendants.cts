/**
 * Finding and killing the worker's own descendants, from inside the worker, synchronously.
 *
 * The host kills a worker's process group; a descendant that left the group (setsid, a daemonising
 * legacy tool) is only reachable through the parent links, and only while the worker is alive to be
 * its parent. So the worker kills them itself on its way out (exit hook, parent watchdog). The
 * worker is a child subreaper (subreaper.ts), so a double-forked daemon is still its descendant
 * here. Linux only (it reads /proc); elsewhere this finds nothing and the group kill is all there is.
 */
import { readdirSync, readFileSync } from 'node:fs';

interface ProcEntry {
  pid: number;
  ppid: number;
}

function processTable(): ProcEntry[] {
  // Only Linux's /proc is this process's: under Wine, "/proc" is the Linux host's, whose pids are not
  // Windows pids (killing by them would hit unrelated processes).
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

/** SIGKILL to every descendant of this process (not to itself). Returns how many were signalled. */
export function killDescendants(): number {
  let killed = 0;
  for (const pid of descendantsOf(process.pid)) {
    try {
      process.kill(pid, 'SIGKILL');
      killed++;
    } catch {
      // Already gone.
    }
  }
  return killed;
}

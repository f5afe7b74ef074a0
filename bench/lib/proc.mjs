/** Linux /proc helpers: CPU time of processes, and the children of this process. */
import { readdirSync, readFileSync } from 'node:fs';

/**
 * CPU time a process has used so far, in ns, all threads: the sum of /proc/<pid>/task/<tid>/schedstat
 * (Linux; elsewhere the CPU rows are left out). Splits a call's cost between host and worker.
 * A process that has exited counts 0.
 */
export function cpuNs(pid) {
  let total = 0;
  let tids;
  try {
    tids = readdirSync(`/proc/${pid}/task`);
  } catch {
    return 0;
  }
  for (const tid of tids) {
    try {
      total += Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]);
    } catch {
      // the thread ended meanwhile
    }
  }
  return total;
}

let supported;
export function cpuSupported() {
  if (supported === undefined) {
    try {
      supported = cpuNs(process.pid) > 0;
    } catch {
      supported = false;
    }
  }
  return supported;
}

/** Runs `fn`, returning its result and the CPU ns used meanwhile by this process and by `pids`. */
export async function withCpu(pids, fn) {
  if (!cpuSupported()) return { result: await fn(), hostNs: NaN, childNs: NaN };
  const child0 = pids.reduce((n, pid) => n + cpuNs(pid), 0);
  const host0 = cpuNs(process.pid);
  const result = await fn();
  const hostNs = cpuNs(process.pid) - host0;
  const childNs = pids.reduce((n, pid) => n + cpuNs(pid), 0) - child0;
  return { result, hostNs, childNs };
}

/** Pids of the live (not zombie) processes whose parent is `ppid` (Linux; [] elsewhere). */
export function childPids(ppid = process.pid) {
  const out = [];
  let entries;
  try {
    entries = readdirSync('/proc');
  } catch {
    return out;
  }
  for (const name of entries) {
    if (name.charCodeAt(0) < 48 || name.charCodeAt(0) > 57) continue;
    let stat;
    try {
      stat = readFileSync(`/proc/${name}/stat`, 'utf8');
    } catch {
      continue; // gone meanwhile
    }
    // pid (comm) state ppid …: comm may hold spaces and parentheses, so parse after the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (Number(fields[1]) === ppid && fields[0] !== 'Z') out.push(Number(name));
  }
  return out;
}

/** Whether a process with this pid is alive (and not a zombie). */
export function isAlive(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    try {
      process.kill(pid, 0);
      return true;
    } catch {
      return false;
    }
  }
}

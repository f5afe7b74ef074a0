/** What machine and which library revision a benchmark ran on. */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** Which library was measured: the git commit, and whether packages/ or samples/ had local changes. */
export function libraryRevision() {
  const git = (...args) => execFileSync('git', args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'ignore'] }).toString().trim();
  try {
    const commit = git('rev-parse', '--short', 'HEAD');
    const dirty = git('status', '--porcelain', '--untracked-files=no', '--', 'packages', 'samples') !== '';
    return dirty ? `${commit} plus uncommitted changes under packages/ or samples/` : commit;
  } catch {
    return 'unknown (not a git checkout)';
  }
}

function memTotal() {
  return `${(os.totalmem() / 2 ** 30).toFixed(0)} GiB`;
}

/** CPU model (as /proc/cpuinfo or os.cpus() names it), cores, memory, OS, Node. */
export function machineInfo() {
  let cpu = os.cpus()[0]?.model?.trim() || 'unknown';
  try {
    const model = /^model name\s*:\s*(.+)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1]?.trim();
    if (model) cpu = model;
  } catch {
    // not Linux
  }
  return {
    cpu,
    cores: os.cpus().length,
    memory: memTotal(),
    os: `${os.type()} ${os.release()} ${os.arch()}`,
    node: process.version,
    revision: libraryRevision(),
  };
}

/** The 1-, 5- and 15-minute load averages, as text. */
export function loadText() {
  return os
    .loadavg()
    .map((v) => v.toFixed(2))
    .join(' / ');
}

/**
 * CPU time used on the whole machine and by this process with its reaped children, in clock ticks
 * (Linux; undefined elsewhere). The difference between two readings, once every child has been
 * reaped, is the CPU that other work on the machine used meanwhile.
 */
export function cpuTicks() {
  try {
    const cpu = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
    // user nice system idle iowait irq softirq steal …: busy = all but idle and iowait
    const machine = cpu.slice(0, 8).reduce((a, b) => a + b, 0) - cpu[3] - cpu[4];
    const stat = readFileSync('/proc/self/stat', 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // fields 14–17 of stat (utime stime cutime cstime) are 11–14 after the ')'
    const own = Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14]);
    return { machine, own, at: performance.now() };
  } catch {
    return undefined;
  }
}

/** Average share of one core used by other work between two cpuTicks() readings (0.25 = a quarter of a core). */
export function otherWork(before, after, ticksPerSecond = 100) {
  if (!before || !after) return undefined;
  const seconds = (after.at - before.at) / 1000;
  const other = after.machine - before.machine - (after.own - before.own);
  return Math.max(0, other / ticksPerSecond / seconds);
}

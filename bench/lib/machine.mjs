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

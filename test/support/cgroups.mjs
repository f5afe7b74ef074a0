// The per-worker cgroups a test run makes, found through /proc: where a worker is, what was written
// there, and clean-up for after hooks (every `process-sandbox-<this pid>-*` cgroup is emptied and
// removed, whatever a failed test left).
import { existsSync, readdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { poll, waitFor } from './processes.mjs';

/** Mounted cgroup file systems: [{ point, version, controllers }]. */
export function cgroupMounts() {
  const found = [];
  for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const [before, after] = line.split(' - ');
    if (!after) continue;
    const [type, , options] = after.split(' ');
    if (type === 'cgroup2') found.push({ point: before.split(' ')[4], version: 2, controllers: [] });
    else if (type === 'cgroup') found.push({ point: before.split(' ')[4], version: 1, controllers: options.split(',').filter((o) => /^[a-z_]+$/.test(o) && !['rw', 'ro', 'relatime'].includes(o)) });
  }
  return found;
}

/**
 * The directories of the cgroups `pid` is in: { v2, memory, cpu, pids, freezer, ... } (v1 keys by
 * controller), from /proc/<pid>/cgroup.
 */
export function cgroupDirsOf(pid) {
  const mounts = cgroupMounts();
  const dirs = {};
  for (const line of readFileSync(`/proc/${pid}/cgroup`, 'utf8').split('\n')) {
    const match = /^\d+:([^:]*):(.*)$/.exec(line);
    if (!match) continue;
    const [, controllers, path] = match;
    if (controllers === '') {
      const mount = mounts.find((m) => m.version === 2);
      if (mount) dirs.v2 = join(mount.point, path);
      continue;
    }
    const mount = mounts.find((m) => m.version === 1 && m.controllers.join(',') === controllers);
    if (mount) for (const c of controllers.split(',')) dirs[c] = join(mount.point, path);
  }
  return dirs;
}

export const readCgroupFile = (dir, file) => readFileSync(join(dir, file), 'utf8').trim();

/** Every per-worker cgroup directory of this test process (by the host pid in their names). */
export function ownWorkerCgroups(hostPid = process.pid) {
  const found = [];
  const walk = (dir, depth) => {
    let entries;
    try {
      entries = readdirSync(dir, { withFileTypes: true });
    } catch {
      return;
    }
    for (const entry of entries) {
      if (!entry.isDirectory()) continue;
      if (entry.name.startsWith(`process-sandbox-${hostPid}-`)) found.push(join(dir, entry.name));
      else if (depth < 3 && !entry.name.startsWith('process-sandbox-')) walk(join(dir, entry.name), depth + 1);
    }
  };
  for (const mount of cgroupMounts()) walk(mount.point, 0);
  return found;
}

/** Polls until `dir` no longer exists; throws naming it after `timeoutMs`. */
export async function waitUntilRemoved(dirs, timeoutMs = 5000) {
  const list = [dirs].flat();
  if (!(await poll(() => list.every((d) => !existsSync(d)), { timeoutMs, intervalMs: 20 }))) {
    throw new Error(`cgroup directories still there after ${timeoutMs} ms: ${list.filter(existsSync).join(', ')}`);
  }
}

/** After hooks: kill whatever is in this run's per-worker cgroups and remove them. */
export async function removeOwnWorkerCgroups(hostPid = process.pid) {
  const dirs = ownWorkerCgroups(hostPid);
  for (const dir of dirs) {
    try {
      if (existsSync(join(dir, 'freezer.state'))) writeFileSync(join(dir, 'freezer.state'), 'THAWED');
      for (const pid of readFileSync(join(dir, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean)) process.kill(Number(pid), 'SIGKILL');
    } catch {}
  }
  await waitFor(() => {
    for (const dir of dirs) {
      try {
        rmdirSync(dir);
      } catch {}
    }
    return dirs.every((d) => !existsSync(d));
  }, 'this run\'s worker cgroups to be removed', { timeoutMs: 5000, intervalMs: 50 });
  return dirs;
}

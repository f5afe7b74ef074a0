/**
 * The cgroup file systems as this process finds them: where cgroup v2 and each cgroup v1 hierarchy
 * are mounted, which cgroup this process is in on each, and how to empty and remove a cgroup
 * directory whatever its version. Read from /proc/self/mountinfo and /proc/self/cgroup; Linux only.
 */
import { existsSync, readdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** A mounted cgroup v1 hierarchy: its mount point, controllers, and this process's cgroup in it. */
export interface V1Hierarchy {
  mount: string;
  controllers: string[];
  /** The directory of this process's own cgroup in that hierarchy. */
  own: string;
}

interface Mount {
  point: string;
  type: string;
  superOptions: string[];
}

function mounts(): Mount[] {
  let mountinfo: string;
  try {
    mountinfo = readFileSync('/proc/self/mountinfo', 'utf8');
  } catch {
    return [];
  }
  const found: Mount[] = [];
  for (const line of mountinfo.split('\n')) {
    const [before, after] = line.split(' - ');
    if (!before || !after) continue;
    const [type, , superOptions] = after.split(' ');
    if (type === 'cgroup' || type === 'cgroup2') found.push({ point: before.split(' ')[4]!, type, superOptions: (superOptions ?? '').split(',') });
  }
  return found;
}

/** /proc/self/cgroup as hierarchy-controllers → path ('' for v2's 0:: line). */
function ownCgroups(): Map<string, string> {
  const own = new Map<string, string>();
  try {
    for (const line of readFileSync('/proc/self/cgroup', 'utf8').split('\n')) {
      const match = /^\d+:([^:]*):(.*)$/.exec(line);
      if (match) own.set(match[1]!, match[2]!);
    }
  } catch {}
  return own;
}

/** The v2 mount point and this process's cgroup in it, when cgroup2 is mounted. */
export function cgroup2Own(): { mount: string; own: string | undefined } | undefined {
  const mount = mounts().find((m) => m.type === 'cgroup2');
  if (!mount) return undefined;
  const path = ownCgroups().get('');
  return { mount: mount.point, own: path === undefined ? undefined : join(mount.point, path) };
}

/** Every mounted v1 hierarchy with a controller (named ones such as name=systemd left out). */
export function v1Hierarchies(): V1Hierarchy[] {
  const own = ownCgroups();
  const found: V1Hierarchy[] = [];
  const seen = new Set<string>();
  for (const mount of mounts()) {
    if (mount.type !== 'cgroup') continue;
    const controllers = mount.superOptions.filter((o) => /^[a-z_]+$/.test(o) && !['rw', 'ro', 'relatime', 'noatime', 'nosuid', 'nodev', 'noexec', 'xattr', 'clone_children', 'noprefix', 'cpuset_v2_mode'].includes(o));
    const key = controllers.join(',');
    if (controllers.length === 0 || seen.has(key)) continue;
    const path = own.get(key);
    if (path === undefined) continue;
    seen.add(key);
    found.push({ mount: mount.point, controllers, own: join(mount.point, path) });
  }
  return found;
}

function procsOf(dir: string): number[] {
  try {
    return readFileSync(join(dir, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/**
 * SIGKILL to every process in the cgroup, synchronously, wherever it forked or setsid'd to.
 * v2: cgroup.kill (Linux 5.14+) does it in the kernel, races with fork included. v1, or an older
 * v2: freeze the cgroup when `freezer` is given (nothing in it can fork while we list it), kill
 * every pid in cgroup.procs, thaw (frozen tasks only act on SIGKILL once thawed); without a
 * freezer, kill what cgroup.procs lists, round after round, until a round finds nothing new.
 */
export function killCgroup(dir: string, freezer?: string): void {
  try {
    if (existsSync(join(dir, 'cgroup.kill'))) {
      writeFileSync(join(dir, 'cgroup.kill'), '1');
      return;
    }
  } catch {}
  let frozen = false;
  if (freezer) {
    try {
      writeFileSync(join(freezer, 'freezer.state'), 'FROZEN');
      frozen = true;
      // Freezing settles within a few reads unless a task sits in an uninterruptible wait; the
      // kill rounds below cover a cgroup that is still FREEZING.
      for (let i = 0; i < 100 && readFileSync(join(freezer, 'freezer.state'), 'utf8').trim() !== 'FROZEN'; i++);
    } catch {}
  }
  const killed = new Set<number>();
  for (let round = 0; round < 50; round++) {
    const fresh = procsOf(dir).filter((pid) => !killed.has(pid));
    if (fresh.length === 0) break;
    for (const pid of fresh) {
      killed.add(pid);
      try {
        process.kill(pid, 'SIGKILL');
      } catch {}
    }
  }
  if (frozen) {
    try {
      writeFileSync(join(freezer!, 'freezer.state'), 'THAWED');
    } catch {}
  }
}

/**
 * Removes the cgroup directories once their processes are gone (rmdir fails with EBUSY until then),
 * killing again whatever is still in them. Retries for a few seconds; `onGiveUp` hears of a failure.
 */
export function removeCgroupDirs(dirs: string[], freezer: string | undefined, onGiveUp: (dir: string, error: Error) => void, attempt = 0): void {
  const left: string[] = [];
  for (const dir of dirs) {
    try {
      rmdirSync(dir);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') continue;
      if (code === 'EBUSY' && attempt < 100) left.push(dir);
      else onGiveUp(dir, error as Error);
    }
  }
  if (left.length === 0) return;
  if (attempt % 10 === 9) killCgroup(left[0]!, freezer && left.includes(freezer) ? freezer : undefined);
  setTimeout(() => removeCgroupDirs(left, freezer, onGiveUp, attempt + 1), 50).unref();
}

/** Synchronous best effort, for the host's own exit (already emptied): rmdir what is gone already; the next start sweeps the rest. */
export function removeCgroupDirsNow(dirs: string[]): void {
  for (const dir of dirs) {
    try {
      rmdirSync(dir);
    } catch {}
  }
}

export const CGROUP_PREFIX = 'process-sandbox-';

/** Per-worker cgroups under `parent` left by a host whose pid no longer exists: `process-sandbox-<host pid>-<n>`. */
export function staleCgroups(parent: string): string[] {
  let entries: string[];
  try {
    entries = readdirSync(parent);
  } catch {
    return [];
  }
  const stale: string[] = [];
  for (const entry of entries) {
    const match = /^process-sandbox-(\d+)-\d+$/.exec(entry);
    if (!match) continue;
    const owner = Number(match[1]);
    if (owner === process.pid || hostAlive(owner)) continue;
    stale.push(join(parent, entry));
  }
  return stale;
}

function hostAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

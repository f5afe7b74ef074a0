/**
 * Opt-in cgroup limits (`cgroup` option), on cgroup v2 or v1: one cgroup per worker, created under
 * a cgroup the host may write to, the worker moved into it right after spawn (before it has loaded
 * anything). Whatever the worker starts is born in it, wherever it forks or setsid's to. When the
 * worker ends, in any way (asked to, crashed, killed), every process still in its cgroup is killed
 * and the directory removed; cgroups left by a host that died are swept when a pool starts.
 *
 * v2: one directory under the host's own cgroup (or `cgroup.parent`), whose cgroup.controllers must
 * offer what is asked (memory, cpu, pids) — a systemd unit with Delegate=yes, a container with its
 * own cgroup namespace. v1: one directory per hierarchy used (memory, cpu, pids, and freezer when
 * mounted, to stop forks while the cgroup is emptied), each under the host's own cgroup in that
 * hierarchy. v2 is used when it offers every controller asked for, else v1; when neither does, the
 * option is refused up front with a ConfigurationError that names what is missing: never weaker.
 */
import { accessSync, constants, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { ConfigurationError } from '@process-sandbox/abstractions';
import { CGROUP_PREFIX, cgroup2Own, killCgroup, removeCgroupDirs, removeCgroupDirsNow, staleCgroups, v1Hierarchies } from './cgroup-fs.js';
import type { Logger } from './logger.js';

export interface CgroupLimits {
  /** Memory limit: bytes (a number) or cgroup syntax such as '512M'. Past it the kernel OOM-kills the worker. Default: hardMemoryLimitMB, if set. */
  memoryMax?: number | string;
  /** CPU quota: CPUs as a number (0.5 = half of one CPU) or cgroup v2 syntax such as '50000 100000'. */
  cpuMax?: number | string;
  /** Most processes (and threads) in the worker's cgroup: the worker and all it starts. */
  pidsMax?: number;
  /** cgroup v2 only: the delegated cgroup to create the workers' cgroups under. Default: the host's own cgroup. */
  parent?: string;
}

/** One directory to make per worker: under `parent`, with these files written in this order. */
interface Hierarchy {
  parent: string;
  controllers: string[];
  files: [name: string, value: string][];
}

export interface ResolvedCgroup {
  version: 1 | 2;
  hierarchies: Hierarchy[];
  /** Index in `hierarchies` of the one with the memory controller (OOM kills are counted there). */
  memory: number | undefined;
  /** v1: index of the freezer hierarchy, used to stop forks while the cgroup is emptied. */
  freezer: number | undefined;
  /** The memory limit in bytes, for messages. */
  memoryBytes: number | undefined;
}

const CPU_PERIOD_US = 100_000;
const KEYS = ['memoryMax', 'cpuMax', 'pidsMax', 'parent'];

/** Validates the `cgroup` option, finds the hierarchy to use, and sweeps cgroups left by dead hosts. */
export function resolveCgroup(value: unknown, hardMemoryLimitMB?: number): ResolvedCgroup | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new ConfigurationError('cgroup', "expected an object such as { memoryMax: '512M', cpuMax: 1 }");
  const input = value as CgroupLimits;
  for (const key of Object.keys(input)) {
    if (!KEYS.includes(key)) throw new ConfigurationError('cgroup', `unknown key '${key}'; known keys are ${KEYS.join(', ')}`);
  }
  const memoryMax = memory(input.memoryMax) ?? (hardMemoryLimitMB === undefined ? undefined : String(hardMemoryLimitMB * 1024 * 1024));
  const cpuMax = cpu(input.cpuMax);
  const pidsMax = pids(input.pidsMax);
  const wanted = [memoryMax !== undefined ? 'memory' : '', cpuMax !== undefined ? 'cpu' : '', pidsMax !== undefined ? 'pids' : ''].filter(Boolean);
  if (process.platform !== 'linux') throw new ConfigurationError('cgroup', `cgroups exist on Linux only, this is ${process.platform}; leave the cgroup option out`);
  if (input.parent !== undefined && (typeof input.parent !== 'string' || input.parent === '')) throw new ConfigurationError('cgroup', `parent must be a directory path, got ${JSON.stringify(input.parent)}`);

  const v2 = tryV2(input.parent, wanted);
  let resolved: Omit<ResolvedCgroup, 'memoryBytes'>;
  if (typeof v2 !== 'string') {
    resolved = { version: 2, hierarchies: [{ parent: v2.parent, controllers: wanted, files: v2Files(memoryMax, cpuMax, pidsMax) }], memory: memoryMax !== undefined ? 0 : undefined, freezer: undefined };
  } else {
    const v1 = input.parent === undefined ? tryV1(wanted, memoryMax, cpuMax, pidsMax) : 'cgroup.parent names a cgroup v2 directory';
    if (typeof v1 === 'string') {
      throw new ConfigurationError('cgroup', `no usable cgroup for ${wanted.length > 0 ? `the ${wanted.join(', ')} controller(s)` : 'the workers'}: cgroup v2: ${v2}; cgroup v1: ${v1}. The cgroup option needs a cgroup directory the host may write to, offering those controllers (v2: a delegation such as a systemd unit with Delegate=yes, named with cgroup.parent; v1: the hierarchies mounted and writable, as root); or leave the cgroup option out`);
    }
    resolved = v1;
  }
  for (const h of resolved.hierarchies) sweep(h.parent, resolved);
  return { ...resolved, memoryBytes: memoryMax === undefined ? undefined : bytesOf(memoryMax) };
}

function memory(value: unknown): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value === 'number' && Number.isInteger(value) && value >= 1024 * 1024) return String(value);
  if (typeof value === 'string' && /^(\d+[KMG]?|max)$/.test(value) && (value === 'max' || bytesOf(value) >= 1024 * 1024)) return value;
  throw new ConfigurationError('cgroup', `memoryMax must be a number of bytes (at least 1 MiB) or a string like '512M', got ${JSON.stringify(value)}`);
}

function bytesOf(value: string): number {
  if (value === 'max') return Infinity;
  const unit = { K: 1024, M: 1024 ** 2, G: 1024 ** 3 }[value.slice(-1)] ?? 1;
  return parseInt(value, 10) * unit;
}

function cpu(value: unknown): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value === 'number' && Number.isFinite(value) && value > 0) return `${Math.max(1000, Math.round(value * CPU_PERIOD_US))} ${CPU_PERIOD_US}`;
  if (typeof value === 'string' && /^(\d+|max)( \d+)?$/.test(value)) return value;
  throw new ConfigurationError('cgroup', `cpuMax must be a number of CPUs (such as 0.5) or a string like '50000 100000', got ${JSON.stringify(value)}`);
}

function pids(value: unknown): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value === 'number' && Number.isInteger(value) && value >= 1 && value <= 1 << 22) return String(value);
  throw new ConfigurationError('cgroup', `pidsMax must be a whole number of processes from 1 (the worker alone) up, got ${JSON.stringify(value)}`);
}

function writable(dir: string): boolean {
  try {
    accessSync(dir, constants.W_OK);
    return true;
  } catch {
    return false;
  }
}

/** The v2 parent directory, or why there is none. */
function tryV2(requested: string | undefined, wanted: string[]): { parent: string } | string {
  let parent = requested;
  if (parent === undefined) {
    const found = cgroup2Own();
    if (!found) return 'no cgroup2 file system is mounted';
    if (!found.own) return 'this process is in no cgroup v2 (/proc/self/cgroup has no 0:: line)';
    parent = found.own;
  }
  if (!existsSync(join(parent, 'cgroup.controllers'))) return `${parent} is not a cgroup v2 directory`;
  if (!writable(parent)) return `${parent} is not writable by this process`;
  const available = readFileSync(join(parent, 'cgroup.controllers'), 'utf8').trim().split(/\s+/).filter(Boolean);
  const missing = wanted.filter((c) => !available.includes(c));
  if (missing.length > 0) return `${parent} offers the controllers '${available.join(' ')}', not ${missing.join(' and ')}`;
  const enabled = readFileSync(join(parent, 'cgroup.subtree_control'), 'utf8').trim().split(/\s+/);
  const toEnable = wanted.filter((c) => !enabled.includes(c));
  if (toEnable.length > 0) {
    try {
      writeFileSync(join(parent, 'cgroup.subtree_control'), toEnable.map((c) => `+${c}`).join(' '));
    } catch (error) {
      return `enabling ${toEnable.join(' and ')} in ${parent}/cgroup.subtree_control failed (${(error as Error).message}; a cgroup with processes of its own cannot delegate controllers: give a cgroup.parent with none)`;
    }
  }
  return { parent };
}

function v2Files(memoryMax: string | undefined, cpuMax: string | undefined, pidsMax: string | undefined): [string, string][] {
  const files: [string, string][] = [];
  if (memoryMax !== undefined) {
    files.push(['memory.max', memoryMax]);
    // No swapping past the limit: the limit is what the worker may use, in RAM.
    files.push(['memory.swap.max?', '0']);
  }
  if (cpuMax !== undefined) files.push(['cpu.max', cpuMax]);
  if (pidsMax !== undefined) files.push(['pids.max', pidsMax]);
  return files;
}

/** The v1 plan, or why there is none. */
function tryV1(wanted: string[], memoryMax: string | undefined, cpuMax: string | undefined, pidsMax: string | undefined): Omit<ResolvedCgroup, 'memoryBytes'> | string {
  const all = v1Hierarchies();
  if (all.length === 0) return 'no cgroup v1 hierarchy with a controller is mounted';
  const hierarchies: Hierarchy[] = [];
  const problems: string[] = [];
  const use = (controller: string, files: [string, string][]): number | undefined => {
    const h = all.find((x) => x.controllers.includes(controller));
    if (!h) return void problems.push(`no hierarchy with the ${controller} controller is mounted`);
    if (!writable(h.own)) return void problems.push(`${h.own} is not writable by this process`);
    const existing = hierarchies.findIndex((x) => x.parent === h.own);
    if (existing >= 0) {
      hierarchies[existing]!.files.push(...files);
      return existing;
    }
    hierarchies.push({ parent: h.own, controllers: h.controllers, files });
    return hierarchies.length - 1;
  };
  let memoryIndex: number | undefined;
  if (memoryMax !== undefined) {
    const limit = memoryMax === 'max' ? '-1' : memoryMax;
    // memsw (memory + swap) no higher than memory: no swapping past the limit. Written after it.
    memoryIndex = use('memory', [['memory.limit_in_bytes', limit], ['memory.memsw.limit_in_bytes?', limit]]);
  }
  if (cpuMax !== undefined) {
    const [quota, period = String(CPU_PERIOD_US)] = cpuMax.split(' ');
    use('cpu', [['cpu.cfs_period_us', period], ['cpu.cfs_quota_us', quota === 'max' ? '-1' : quota!]]);
  }
  if (pidsMax !== undefined) use('pids', [['pids.max', pidsMax]]);
  if (problems.length > 0) return problems.join('; ');
  // The freezer, when there is one we may write to, makes emptying the cgroup race-free.
  const freezerH = all.find((x) => x.controllers.includes('freezer') && writable(x.own));
  const freezer = freezerH ? use('freezer', []) : undefined;
  if (wanted.length === 0 && hierarchies.length === 0) {
    // Nothing to limit: any writable hierarchy holds the worker's descendants together.
    const any = all.find((x) => writable(x.own));
    if (!any) return 'no mounted hierarchy is writable by this process';
    hierarchies.push({ parent: any.own, controllers: any.controllers, files: [] });
  }
  return { version: 1, hierarchies, memory: memoryIndex, freezer };
}

/** Removes per-worker cgroups whose host died (SIGKILL, a crash): nothing of theirs may outlive them. */
function sweep(parent: string, cgroup: Omit<ResolvedCgroup, 'memoryBytes'>): void {
  for (const dir of staleCgroups(parent)) {
    const freezer = cgroup.freezer !== undefined && cgroup.hierarchies[cgroup.freezer]!.parent === parent ? dir : undefined;
    killCgroup(dir, freezer);
    removeCgroupDirs([dir], freezer, () => {});
  }
}

/** Worker pid → its cgroup directories and, once it exited, whether the OOM killer ended it. */
const cgroups = new Map<number, { dirs: string[]; oomKilled: boolean }>();
const live = new Set<string[]>();
let sequence = 0;
let exitHooked = false;

/**
 * Creates the worker's cgroup and moves it in; throws (after killing the worker) when that fails.
 * When the worker exits, everything left in its cgroup is killed and the cgroup removed.
 */
export function placeInCgroup(child: ChildProcess, cgroup: ResolvedCgroup, logger: Logger): void {
  const pid = child.pid!;
  const name = `${CGROUP_PREFIX}${process.pid}-${++sequence}`;
  const dirs = cgroup.hierarchies.map((h) => join(h.parent, name));
  const freezer = cgroup.freezer === undefined ? undefined : dirs[cgroup.freezer];
  const giveUp = (dir: string, error: Error): void => logger.warn({ dir, error }, `process-sandbox: could not remove the worker cgroup ${dir}: ${error.message}`);
  try {
    for (const [i, h] of cgroup.hierarchies.entries()) {
      mkdirSync(dirs[i]!);
      for (const [file, value] of h.files) {
        // A trailing '?': written only where the kernel has it (swap accounting may be off).
        const optional = file.endsWith('?');
        const path = join(dirs[i]!, optional ? file.slice(0, -1) : file);
        if (optional && !existsSync(path)) continue;
        writeFileSync(path, value);
      }
    }
    for (const dir of dirs) writeFileSync(join(dir, 'cgroup.procs'), String(pid));
  } catch (error) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {}
    removeCgroupDirs(dirs, freezer, giveUp);
    throw new Error(`could not place the worker in its cgroup ${dirs.join(', ')}: ${(error as Error).message}`);
  }
  const entry = { dirs, oomKilled: false };
  cgroups.set(pid, entry);
  live.add(dirs);
  hookHostExit();
  // Registered before the worker handle's own exit listener: the OOM verdict is ready when it asks.
  child.once('exit', () => {
    entry.oomKilled = cgroup.memory !== undefined && oomKills(dirs[cgroup.memory]!, cgroup.version) > 0;
    setTimeout(() => cgroups.delete(pid), 60_000).unref();
    live.delete(dirs);
    // A daemon the worker left behind (double fork, setsid) is still in its cgroup: it ends here.
    killCgroup(dirs[0]!, freezer);
    removeCgroupDirs(dirs, freezer, giveUp);
  });
}

/** The host exits with workers alive: kill what is in their cgroups now; a later start sweeps the directories. */
function hookHostExit(): void {
  if (exitHooked) return;
  exitHooked = true;
  process.on('exit', () => {
    for (const dirs of live) {
      killCgroup(dirs[0]!);
      removeCgroupDirsNow(dirs);
    }
  });
}

/** Whether the cgroup OOM killer ended the worker `pid` (known once it exited). */
export function cgroupOomKilled(pid: number): boolean {
  return cgroups.get(pid)?.oomKilled ?? false;
}

function oomKills(dir: string, version: 1 | 2): number {
  try {
    const events = readFileSync(join(dir, version === 2 ? 'memory.events' : 'memory.oom_control'), 'utf8');
    return Number(/^oom_kill (\d+)$/m.exec(events)?.[1] ?? 0);
  } catch {
    return 0;
  }
}

/**
 * Opt-in cgroup v2 limits (`cgroup` option): one cgroup per worker, created under a delegated
 * cgroup the host may write to, the worker moved into it right after spawn (before it has loaded
 * anything), and removed when the worker exits (cgroup.kill first, which also ends any descendant
 * that escaped the process group).
 *
 * Needs a cgroup v2 hierarchy whose parent cgroup is writable and offers the `memory` and `cpu`
 * controllers to its children (its cgroup.subtree_control). That is the case under a systemd unit
 * with Delegate=yes, or a container given its own cgroup namespace. The parent is the host's own
 * cgroup unless `cgroup.parent` names another. When none is usable the option is refused up front
 * with a ConfigurationError that says what is missing.
 */
import { accessSync, constants, existsSync, mkdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { ConfigurationError } from '@process-sandbox/abstractions';
import type { Logger } from './logger.js';

export interface CgroupLimits {
  /** memory.max: bytes (a number) or cgroup syntax such as '512M'. Past it the kernel OOM-kills the worker. */
  memoryMax?: number | string;
  /** cpu.max: CPUs as a number (0.5 = half of one CPU) or cgroup syntax such as '50000 100000'. */
  cpuMax?: number | string;
  /** The delegated cgroup to create the workers' cgroups under (a directory). Default: the host's own cgroup. */
  parent?: string;
}

export interface ResolvedCgroup {
  parent: string;
  memoryMax: string | undefined;
  cpuMax: string | undefined;
}

const CPU_PERIOD_US = 100_000;

/** Validates the `cgroup` option and checks that a delegation is really there. */
export function resolveCgroup(value: unknown): ResolvedCgroup | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new ConfigurationError('cgroup', "expected an object such as { memoryMax: '512M', cpuMax: 1 }");
  const input = value as CgroupLimits;
  for (const key of Object.keys(input)) {
    if (key !== 'memoryMax' && key !== 'cpuMax' && key !== 'parent') throw new ConfigurationError('cgroup', `unknown key '${key}'; known keys are memoryMax, cpuMax, parent`);
  }
  const memoryMax = memory(input.memoryMax);
  const cpuMax = cpu(input.cpuMax);
  if (memoryMax === undefined && cpuMax === undefined) throw new ConfigurationError('cgroup', 'give memoryMax, cpuMax or both');
  const controllers = [memoryMax !== undefined ? 'memory' : undefined, cpuMax !== undefined ? 'cpu' : undefined].filter((c): c is string => c !== undefined);
  const parent = delegatedParent(input.parent, controllers);
  return { parent, memoryMax, cpuMax };
}

function memory(value: unknown): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value === 'number' && Number.isInteger(value) && value >= 1024 * 1024) return String(value);
  if (typeof value === 'string' && /^(\d+[KMG]?|max)$/.test(value)) return value;
  throw new ConfigurationError('cgroup', `memoryMax must be a number of bytes (at least 1 MiB) or a string like '512M', got ${JSON.stringify(value)}`);
}

function cpu(value: unknown): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value === 'number' && Number.isFinite(value) && value > 0) return `${Math.max(1000, Math.round(value * CPU_PERIOD_US))} ${CPU_PERIOD_US}`;
  if (typeof value === 'string' && /^(\d+|max)( \d+)?$/.test(value)) return value;
  throw new ConfigurationError('cgroup', `cpuMax must be a number of CPUs (such as 0.5) or a string like '50000 100000', got ${JSON.stringify(value)}`);
}

/** The cgroup v2 mount point, from /proc/self/mountinfo; undefined when there is none. */
function cgroup2Mount(): string | undefined {
  let mountinfo: string;
  try {
    mountinfo = readFileSync('/proc/self/mountinfo', 'utf8');
  } catch {
    return undefined;
  }
  for (const line of mountinfo.split('\n')) {
    const [before, after] = line.split(' - ');
    if (after?.startsWith('cgroup2 ')) return before!.split(' ')[4];
  }
  return undefined;
}

function delegatedParent(requested: unknown, controllers: string[]): string {
  const refuse = (why: string): never => {
    throw new ConfigurationError('cgroup', `no usable cgroup v2 delegation: ${why}. The cgroup option needs a cgroup v2 directory the host may write to whose subtree offers the ${controllers.join(' and ')} controller(s) (for example a systemd unit with Delegate=yes); name it with cgroup.parent, or leave the cgroup option out`);
  };
  if (process.platform !== 'linux') refuse(`cgroups exist on Linux only, this is ${process.platform}`);
  let parent: string;
  if (requested !== undefined) {
    if (typeof requested !== 'string' || requested === '') throw new ConfigurationError('cgroup', `parent must be a directory path, got ${JSON.stringify(requested)}`);
    parent = requested;
  } else {
    const mount = cgroup2Mount();
    if (!mount) refuse('no cgroup2 file system is mounted');
    const own = readFileSync('/proc/self/cgroup', 'utf8').split('\n').find((l) => l.startsWith('0::'));
    if (!own) refuse('this process is in no cgroup v2 (/proc/self/cgroup has no 0:: line)');
    parent = join(mount!, own!.slice(3));
  }
  if (!existsSync(join(parent, 'cgroup.controllers'))) refuse(`${parent} is not a cgroup v2 directory`);
  try {
    accessSync(parent, constants.W_OK);
  } catch {
    refuse(`${parent} is not writable by this process`);
  }
  const available = readFileSync(join(parent, 'cgroup.controllers'), 'utf8').trim().split(/\s+/).filter(Boolean);
  const missing = controllers.filter((c) => !available.includes(c));
  if (missing.length > 0) refuse(`${parent} offers the controllers '${available.join(' ')}', not ${missing.join(' and ')}`);
  const enabled = () => readFileSync(join(parent, 'cgroup.subtree_control'), 'utf8').trim().split(/\s+/);
  const toEnable = controllers.filter((c) => !enabled().includes(c));
  if (toEnable.length > 0) {
    try {
      writeFileSync(join(parent, 'cgroup.subtree_control'), toEnable.map((c) => `+${c}`).join(' '));
    } catch (error) {
      refuse(`enabling ${toEnable.join(' and ')} in ${parent}/cgroup.subtree_control failed (${(error as Error).message}; a cgroup with processes of its own cannot delegate controllers: give a cgroup.parent with none)`);
    }
  }
  return parent;
}

/** Worker pid → its cgroup directory and, once it exited, whether the OOM killer ended it. */
const cgroups = new Map<number, { dir: string; oomKilled: boolean }>();
let sequence = 0;

/**
 * Creates the worker's cgroup and moves it in; throws (after killing the worker) when that fails.
 * The cgroup is emptied (cgroup.kill) and removed when the worker exits.
 */
export function placeInCgroup(child: ChildProcess, cgroup: ResolvedCgroup, logger: Logger): void {
  const pid = child.pid!;
  const dir = join(cgroup.parent, `process-sandbox-${process.pid}-${++sequence}`);
  try {
    mkdirSync(dir);
    if (cgroup.memoryMax !== undefined) {
      writeFileSync(join(dir, 'memory.max'), cgroup.memoryMax);
      if (existsSync(join(dir, 'memory.swap.max'))) writeFileSync(join(dir, 'memory.swap.max'), '0');
    }
    if (cgroup.cpuMax !== undefined) writeFileSync(join(dir, 'cpu.max'), cgroup.cpuMax);
    writeFileSync(join(dir, 'cgroup.procs'), String(pid));
  } catch (error) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {}
    removeCgroup(dir, logger);
    throw new Error(`could not place the worker in its cgroup ${dir}: ${(error as Error).message}`);
  }
  const entry = { dir, oomKilled: false };
  cgroups.set(pid, entry);
  // Registered before the worker handle's own exit listener: the OOM verdict is ready when it asks.
  child.once('exit', () => {
    entry.oomKilled = oomKills(dir) > 0;
    setTimeout(() => cgroups.delete(pid), 60_000).unref();
    removeCgroup(dir, logger);
  });
}

/** Whether the cgroup OOM killer ended the worker `pid` (known once it exited). */
export function cgroupOomKilled(pid: number): boolean {
  return cgroups.get(pid)?.oomKilled ?? false;
}

function oomKills(dir: string): number {
  try {
    const events = readFileSync(join(dir, 'memory.events'), 'utf8');
    return Number(/^oom_kill (\d+)$/m.exec(events)?.[1] ?? 0);
  } catch {
    return 0;
  }
}

/** cgroup.kill (Linux 5.14+) ends everything left in it; rmdir succeeds once they are reaped. */
function removeCgroup(dir: string, logger: Logger, attempt = 0): void {
  try {
    if (attempt === 0 && existsSync(join(dir, 'cgroup.kill'))) writeFileSync(join(dir, 'cgroup.kill'), '1');
  } catch {}
  try {
    rmdirSync(dir);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return;
    if (code === 'EBUSY' && attempt < 40) {
      setTimeout(() => removeCgroup(dir, logger, attempt + 1), 50).unref();
      return;
    }
    logger.warn({ dir, error }, `process-sandbox: could not remove the worker cgroup ${dir}: ${(error as Error).message}`);
  }
}

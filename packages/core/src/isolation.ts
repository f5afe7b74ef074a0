/**
 * OS-level confinement of workers, all opt-in:
 *
 *  - `env: 'minimal'` (+ `envPassthrough`): workers start without the host's environment, so no
 *    secret in it reaches them. They get PATH, TZ, LANG and LC_ALL (needed to find programs and to
 *    format dates and text as the host does; none is a secret), the variables named in
 *    `envPassthrough`, and the library's own (removed by the worker before the implementation loads).
 *    Not HOME: os.homedir() still answers from the password database.
 *  - `user: { uid, gid }` (Linux): workers run as that user, with no supplementary groups. Needs root
 *    (CAP_SETUID, CAP_SETGID). The channel to the host is a socket the worker inherits
 *    (inherited-channel.ts): no file to open to that user, and nothing another user can reach.
 *  - `isolateNetwork: true` (Linux): each worker starts in a fresh network namespace through
 *    util-linux's `unshare --net`, which holds only a loopback device, down: no address, no route,
 *    nothing to connect to. The channel to the host is an inherited socket, which a network namespace
 *    does not affect. Needs root (CAP_SYS_ADMIN), or unprivileged user namespaces (then
 *    `unshare --user --net`; not with `user`). Probed once, when the options are resolved.
 *
 * Every tool here execs the next (unshare, setpriv, prlimit, then node): the worker keeps its pid, its
 * process group and the lifeline descriptor.
 */
import { execFileSync } from 'node:child_process';
import { accessSync, constants, readFileSync, statSync } from 'node:fs';
import { delimiter, dirname, join } from 'node:path';
import { ConfigurationError } from '@process-sandbox/abstractions';
import type { WorkerLimits } from '@process-sandbox/abstractions';
import { workerBinPath } from '@process-sandbox/worker';

/** Host variables a minimal environment keeps (when the host has them). */
const MINIMAL_ENV: readonly string[] = Object.freeze(
  process.platform === 'win32'
    ? ['PATH', 'PATHEXT', 'SystemRoot', 'SystemDrive', 'windir', 'TEMP', 'TMP', 'COMSPEC', 'TZ']
    : ['PATH', 'TZ', 'LANG', 'LC_ALL'],
);

/** The host's variables a minimal environment keeps. */
export function minimalEnvironment(): Record<string, string | undefined> {
  const env: Record<string, string | undefined> = {};
  for (const name of MINIMAL_ENV) if (process.env[name] !== undefined) env[name] = process.env[name];
  return env;
}

/** Validates `envPassthrough` (meaningful only when `env` is given); returns the names. */
export function passthroughNames(value: unknown, envGiven: boolean): string[] {
  if (value === undefined) return [];
  if (!Array.isArray(value) || value.some((n) => typeof n !== 'string' || n === '' || n.includes('='))) {
    throw new ConfigurationError('envPassthrough', 'expected an array of environment variable names');
  }
  if (!envGiven) throw new ConfigurationError('envPassthrough', "needs env: 'minimal' or an env object; without env, workers inherit the whole environment already");
  return value as string[];
}

export interface WorkerUser {
  uid: number;
  gid: number;
}

export type ResolvedUser = Readonly<WorkerUser>;

export interface ResolvedNetworkIsolation {
  /** Absolute path of util-linux's unshare. */
  readonly unshare: string;
  /** Arguments before the uid/gid switch and the command: `['--net']` or `['--user', '--net']`. */
  readonly namespaces: readonly string[];
}

/** Capability bits of the effective set (linux/capability.h). */
const CAP_SETGID = 6n;
const CAP_SETUID = 7n;
const CAP_SYS_ADMIN = 21n;

export function effectiveCapabilities(): bigint {
  try {
    const line = readFileSync('/proc/self/status', 'utf8').split('\n').find((l) => l.startsWith('CapEff:'));
    return line ? BigInt(`0x${line.slice(7).trim()}`) : 0n;
  } catch {
    return 0n;
  }
}

export const hasCapability = (caps: bigint, bit: bigint): boolean => ((caps >> bit) & 1n) === 1n;

export function resolveUser(value: unknown, workerModule: string): ResolvedUser | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new ConfigurationError('user', 'expected { uid, gid }, e.g. { uid: 65534, gid: 65534 }');
  for (const key of Object.keys(value)) {
    if (key !== 'uid' && key !== 'gid') throw new ConfigurationError(`user.${key}`, 'unknown field; known are uid, gid');
  }
  const { uid, gid } = value as Partial<WorkerUser>;
  for (const [name, id] of [['uid', uid], ['gid', gid]] as const) {
    if (typeof id !== 'number' || !Number.isInteger(id) || id < 0 || id >= 0xffffffff) throw new ConfigurationError(`user.${name}`, `expected a whole number from 0 to 4294967294, got ${String(id)}`);
  }
  if (process.platform !== 'linux') throw new ConfigurationError('user', `running workers as another user is supported on Linux only, not on ${process.platform}`);
  const caps = effectiveCapabilities();
  const missing = [['CAP_SETUID', CAP_SETUID], ['CAP_SETGID', CAP_SETGID]].filter(([, bit]) => !hasCapability(caps, bit as bigint)).map(([name]) => name);
  if (missing.length > 0) {
    throw new ConfigurationError('user', `running workers as uid ${uid} needs root (or ${missing.join(', ')}); this process runs as uid ${process.getuid?.()} without ${missing.join(', ')}`);
  }
  for (const path of [workerBinPath, workerModule]) {
    const why = unreadableBy(path, uid!, gid!);
    if (why) throw new ConfigurationError('user', `uid ${uid} (gid ${gid}) cannot read ${path}: ${why}`);
  }
  return Object.freeze({ uid: uid!, gid: gid! });
}

/** Why `uid`/`gid` (no supplementary groups) cannot read `path`, judged by mode bits; undefined if it can. */
function unreadableBy(path: string, uid: number, gid: number): string | undefined {
  if (uid === 0) return undefined;
  const allows = (p: string, bit: number): boolean => {
    const s = statSync(p);
    const shift = s.uid === uid ? 6 : s.gid === gid ? 3 : 0;
    return ((s.mode >> shift) & bit) !== 0;
  };
  try {
    for (let dir = dirname(path); ; dir = dirname(dir)) {
      if (!allows(dir, 1)) return `${dir} is not searchable by it`;
      if (dir === dirname(dir)) break;
    }
    if (!allows(path, 4)) return 'the file is not readable by it';
  } catch (error) {
    return (error as Error).message;
  }
  return undefined;
}

const probes = new Map<string, string | undefined>();

/** Runs `file args` once per process; undefined if it exited 0, else why not. */
export function probe(file: string, args: string[]): string | undefined {
  const key = [file, ...args].join(' ');
  if (probes.has(key)) return probes.get(key);
  let why: string | undefined;
  try {
    execFileSync(file, args, { stdio: ['ignore', 'ignore', 'pipe'], timeout: 5_000 });
  } catch (error) {
    const e = error as { stderr?: Buffer; message: string };
    why = String(e.stderr ?? '').trim() || e.message;
  }
  probes.set(key, why);
  return why;
}

/** An executable named `name` on the host's PATH, or undefined. */
export function findTool(name: string): string | undefined {
  for (const dir of (process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin').split(delimiter)) {
    if (!dir) continue;
    const candidate = join(dir, name);
    try {
      accessSync(candidate, constants.X_OK);
      if (statSync(candidate).isFile()) return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}

export function resolveNetworkIsolation(value: unknown, user: ResolvedUser | undefined): ResolvedNetworkIsolation | undefined {
  if (value === undefined || value === false) return undefined;
  if (value !== true) throw new ConfigurationError('isolateNetwork', `expected a boolean, got ${typeof value}`);
  if (process.platform !== 'linux') throw new ConfigurationError('isolateNetwork', `network namespaces are Linux only, not available on ${process.platform}`);
  const unshare = findTool('unshare');
  if (!unshare) throw new ConfigurationError('isolateNetwork', "needs util-linux's unshare on the PATH, and none was found");
  const privileged = probe(unshare, ['--net', '--', 'true']);
  if (privileged === undefined) return Object.freeze({ unshare, namespaces: Object.freeze(['--net']) });
  const why = `'unshare --net' failed here (${privileged})`;
  if (user) throw new ConfigurationError('isolateNetwork', `${why}: with user, it needs root (CAP_SYS_ADMIN)`);
  const unprivileged = probe(unshare, ['--user', '--net', '--', 'true']);
  if (unprivileged === undefined) return Object.freeze({ unshare, namespaces: Object.freeze(['--user', '--net']) });
  const caps = effectiveCapabilities();
  throw new ConfigurationError('isolateNetwork', `${why}, and so did 'unshare --user --net' (${unprivileged}): it needs root (CAP_SYS_ADMIN${hasCapability(caps, CAP_SYS_ADMIN) ? '' : ', which this process lacks'}) or unprivileged user namespaces`);
}

/** One program that execs the rest of the command line. */
export type Wrapper = readonly string[];

/** unshare with the namespaces, and the user switch when there is one (spawn's uid/gid would come too early). */
export function networkWrapper(network: ResolvedNetworkIsolation, user: ResolvedUser | undefined): Wrapper {
  const switchUser = user ? ['--setgid', String(user.gid), '--setuid', String(user.uid)] : [];
  return [network.unshare, ...network.namespaces, ...switchUser, '--'];
}

/** setpriv, arming PR_SET_PDEATHSIG=SIGKILL: the parent-death guard of a worker that may not start its watchdog thread. */
export function deathSignalWrapper(setpriv: string): Wrapper {
  return [setpriv, '--pdeathsig', 'SIGKILL', '--'];
}

/** prlimit, setting rlimits before node starts: for a worker that may neither load koffi nor run prlimit itself. */
export function rlimitWrapper(prlimit: string, limits: WorkerLimits): Wrapper {
  const args: string[] = [prlimit];
  if (limits.maxOpenFiles !== undefined) args.push(`--nofile=${limits.maxOpenFiles}:${limits.maxOpenFiles}`);
  if (limits.maxAddressSpaceMB !== undefined) {
    const bytes = BigInt(limits.maxAddressSpaceMB) * 1024n * 1024n;
    args.push(`--as=${bytes}:${bytes}`);
  }
  // As the worker sets it itself: SIGXCPU at the limit, SIGKILL a second later.
  if (limits.maxCpuSeconds !== undefined) args.push(`--cpu=${limits.maxCpuSeconds}:${limits.maxCpuSeconds + 1}`);
  args.push('--');
  return args;
}

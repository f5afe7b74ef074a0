/**
 * Linux confinements beyond isolation.ts, each opt-in on its own and bundled by `isolation`
 * (isolation-level.ts):
 *
 *  - `noNewPrivileges`: PR_SET_NO_NEW_PRIVS. No set-uid program, no file capability, ever raises what
 *    the worker or anything it runs may do. Needs no privilege.
 *  - `dropCapabilities`: an empty capability bounding set and inheritable set. A worker of a root host
 *    is still uid 0 but holds no capability once node is exec'd (the kernel computes a root process's
 *    capabilities from the bounding set), and can never get one back. Needs CAP_SETPCAP.
 *  - `namespaces: { ipc, uts, pid, mount }`: fresh namespaces, through util-linux's unshare. `pid`:
 *    the worker is pid 1 of its own namespace and sees only its descendants (its /proc is remounted);
 *    when it ends, however it ends, the kernel kills everything in the namespace: a daemon it starts
 *    cannot outlive it. `mount`: a read-only view of every mount except `writablePaths`, and a
 *    private, empty /tmp. Need CAP_SYS_ADMIN.
 *
 * Order of the command line (worker-command.ts), each program exec'ing the next:
 *   setpriv --pdeathsig SIGKILL                 pid: unshare forks; it must die with the host, and
 *                                               its --kill-child then kills the namespace's pid 1
 *   unshare --ipc --uts --mount --pid --fork …  the namespaces (creating them needs the capabilities)
 *   sh -c MOUNT_SETUP                           mount: read-only remounts (needs them too)
 *   setpriv [--reuid --regid] --no-new-privs --bounding-set -all --inh-caps -all
 *                                               last: the user switch and the drop
 * With `pid`, unshare forks: the process the host spawned (whose pid the pool reports, kills by
 * process group and tree) is unshare; the one that runs node is its only child (forkedChild), which
 * the health sampler and the memory watch read instead.
 */
import { accessSync, constants, readFileSync, realpathSync } from 'node:fs';
import { isAbsolute, normalize } from 'node:path';
import { ConfigurationError } from '@process-sandbox/abstractions';
import { effectiveCapabilities, findTool, hasCapability, probe, type ResolvedUser, type Wrapper } from './isolation.js';

/** Linux namespaces a worker gets of its own (needs CAP_SYS_ADMIN). */
export interface NamespaceOptions {
  /** A PID namespace: the worker sees only its own descendants, and all of them end with it. */
  pid?: boolean;
  /** A mount namespace: everything read-only except `writablePaths`; /tmp private and empty. */
  mount?: boolean;
  /** An IPC namespace: no System V IPC object or POSIX message queue of the host is reachable. */
  ipc?: boolean;
  /** A UTS namespace: the worker's hostname is its own. */
  uts?: boolean;
}

export interface ResolvedConfinement {
  readonly pid: boolean;
  readonly mount: boolean;
  readonly ipc: boolean;
  readonly uts: boolean;
  readonly writablePaths: readonly string[];
  readonly noNewPrivileges: boolean;
  readonly dropCapabilities: boolean;
  readonly unshare: string | undefined;
  readonly mountTool: string | undefined;
  readonly setpriv: string | undefined;
}

const CAP_SETPCAP = 8n;
const SH = '/bin/sh';

function isExecutable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}
const CAP_SYS_ADMIN = 21n;
const NAMESPACE_KEYS = ['pid', 'mount', 'ipc', 'uts'] as const;

export interface ConfinementInput {
  namespaces?: unknown;
  writablePaths?: unknown;
  noNewPrivileges?: unknown;
  dropCapabilities?: unknown;
}

export function resolveConfinement(input: ConfinementInput): ResolvedConfinement | undefined {
  const ns = namespaces(input.namespaces);
  const noNewPrivileges = bool(input.noNewPrivileges, 'noNewPrivileges');
  const dropCapabilities = bool(input.dropCapabilities, 'dropCapabilities');
  const writablePaths = writable(input.writablePaths, ns.mount);
  const any = ns.pid || ns.mount || ns.ipc || ns.uts || noNewPrivileges || dropCapabilities;
  if (!any) return undefined;
  const option = ns.pid || ns.mount || ns.ipc || ns.uts ? 'namespaces' : noNewPrivileges ? 'noNewPrivileges' : 'dropCapabilities';
  if (process.platform !== 'linux') throw new ConfigurationError(option, `namespaces, capabilities and no_new_privs are Linux only, not available on ${process.platform}`);
  const setpriv = findTool('setpriv');
  if (!setpriv) throw new ConfigurationError(option, "needs util-linux's setpriv on the PATH, and none was found");
  const caps = effectiveCapabilities();
  if (dropCapabilities && !hasCapability(caps, CAP_SETPCAP)) {
    throw new ConfigurationError('dropCapabilities', `emptying the workers' capability bounding set needs CAP_SETPCAP, which this process (uid ${process.getuid?.()}) lacks; a host that is not root starts its workers without capabilities anyway: set dropCapabilities: false`);
  }
  let unshare: string | undefined;
  let mountTool: string | undefined;
  if (ns.pid || ns.mount || ns.ipc || ns.uts) {
    unshare = findTool('unshare');
    if (!unshare) throw new ConfigurationError('namespaces', "needs util-linux's unshare on the PATH, and none was found");
    if (ns.mount) {
      mountTool = findTool('mount');
      if (!mountTool) throw new ConfigurationError('namespaces.mount', "needs util-linux's mount on the PATH, and none was found");
    }
    // The read-only remounts (and, with a cgroup, the wait before the PID namespace's fork) are sh scripts.
    if ((ns.mount || ns.pid) && !isExecutable(SH)) throw new ConfigurationError(ns.mount ? 'namespaces.mount' : 'namespaces.pid', `needs ${SH}, which is not an executable here`);
    const args = namespaceArgs({ ...ns, unshare } as ResolvedConfinement);
    const why = probe(unshare, [...args, '--', 'true']);
    if (why !== undefined) {
      const wanted = NAMESPACE_KEYS.filter((k) => ns[k]).join(', ');
      throw new ConfigurationError('namespaces', `'unshare ${args.join(' ')}' failed here (${why}): ${wanted} namespaces need root (CAP_SYS_ADMIN${hasCapability(caps, CAP_SYS_ADMIN) ? '' : ', which this process lacks'})`);
    }
  }
  return Object.freeze({ ...ns, writablePaths: Object.freeze(writablePaths), noNewPrivileges, dropCapabilities, unshare, mountTool, setpriv });
}

function namespaces(value: unknown): Required<NamespaceOptions> {
  const ns = { pid: false, mount: false, ipc: false, uts: false };
  if (value === undefined) return ns;
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new ConfigurationError('namespaces', 'expected an object such as { pid: true, mount: true, ipc: true, uts: true }');
  for (const [key, on] of Object.entries(value)) {
    if (!(NAMESPACE_KEYS as readonly string[]).includes(key)) throw new ConfigurationError(`namespaces.${key}`, `unknown namespace; known are ${NAMESPACE_KEYS.join(', ')} (the network one is isolateNetwork)`);
    ns[key as keyof typeof ns] = bool(on, `namespaces.${key}`);
  }
  return ns;
}

function bool(value: unknown, name: string): boolean {
  if (value === undefined) return false;
  if (typeof value !== 'boolean') throw new ConfigurationError(name, `expected a boolean, got ${typeof value}`);
  return value;
}

function writable(value: unknown, mount: boolean): string[] {
  if (value === undefined) return [];
  if (!Array.isArray(value) || value.some((v) => typeof v !== 'string' || v === '')) throw new ConfigurationError('writablePaths', 'expected an array of absolute paths');
  if (!mount) throw new ConfigurationError('writablePaths', 'needs namespaces: { mount: true } (or isolation: \'maximum\'); without a mount namespace every path the worker may write stays writable');
  return (value as string[]).map((path) => {
    if (!isAbsolute(path)) throw new ConfigurationError('writablePaths', `'${path}' is not an absolute path`);
    if (path.includes('\n')) throw new ConfigurationError('writablePaths', 'a path must not contain a newline');
    const p = normalize(path).replace(/(.)\/$/, '$1');
    if (p === '/tmp' || p.startsWith('/tmp/')) throw new ConfigurationError('writablePaths', `'${path}' is under /tmp, which is a private, empty file system in the worker's mount namespace; choose a directory elsewhere (e.g. under /var/tmp)`);
    let real: string;
    try {
      // As the kernel lists the mount made on it: a symlink in the path would not match, and go read-only.
      real = realpathSync(p);
    } catch (error) {
      throw new ConfigurationError('writablePaths', `'${path}' must exist: ${(error as Error).message}`);
    }
    if (real === '/tmp' || real.startsWith('/tmp/')) throw new ConfigurationError('writablePaths', `'${path}' is ${real}, under /tmp, which is a private, empty file system in the worker's mount namespace; choose a directory elsewhere (e.g. under /var/tmp)`);
    return real;
  });
}

/** unshare's arguments for the namespaces (the pid namespace forks, and remounts /proc for it). */
function namespaceArgs(c: Pick<ResolvedConfinement, 'pid' | 'mount' | 'ipc' | 'uts'>): string[] {
  const args: string[] = [];
  if (c.ipc) args.push('--ipc');
  if (c.uts) args.push('--uts');
  if (c.mount || c.pid) args.push('--mount', '--propagation', 'private');
  // --kill-child: unshare's death (the host's pdeathsig, a kill by pid) kills the namespace's pid 1.
  if (c.pid) args.push('--pid', '--fork', '--kill-child', '--mount-proc');
  return args;
}

/**
 * Run by sh inside the new mount namespace, as root, before the capabilities go: keeps each writable
 * path as a mount of its own, mounts an empty tmpfs on /tmp, then remounts every other mount
 * read-only with its other flags (nosuid, nodev, noexec, atime) as they were: a bind remount sets
 * them all. Any failure fails the worker's start: never a weaker view than asked.
 * Paths under /tmp that hold what the worker runs (its package, the implementation, the cwd: an
 * application installed under /tmp) would vanish under the empty tmpfs: the top-level entries of /tmp
 * that hold them are bound back from the /tmp seen before the mount (through descriptor 3; mount must
 * not canonicalize that path, which would name the new, empty /tmp), and the remount loop makes them
 * read-only like the rest.
 * $1: mount, $2: writable paths, one per line, $3: /tmp entries to keep visible, one per line; the
 * rest: the command to exec.
 */
const MOUNT_SETUP = `set -euf
mount=$1 writable=$2 visible=$3
shift 3
nl='
'
IFS=$nl
for p in $writable; do "$mount" --bind -- "$p" "$p"; done
exec 3</tmp
"$mount" -t tmpfs -o mode=1777,nosuid,nodev tmpfs /tmp
for p in $visible; do
  if [ -d "/proc/self/fd/3/\${p#/tmp/}" ]; then mkdir -p -- "$p"; else : > "$p"; fi
  "$mount" --no-canonicalize --bind -- "/proc/self/fd/3/\${p#/tmp/}" "$p"
done
exec 3<&-
keep() {
  [ "$1" = /tmp ] && return 0
  for p in $writable; do [ "$1" = "$p" ] && return 0; done
  return 1
}
ro() {
  IFS=$nl
  case $5 in *\\\\*) mp=$(printf '%b' "$5") ;; *) mp=$5 ;; esac
  keep "$mp" && return 0
  case $6 in ro | ro,*) return 0 ;; esac
  flags=\${6#r[ow]}
  "$mount" -o "remount,bind,ro\${flags}" -- "$mp"
}
for line in $(cat /proc/self/mountinfo); do
  IFS=' '
  ro $line
done
exec "$@"
`;

/**
 * Waits, before unshare forks, until the host has moved this process into its cgroups: the host does
 * it right after spawn, but a child forked before that would stay outside them (moving a process does
 * not move its children). Builtins only; the host's processStartTimeoutMs bounds the wait.
 * $1: what the cgroup lines name, $2: in how many hierarchies; the rest: the command to exec.
 */
const CGROUP_GATE = `set -euf
want=$1 count=$2
shift 2
while :; do
  found=0
  while IFS= read -r line; do
    case $line in *"$want"*) found=$((found + 1)) ;; esac
  done < /proc/self/cgroup
  [ "$found" -ge "$count" ] && break
done
exec "$@"
`;

/** Where the host's cgroup placement of a worker can be seen from inside it (cgroup.ts names the directories). */
export interface CgroupGate {
  /** A part of the worker cgroups' names: the prefix and the host's pid. */
  readonly name: string;
  readonly hierarchies: number;
}

/** The wrappers of `confinement`, outermost first; `user` is switched to by the last one. */
/** The top-level entries of /tmp (as /tmp/<name>) that hold any of `paths`: kept visible in a mount namespace. */
function tmpEntriesHolding(paths: readonly (string | undefined)[]): string[] {
  const entries = new Set<string>();
  for (const path of paths) {
    if (!path || !isAbsolute(path)) continue;
    let real = path;
    try {
      real = realpathSync(path);
    } catch {
      // not there (yet): its own name decides
    }
    for (const p of new Set([path, real])) {
      const name = p.startsWith('/tmp/') ? p.slice(5).split('/')[0] : undefined;
      if (name) entries.add(`/tmp/${name}`);
    }
  }
  return [...entries];
}

export function confinementWrappers(c: ResolvedConfinement, user: ResolvedUser | undefined, cgroup?: CgroupGate, runs: readonly (string | undefined)[] = []): Wrapper[] {
  const wrappers: Wrapper[] = [];
  if (c.pid) wrappers.push([c.setpriv!, '--pdeathsig', 'SIGKILL', '--']);
  if (c.pid && cgroup) wrappers.push([SH, '-c', CGROUP_GATE, 'process-sandbox-cgroup-gate', cgroup.name, String(cgroup.hierarchies)]);
  if (c.unshare) wrappers.push([c.unshare, ...namespaceArgs(c), '--']);
  if (c.mount) wrappers.push([SH, '-c', MOUNT_SETUP, 'process-sandbox-mounts', c.mountTool!, c.writablePaths.join('\n'), tmpEntriesHolding(runs).join('\n')]);
  const last: string[] = [];
  if (user) last.push('--regid', String(user.gid), '--reuid', String(user.uid), '--clear-groups');
  if (c.noNewPrivileges) last.push('--no-new-privs');
  if (c.dropCapabilities) last.push('--bounding-set', '-all', '--inh-caps', '-all');
  if (last.length > 0) wrappers.push([c.setpriv!, ...last, '--']);
  return wrappers;
}

/**
 * The process that runs node when unshare forked it (PID namespace): the only child of `pid`, or
 * undefined while unshare has not forked yet (or the kernel has no /proc/<pid>/task/<pid>/children).
 */
export function forkedChild(pid: number): number | undefined {
  try {
    const first = readFileSync(`/proc/${pid}/task/${pid}/children`, 'latin1').trim().split(' ')[0];
    return first ? Number(first) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * How a worker process is started: binary, arguments, environment and spawn options, derived from
 * the pool's options. Kept apart from the state machine so that what shapes the process (limits,
 * permissions, runtime, the platform's guard) has one place to grow.
 *
 * Environment: `options.env` (the host's `process.env` unless given; given, it replaces it
 * entirely; `'minimal'` was resolved into a small object) plus the library's own variables, which
 * the worker reads and removes before the implementation loads.
 *
 * Command line, outermost first, each program exec'ing the next (so the worker keeps its pid, but
 * for the PID namespace's fork: confinement.ts):
 *   [unshare --net …]          isolateNetwork (with the switch to `user`, which must come after it)
 *   [confinement …]            namespaces, read-only mounts, then no_new_privs, the capability drop
 *                              and the switch to `user` (confinement.ts)
 *   [setpriv --pdeathsig …]    permissions without workerThreads: no watchdog thread may start
 *   [prlimit …]                permissions with rlimits: the worker can neither load koffi nor spawn
 *   node [permission flags] [limit flags] [execArgv] bin.js
 * `user` without isolateNetwork is spawn's own uid/gid.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { ENV_HOST_PID, ENV_LIMITS, ENV_NOT_DUMPABLE, MessageKind, type Message, type WasmSettings } from '@process-sandbox/abstractions';
import { workerBinPath } from '@process-sandbox/worker';
import { placeInCgroup, type ResolvedCgroup } from './cgroup.js';
import { CGROUP_PREFIX } from './cgroup-fs.js';
import { confinementWrappers, type ResolvedConfinement } from './confinement.js';
import type { Logger } from './logger.js';
import type { ResolvedOptions } from './options.js';
import { platformGuard, type SpawnPlan } from './os/guard.js';
import { deathSignalWrapper, networkWrapper, rlimitWrapper, type ResolvedNetworkIsolation, type ResolvedUser } from './isolation.js';
import { permissionFlags, wasmReads, type ResolvedPermissions } from './permissions.js';
import { limitFlags, workerLimits, type ResolvedLimits } from './resource-limits.js';

export type WorkerCommand = SpawnPlan;

/** The part of the pool's options that shapes the process. */
export interface CommandOptions {
  execPath: string;
  execArgv: string[];
  env: Record<string, string | undefined>;
  cwd: string | undefined;
  limits?: ResolvedLimits;
  cgroup?: ResolvedCgroup;
  logger: Logger;
  /** Needed by `permissions`: the worker may read it. */
  workerModule?: string;
  permissions?: ResolvedPermissions;
  user?: ResolvedUser;
  isolateNetwork?: ResolvedNetworkIsolation;
  confinement?: ResolvedConfinement;
  /** A WebAssembly worker's options: what else it reads (permissions.ts, wasmReads). */
  wasm?: WasmSettings;
}

/** The command, without the channel: its endpoint (worker-endpoint.ts) adds what the worker needs to find it. */
export function workerCommand(options: CommandOptions): WorkerCommand {
  const env: Record<string, string | undefined> = { ...options.env };
  const limits = workerLimits(options.limits);
  const { permissions, user, isolateNetwork, confinement } = options;
  const wrappers: string[][] = [];
  // With a confinement, the user switch is its last step: namespaces and mounts need root first.
  if (isolateNetwork) wrappers.push([...networkWrapper(isolateNetwork, confinement ? undefined : user)]);
  // A PID namespace forks: the fork must come after the host placed the worker in its cgroup.
  const gate = options.cgroup && { name: `${CGROUP_PREFIX}${process.pid}-`, hierarchies: options.cgroup.hierarchies.length };
  // What the worker runs must stay visible under a mount namespace's private /tmp.
  const runs = [workerBinPath, modulePath(options.workerModule), options.cwd ?? process.cwd(), options.execPath, ...wasmReads(options.wasm)];
  if (confinement) wrappers.push(...confinementWrappers(confinement, user, gate || undefined, runs).map((w) => [...w]));
  if (permissions?.setpriv) wrappers.push([...deathSignalWrapper(permissions.setpriv)]);
  if (limits && permissions?.prlimit) wrappers.push([...rlimitWrapper(permissions.prlimit, limits)]);
  else if (limits) env[ENV_LIMITS] = JSON.stringify(limits);
  const node = [
    options.execPath,
    ...(permissions ? permissionFlags(permissions, options.workerModule ?? '', wasmReads(options.wasm)) : []),
    // The permission model refuses node:wasi unless allowed: wasm.wasi is that allowance.
    ...(permissions && options.wasm?.wasi ? ['--allow-wasi'] : []),
    // The limits' flags first: the user's own execArgv cannot contradict them (options refuse it).
    ...limitFlags(options.limits),
    ...options.execArgv,
    workerBinPath,
  ];
  const [file, ...args] = [...wrappers.flat(), ...node];
  const plan: SpawnPlan = {
    file: file!,
    args,
    options: {
      env,
      cwd: options.cwd,
      stdio: ['ignore', 'pipe', 'pipe'],
      windowsHide: true,
    },
  };
  // A user of its own: other processes of that uid (other pools' workers) must not read or trace it.
  if (user) env[ENV_NOT_DUMPABLE] = '1';
  if (user && !isolateNetwork && !confinement) {
    plan.options.uid = user.uid;
    plan.options.gid = user.gid;
  }
  // POSIX: its own process group and a lifeline for the parent watchdog; Windows: a Job Object.
  platformGuard().prepare(plan);
  // In a PID namespace the worker's parent is unshare, outside it: getppid() is 0 there, for good.
  // Its watchdog compares against that (and still watches the lifeline); unshare dies with the host.
  if (confinement?.pid) env[ENV_HOST_PID] = '0';
  return plan;
}

/**
 * Spawns the worker and, synchronously, before it can have loaded anything: ties it to the host's
 * life (platform guard) and moves it into its cgroup. Throws like spawn() does.
 */
export function spawnWorker(command: WorkerCommand, options: CommandOptions): ChildProcess {
  const child = spawn(command.file, command.args, command.options);
  if (child.pid === undefined) return child; // spawn failed; 'error' follows
  platformGuard().adopt(child, options.logger);
  if (options.cgroup) placeInCgroup(child, options.cgroup, options.logger);
  return child;
}

function modulePath(workerModule: string | undefined): string | undefined {
  if (workerModule === undefined) return undefined;
  try {
    return workerModule.startsWith('file:') ? fileURLToPath(workerModule) : workerModule;
  } catch {
    return undefined;
  }
}

/** The first message the worker gets once connected: what to load, and the host's settings it must follow. */
export function initMessage(options: ResolvedOptions): Message {
  return [
    MessageKind.Init,
    options.workerModule,
    options.workerExport,
    options.workerOptions,
    {
      healthIntervalMs: options.healthIntervalMs,
      maxMessageBytes: options.maxMessageBytes,
      // Only when set: a worker of a pool without them gets the Init it always got.
      ...(options.integrity === undefined ? {} : { integrity: options.integrity }),
      ...(options.wasm === undefined ? {} : { wasm: options.wasm }),
    },
  ];
}

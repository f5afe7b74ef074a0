/**
 * `permissions`: Node's permission model for workers whose implementation is plain JavaScript.
 *
 * Each worker is started with the permission model on (`--permission` from Node 22.13 / 23.5,
 * `--experimental-permission` before, chosen by the version of the worker's own runtime) and only
 * what it was granted:
 *  - file system reads: what the worker host itself must read (its own package and the packages it
 *    imports, resolved on disk, plus the implementation module file) and the user's `fsRead`;
 *  - file system writes: the user's `fsWrite` only (the host writes nothing);
 *  - `--allow-child-process` and `--allow-worker` only when `childProcess` / `workerThreads` say so.
 * Native addons are never allowed (`--allow-addons` is not passed): koffi cannot load in such a
 * worker, so its OS guards take their fallbacks (see isolation.ts for the parent-death guard).
 *
 * Limits of the model, measured on Node 20.20 (docs/reliability.md): it does not restrict the
 * network; `workerThreads: true` lets the implementation start a thread with `execArgv: []`, which
 * runs without any restriction; `childProcess: true` lets it run programs, which are not restricted
 * either. Grant those two only to code you would trust without the model.
 */
import { existsSync, readFileSync, realpathSync } from 'node:fs';
import { dirname, isAbsolute, join } from 'node:path';
import { ConfigurationError } from '@process-sandbox/abstractions';
import type { WasmSettings, WorkerLimits } from '@process-sandbox/abstractions';
import { workerBinPath } from '@process-sandbox/worker';
import { findTool } from './isolation.js';
import type { Logger } from './logger.js';
import { checkRuntime } from './runtime-check.js';

export interface WorkerPermissions {
  /** Absolute paths (files or directories, recursively) the implementation may read; `['*']` for all. Default: none beyond the implementation module itself. */
  fsRead?: string[];
  /** Absolute paths the implementation may write; `['*']` for all. Default: none. */
  fsWrite?: string[];
  /** May it start child processes? They run outside the permission model. Default false. */
  childProcess?: boolean;
  /** May it start worker threads? On Node 20 a thread started with `execArgv: []` escapes the model. Default false. */
  workerThreads?: boolean;
}

export interface ResolvedPermissions {
  /** util-linux's setpriv, to arm PR_SET_PDEATHSIG when the watchdog thread may not start (Linux, no workerThreads). */
  readonly setpriv: string | undefined;
  /** util-linux's prlimit, to set the rlimits of `limits` before node starts (the worker can do it neither with koffi nor by spawning prlimit). */
  readonly prlimit: string | undefined;
  readonly fsRead: readonly string[];
  readonly fsWrite: readonly string[];
  readonly childProcess: boolean;
  readonly workerThreads: boolean;
  /** The flag that turns the model on for this runtime. */
  readonly flag: '--permission' | '--experimental-permission';
}

const KEYS = ['fsRead', 'fsWrite', 'childProcess', 'workerThreads'];
/** Flags of the permission model, refused in execArgv: they belong in `permissions`. */
const MODEL_FLAGS = /^--(experimental-permission|permission|allow-fs-read|allow-fs-write|allow-child-process|allow-worker|allow-addons|allow-wasi)(=|$)/;

export function resolvePermissions(value: unknown, execPath: string, execArgv: readonly string[], limits: WorkerLimits | undefined, logger: Logger): ResolvedPermissions | undefined {
  const flagged = execArgv.find((a) => MODEL_FLAGS.test(a));
  if (flagged) throw new ConfigurationError('execArgv', `'${flagged}' is a permission-model flag; use the permissions option, which also grants what the worker host itself needs`);
  // false: off, as undefined; spelled out to opt out of isolation 'maximum''s model (native addons).
  if (value === undefined || value === false) return undefined;
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new ConfigurationError('permissions', "expected an object such as { fsRead: ['/srv/plugin-data'], childProcess: false }");
  }
  for (const key of Object.keys(value)) {
    if (!KEYS.includes(key)) throw new ConfigurationError(`permissions.${key}`, `unknown permission; known are ${KEYS.join(', ')}`);
  }
  const p = value as WorkerPermissions;
  const version = execPath === process.execPath ? process.version : checkRuntime(execPath);
  const [major = 0, minor = 0] = version.replace(/^v/, '').split('.').map(Number);
  if (major < 20) throw new ConfigurationError('permissions', `Node's permission model needs Node.js 20 or later; the workers' runtime ${execPath} is ${version}`);
  const stable = major >= 24 || (major === 23 && minor >= 5) || (major === 22 && minor >= 13);
  const workerThreads = flag(p.workerThreads, 'permissions.workerThreads');
  let prlimit: string | undefined;
  if (limits) {
    prlimit = findTool('prlimit');
    if (!prlimit) throw new ConfigurationError('limits', "with permissions, the rlimits (maxOpenFiles, maxAddressSpaceMB, maxCpuSeconds) are set by util-linux's prlimit before node starts, and no prlimit is on the PATH");
  }
  let setpriv: string | undefined;
  if (!workerThreads && process.platform === 'linux') {
    setpriv = findTool('setpriv');
    if (!setpriv) logger.warn({}, "process-sandbox: permissions without workerThreads: the workers' watchdog thread cannot start and util-linux's setpriv (for PR_SET_PDEATHSIG) was not found; a host killed by SIGKILL may leave workers running");
  }
  if (workerThreads) logger.warn({}, 'process-sandbox: permissions.workerThreads is on: on Node 20 a worker thread started with execArgv: [] runs outside the permission model');
  return Object.freeze({
    setpriv,
    prlimit,
    fsRead: Object.freeze(paths(p.fsRead, 'permissions.fsRead')),
    fsWrite: Object.freeze(paths(p.fsWrite, 'permissions.fsWrite')),
    childProcess: flag(p.childProcess, 'permissions.childProcess'),
    workerThreads,
    flag: stable ? '--permission' : '--experimental-permission',
  });
}

function paths(value: unknown, name: string): string[] {
  if (value === undefined) return [];
  if (!Array.isArray(value) || value.some((v) => typeof v !== 'string' || v === '')) throw new ConfigurationError(name, 'expected an array of absolute paths (or [\'*\'] for everything)');
  for (const path of value as string[]) {
    if (path !== '*' && !isAbsolute(path)) throw new ConfigurationError(name, `'${path}' is not an absolute path`);
    // Before Node 20.7 a comma separated paths in one flag; later versions warn about it.
    if (path.includes(',')) throw new ConfigurationError(name, `'${path}' contains a comma, which Node's permission flags cannot carry`);
  }
  return value.includes('*') ? ['*'] : [...(value as string[])];
}

function flag(value: unknown, name: string): boolean {
  if (value === undefined) return false;
  if (typeof value !== 'boolean') throw new ConfigurationError(name, `expected a boolean, got ${typeof value}`);
  return value;
}

let hostReads: string[] | undefined;

/**
 * What the worker host must read, whatever the implementation: the directory of its own package and
 * of every package it imports, transitively (dependencies, not optional ones: koffi is a native addon,
 * refused under the model anyway), both where the resolver finds them (node_modules/<name>, maybe a
 * symlink: the loader's realpath lstat()s it) and where they really are.
 */
function workerHostReads(): readonly string[] {
  if (hostReads) return hostReads;
  const reads = new Set<string>();
  const visited = new Set<string>();
  const visit = (root: string): void => {
    const real = realpathSync(root);
    reads.add(root).add(real);
    if (visited.has(real)) return;
    visited.add(real);
    const manifest = JSON.parse(readFileSync(join(real, 'package.json'), 'utf8')) as { dependencies?: Record<string, string> };
    for (const dependency of Object.keys(manifest.dependencies ?? {})) visit(findPackage(dependency, real));
  };
  visit(packageRoot(workerBinPath));
  hostReads = [...reads];
  return hostReads;
}

/** The directory above `file` that holds a package.json. */
function packageRoot(file: string): string {
  for (let dir = dirname(file); dir !== dirname(dir); dir = dirname(dir)) {
    if (existsSync(join(dir, 'package.json'))) return dir;
  }
  throw new Error(`no package.json above ${file}`);
}

/** Where Node's resolver finds package `name` imported from the package at `from`: the nearest node_modules/<name> up the tree. */
function findPackage(name: string, from: string): string {
  for (let dir = from; ; dir = dirname(dir)) {
    const candidate = join(dir, 'node_modules', name);
    if (existsSync(join(candidate, 'package.json'))) return candidate;
    if (dir === dirname(dir)) throw new Error(`cannot find the package ${name} imported from ${from}`);
  }
}

/** The Node flags for one worker running `workerModule` under `permissions`. */
export function permissionFlags(permissions: ResolvedPermissions, workerModule: string, extraReads: readonly string[] = []): string[] {
  const reads = new Set<string>(permissions.fsRead.includes('*') ? ['*'] : [...workerHostReads(), ...moduleReads(workerModule), ...extraReads.flatMap(moduleReads), ...permissions.fsRead]);
  const flags: string[] = [permissions.flag, ...[...reads].map((p) => `--allow-fs-read=${p}`)];
  for (const path of permissions.fsWrite) flags.push(`--allow-fs-write=${path}`);
  if (permissions.childProcess) flags.push('--allow-child-process');
  if (permissions.workerThreads) flags.push('--allow-worker');
  return flags;
}

/**
 * What a WebAssembly worker reads besides its module: the host functions module, and binaryen's
 * package when it adds fuel (found as the worker's `import('binaryen')` finds it). WASI's preopens are
 * the user's to grant (permissions.fsRead), as for any path a plugin reaches.
 */
export function wasmReads(wasm: WasmSettings | undefined): string[] {
  if (wasm === undefined) return [];
  const reads: string[] = [];
  if (wasm.hostFunctions) reads.push(wasm.hostFunctions.module);
  if (wasm.fuelPerCall !== undefined) {
    try {
      reads.push(findPackage('binaryen', packageRoot(workerBinPath)));
    } catch {
      // not installed: the worker says so when it tries to load it
    }
  }
  return reads;
}

/** The implementation module as given and as it is on disk (the loader reads the real path). */
function moduleReads(workerModule: string): string[] {
  try {
    const real = realpathSync(workerModule);
    return real === workerModule ? [workerModule] : [workerModule, real];
  } catch {
    return [workerModule]; // missing: the worker reports it when it tries to load it
  }
}

/**
 * Every option of a pool, its default and its check. Options are validated once, up front: a wrong
 * type or range is a ConfigurationError naming the option, never a surprise at the first call. The
 * checks of single values (a whole number in a range, a path, the environment, the logger ...) are
 * in option-checks.ts; here, which option gets which check and default, and the checks across options.
 */
import { availableParallelism } from 'node:os';
import { ConfigurationError } from '@process-sandbox/abstractions';
import { resolveCgroup, type CgroupLimits, type ResolvedCgroup } from './cgroup.js';
import { resolveConfinement, type NamespaceOptions, type ResolvedConfinement } from './confinement.js';
import { underLevel, withIsolationLevel, type IsolationLevel } from './isolation-level.js';
import { resolveNetworkIsolation, resolveUser, type ResolvedNetworkIsolation, type ResolvedUser, type WorkerUser } from './isolation.js';
import { resolvePermissions, type ResolvedPermissions, type WorkerPermissions } from './permissions.js';
import { resolveLimits, workerLimits, type ResolvedLimits, type ResourceLimits } from './resource-limits.js';
import type { Logger, PoolLogger } from './logger.js';
import { MAX_SPARES, MAX_SPARES_LIMIT } from './spare-planner.js';
import { resolveIntegrity, resolveWasm, type WasmOptions } from './wasm-options.js';
import type { WasmSettings } from '@process-sandbox/abstractions';
import { boolean, describe, directory, environment, execPath, integer, logger, modulePath, optionalInteger, string, stringArray, workerOptions } from './option-checks.js';

export interface ProcessProxyOptions {
  /** Absolute path or file: URL of the module that implements the interface (ESM or CommonJS). */
  workerModule: string | URL;
  /** Which export: a class (instantiated with `new`), an object (used as is) or a factory (called, awaited). Default `'default'`. */
  workerExport?: string;
  /** Passed to the constructor or factory in each worker. Must be serialisable. */
  workerOptions?: unknown;
  /** Subresource Integrity digest (`sha384-…`) the workerModule file must have; checked by each worker before loading it. Default: not checked. */
  integrity?: string;
  /** A `.wasm` workerModule: fuel per call, memory cap, WASI, host functions (wasm-options.ts). Default: none. */
  wasm?: WasmOptions;
  /** Workers started by `create()` and kept alive. Default 1. */
  minPoolSize?: number;
  /** Most workers at once. Default `os.availableParallelism()`. */
  maxPoolSize?: number;
  /** Most calls waiting for a worker; more fail with QueueFullError. Default Infinity. */
  maxQueueSize?: number;
  /** Calls sent ahead to a busy worker, to start as soon as its current call ends (each worker still runs one at a time). 0 turns lookahead off. Default 16. */
  pipelineDepth?: number;
  /** Longest a call may run once a worker has it, in ms; then the worker is killed. Default 30 000. */
  methodCallTimeoutMs?: number;
  /** Longest a call may wait for a worker, in ms. Default: no limit. */
  queueTimeoutMs?: number;
  /** Longest from spawn to ready, in ms. Default 10 000. */
  processStartTimeoutMs?: number;
  /** How long a stopping worker may take to finish and exit before it is killed, in ms. Default 5 000. */
  shutdownGraceMs?: number;
  /** Largest message either side accepts, in bytes. Default 64 MiB. */
  maxMessageBytes?: number;
  /** How often an idle worker reports its health, in ms; 0 turns it off. Default 1 000. */
  healthIntervalMs?: number;
  /** Node binary for workers. Default `process.execPath`. */
  execPath?: string;
  /** Node flags for workers. Default `[]` (the host's own execArgv are not inherited). */
  execArgv?: string[];
  /** Environment of workers. Default: the host's `process.env`. Given, it replaces it entirely; `'minimal'`: only PATH, TZ, LANG, LC_ALL. */
  env?: Record<string, string | undefined> | 'minimal';
  /** Names of host environment variables added to `env` (with `'minimal'` or an object). Default: none. */
  envPassthrough?: string[];
  /** Working directory of workers. Default: the host's. */
  cwd?: string;
  /** Receives the pool's diagnostics and every line workers print. Default: silent. */
  logger?: Logger;
  /** OpenTelemetry metrics: `true` requires `@opentelemetry/api`, `false` never loads it. Default: reported when the API is installed. */
  metrics?: boolean;
  /** Opt-in: idle workers do not keep the host process alive (a forgotten pool lets a script end). Default false. */
  unref?: boolean;
  /** Retire a worker whose resident memory (native allocations included) reaches this, in MiB. */
  maxMemoryMB?: number;
  /** Retire a worker with this many open handles (file descriptors on Linux). */
  maxHandles?: number;
  /** Retire a worker once it has served this many calls. */
  processRecycleThreshold?: number;
  /** Retire a worker this long after it started, in ms. */
  maxProcessLifetimeMs?: number;
  /** Stop a worker idle this long, in ms, while the pool is above minPoolSize. */
  idleTimeoutMs?: number;
  /** Kill a worker at once, even mid-call, when its resident memory reaches this, in MiB. */
  hardMemoryLimitMB?: number;
  /**
   * Keep workers started and ready, out of service, to replace retired ones: as many as cover a
   * start while workers retire, at most 4 (`true`) or at most this many (a number; 0 is `false`).
   * Default: on when a recycling limit is set.
   */
  warmSpare?: boolean | number;
  /** Opt-in: re-run calls of these methods (which you declare idempotent) when their worker crashes. Never by default. */
  retry?: RetryOptions;
  /** Hard OS limits applied to each worker before the implementation loads. Default: none. */
  limits?: ResourceLimits;
  /** One cgroup per worker (v2, or v1 hierarchies) with these limits; needs a writable cgroup. Default: none. */
  cgroup?: CgroupLimits;
  /** Node's permission model for each worker (JavaScript implementations; native addons are refused under it). Default: off ('maximum': on; false turns it off). */
  permissions?: WorkerPermissions | false;
  /** Linux: run workers as this user and group (needs root). Default: the host's. */
  user?: WorkerUser;
  /** Linux: start each worker in a fresh network namespace, with no network (needs root or unprivileged user namespaces). Default false. */
  isolateNetwork?: boolean;
  /** Linux: a bundle of confinements, 'standard' ⊂ 'high' ⊂ 'maximum' (isolation-level.ts); options given explicitly win. Default: none. */
  isolation?: IsolationLevel;
  /** Linux: fresh PID, mount, IPC and UTS namespaces for each worker (need root). Default: none. */
  namespaces?: NamespaceOptions;
  /** With `namespaces.mount`: the paths that stay writable in the workers' otherwise read-only view. Default: none. */
  writablePaths?: string[];
  /** Linux: set no_new_privs on workers: nothing they exec gains privileges. Default false ('standard' and up: true). */
  noNewPrivileges?: boolean;
  /** Linux: empty the workers' capability bounding set: a root host's workers hold no capability (needs CAP_SETPCAP). Default false ('standard' and up: true on a root host). */
  dropCapabilities?: boolean;
  /** Capture the caller's whole synchronous stack at each call, for the stacks of errors the call fails with (costs several µs per call). Default false: the frames of the async functions awaiting the call, at no cost. */
  captureCallerStack?: boolean;
}

export interface RetryOptions {
  /** Methods safe to run twice. */
  methods: string[];
  /** Re-runs after the first, at most. Default 1. */
  attempts?: number;
  /** Pause before the first re-run, doubling each time, in ms. Default 100. */
  backoffMs?: number;
}

/** What `pool.reload()` may change. */
export interface ReloadOptions {
  workerModule?: string | URL;
  workerExport?: string;
  workerOptions?: unknown;
  integrity?: string;
}

export interface ResolvedOptions {
  workerModule: string;
  workerExport: string;
  workerOptions: unknown;
  integrity: string | undefined;
  wasm: WasmSettings | undefined;
  minPoolSize: number;
  maxPoolSize: number;
  maxQueueSize: number;
  pipelineDepth: number;
  methodCallTimeoutMs: number;
  queueTimeoutMs: number | undefined;
  processStartTimeoutMs: number;
  shutdownGraceMs: number;
  maxMessageBytes: number;
  healthIntervalMs: number;
  execPath: string;
  execArgv: string[];
  env: Record<string, string | undefined>;
  cwd: string | undefined;
  logger: PoolLogger;
  metrics: boolean | undefined;
  unref: boolean;
  maxMemoryMB: number | undefined;
  maxHandles: number | undefined;
  processRecycleThreshold: number | undefined;
  maxProcessLifetimeMs: number | undefined;
  idleTimeoutMs: number | undefined;
  hardMemoryLimitMB: number | undefined;
  warmSpare: boolean;
  /** The most warm spares kept at once (0 when warmSpare is off). */
  maxWarmSpares: number;
  retry: Required<RetryOptions> | undefined;
  limits: ResolvedLimits | undefined;
  cgroup: ResolvedCgroup | undefined;
  permissions: ResolvedPermissions | undefined;
  user: ResolvedUser | undefined;
  isolateNetwork: ResolvedNetworkIsolation | undefined;
  /** The isolation level asked for, if any (its bundle is already in the other options). */
  isolation: IsolationLevel | undefined;
  confinement: ResolvedConfinement | undefined;
  captureCallerStack: boolean;
}

const KNOWN = new Set<string>([
  'workerModule', 'workerExport', 'workerOptions', 'integrity', 'wasm', 'minPoolSize', 'maxPoolSize', 'maxQueueSize', 'pipelineDepth',
  'methodCallTimeoutMs', 'queueTimeoutMs', 'processStartTimeoutMs', 'shutdownGraceMs', 'maxMessageBytes',
  'healthIntervalMs', 'execPath', 'execArgv', 'env', 'cwd', 'logger', 'metrics', 'unref',
  'maxMemoryMB', 'maxHandles', 'processRecycleThreshold', 'maxProcessLifetimeMs', 'idleTimeoutMs', 'hardMemoryLimitMB', 'warmSpare',
  'limits', 'cgroup', 'retry',
  'envPassthrough', 'permissions', 'user', 'isolateNetwork', 'captureCallerStack',
  'isolation', 'namespaces', 'writablePaths', 'noNewPrivileges', 'dropCapabilities',
]);

/** Every option `resolveOptions` accepts (docs/configuration.md is checked against this list by test/docs.test.mjs). */
export const OPTION_NAMES: readonly string[] = Object.freeze([...KNOWN]);

/**
 * Calls sent ahead to a busy worker by default: 16 measured best (docs/benchmarks.md, "Lookahead
 * depth"). It was 1 while the chaos test (seed 3044784113) blamed crashes on the wrong call with 16:
 * a failed write to a dying worker discarded its last replies (fixed in the Channel, channel.ts).
 */
const DEFAULT_PIPELINE_DEPTH = 16;

/** The largest delay a Node timer honours; longer ones fire at once. */
const MAX_TIMER_MS = 2 ** 31 - 1;

export function resolveOptions(given: ProcessProxyOptions): ResolvedOptions {
  if (typeof given !== 'object' || given === null) throw new ConfigurationError('options', 'expected an object');
  for (const key of Object.keys(given)) {
    if (!KNOWN.has(key)) throw new ConfigurationError(key, `unknown option; known options are ${[...KNOWN].join(', ')}`);
  }
  const input = withIsolationLevel(given);
  return underLevel(given, input, () => resolveExpanded(input));
}

function resolveExpanded(input: ProcessProxyOptions): ResolvedOptions {
  const minPoolSize = integer(input, 'minPoolSize', 1, 0, 1024);
  const maxPoolSize = integer(input, 'maxPoolSize', Math.max(availableParallelism(), minPoolSize, 1), 1, 1024);
  if (minPoolSize > maxPoolSize) throw new ConfigurationError('minPoolSize', `must not exceed maxPoolSize (${minPoolSize} > ${maxPoolSize})`);
  return {
    workerModule: modulePath(input.workerModule),
    workerExport: string(input, 'workerExport', 'default'),
    workerOptions: workerOptions(input.workerOptions),
    integrity: resolveIntegrity(input.integrity),
    wasm: resolveWasm(input.wasm, modulePath(input.workerModule)),
    minPoolSize,
    maxPoolSize,
    maxQueueSize: integer(input, 'maxQueueSize', Infinity, 0, Infinity),
    pipelineDepth: integer(input, 'pipelineDepth', DEFAULT_PIPELINE_DEPTH, 0, 64),
    methodCallTimeoutMs: integer(input, 'methodCallTimeoutMs', 30_000, 1, MAX_TIMER_MS),
    queueTimeoutMs: input.queueTimeoutMs === undefined ? undefined : integer(input, 'queueTimeoutMs', 0, 1, MAX_TIMER_MS),
    processStartTimeoutMs: integer(input, 'processStartTimeoutMs', 10_000, 1, MAX_TIMER_MS),
    shutdownGraceMs: integer(input, 'shutdownGraceMs', 5_000, 0, MAX_TIMER_MS),
    maxMessageBytes: integer(input, 'maxMessageBytes', 64 * 1024 * 1024, 1024, 0xffff_ffff),
    healthIntervalMs: integer(input, 'healthIntervalMs', 1_000, 0, MAX_TIMER_MS),
    execPath: execPath(input.execPath),
    execArgv: stringArray(input, 'execArgv'),
    env: environment(input.env, input.envPassthrough),
    cwd: input.cwd === undefined ? undefined : directory(input.cwd),
    logger: logger(input.logger),
    captureCallerStack: boolean(input, 'captureCallerStack', false),
    metrics: input.metrics === undefined ? undefined : boolean(input, 'metrics', false),
    unref: boolean(input, 'unref', false),
    ...recyclingOptions(input),
    retry: retryOptions(input.retry),
    ...osLimitOptions(input),
    ...capabilityOptions(input),
  };
}


function recyclingOptions(input: ProcessProxyOptions) {
  const limits = {
    maxMemoryMB: optionalInteger(input, 'maxMemoryMB', 1, 1024 * 1024),
    maxHandles: optionalInteger(input, 'maxHandles', 1, 1 << 30),
    processRecycleThreshold: optionalInteger(input, 'processRecycleThreshold', 1, Number.MAX_SAFE_INTEGER),
    maxProcessLifetimeMs: optionalInteger(input, 'maxProcessLifetimeMs', 1, MAX_TIMER_MS),
    idleTimeoutMs: optionalInteger(input, 'idleTimeoutMs', 1, MAX_TIMER_MS),
    hardMemoryLimitMB: optionalInteger(input, 'hardMemoryLimitMB', 1, 1024 * 1024),
  };
  if (limits.hardMemoryLimitMB !== undefined && limits.maxMemoryMB !== undefined && limits.hardMemoryLimitMB <= limits.maxMemoryMB) {
    throw new ConfigurationError('hardMemoryLimitMB', `must be above maxMemoryMB (${limits.hardMemoryLimitMB} <= ${limits.maxMemoryMB}): the soft limit retires a worker gracefully before the hard one kills it`);
  }
  if (input.healthIntervalMs === 0) {
    // These are enforced by the sampler's periodic look at each worker.
    for (const name of ['hardMemoryLimitMB', 'idleTimeoutMs', 'maxProcessLifetimeMs'] as const) {
      if (limits[name] !== undefined) throw new ConfigurationError(name, 'needs health sampling: healthIntervalMs must not be 0');
    }
  }
  const recycles = limits.maxMemoryMB !== undefined || limits.maxHandles !== undefined || limits.processRecycleThreshold !== undefined || limits.maxProcessLifetimeMs !== undefined;
  const spare = input.warmSpare;
  if (spare !== undefined && typeof spare !== 'boolean' && !(Number.isInteger(spare) && spare >= 0 && spare <= MAX_SPARES_LIMIT)) {
    throw new ConfigurationError('warmSpare', `expected a boolean or the most spares to keep (a whole number from 0 to ${MAX_SPARES_LIMIT}), got ${describe(spare)}`);
  }
  const maxWarmSpares = spare === undefined ? (recycles ? MAX_SPARES : 0) : spare === true ? MAX_SPARES : spare === false ? 0 : spare;
  return { ...limits, warmSpare: maxWarmSpares > 0, maxWarmSpares };
}

function osLimitOptions(input: ProcessProxyOptions) {
  return {
    limits: resolveLimits(input.limits, Array.isArray(input.execArgv) ? input.execArgv : []),
    // The hard memory limit becomes the cgroup's memory limit when none is given: the kernel holds it.
    cgroup: resolveCgroup(input.cgroup, typeof input.hardMemoryLimitMB === 'number' ? input.hardMemoryLimitMB : undefined),
  };
}

/** permissions, user, isolateNetwork, the confinements (permissions.ts, isolation.ts, confinement.ts): checked up front, privileges included. */
function capabilityOptions(input: ProcessProxyOptions) {
  const execArgv = Array.isArray(input.execArgv) ? input.execArgv : [];
  const rlimits = workerLimits(resolveLimits(input.limits, execArgv));
  const user = resolveUser(input.user, modulePath(input.workerModule));
  const confinement = resolveConfinement(input);
  return {
    permissions: resolvePermissions(input.permissions, execPath(input.execPath), execArgv, rlimits, logger(input.logger)),
    user,
    isolateNetwork: resolveNetworkIsolation(input.isolateNetwork, user),
    isolation: input.isolation,
    confinement,
  };
}

function retryOptions(value: unknown): Required<RetryOptions> | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'object' || value === null) throw new ConfigurationError('retry', `expected { methods, attempts?, backoffMs? }, got ${describe(value)}`);
  const r = value as RetryOptions;
  for (const key of Object.keys(r)) {
    if (!['methods', 'attempts', 'backoffMs'].includes(key)) throw new ConfigurationError(`retry.${key}`, 'unknown option; known are methods, attempts, backoffMs');
  }
  if (!Array.isArray(r.methods) || r.methods.length === 0 || r.methods.some((m) => typeof m !== 'string' || m === '')) {
    throw new ConfigurationError('retry.methods', 'expected a non-empty array of method names (the methods you declare safe to run twice)');
  }
  const attempts = r.attempts ?? 1;
  if (!Number.isInteger(attempts) || attempts < 1 || attempts > 100) throw new ConfigurationError('retry.attempts', `must be a whole number from 1 to 100, got ${describe(attempts)}`);
  const backoffMs = r.backoffMs ?? 100;
  if (!Number.isInteger(backoffMs) || backoffMs < 0 || backoffMs > MAX_TIMER_MS) throw new ConfigurationError('retry.backoffMs', `must be a whole number of ms from 0, got ${describe(backoffMs)}`);
  return { methods: [...r.methods], attempts, backoffMs };
}

/** The options of a pool after `reload(changes)`, validated like the originals. */
export function reloadOptions(previous: ResolvedOptions, changes: ReloadOptions): ResolvedOptions {
  if (typeof changes !== 'object' || changes === null) throw new ConfigurationError('reload', 'expected an object');
  for (const key of Object.keys(changes)) {
    if (!['workerModule', 'workerExport', 'workerOptions', 'integrity'].includes(key)) throw new ConfigurationError(key, 'reload() can change workerModule, workerExport, workerOptions and integrity only');
  }
  return {
    ...previous,
    workerModule: changes.workerModule === undefined ? previous.workerModule : modulePath(changes.workerModule),
    workerExport: changes.workerExport === undefined ? previous.workerExport : string(changes as ProcessProxyOptions, 'workerExport', previous.workerExport),
    workerOptions: 'workerOptions' in changes ? workerOptions(changes.workerOptions) : previous.workerOptions,
    // A new module is a new file: the old digest cannot pin it, so it goes unless a new one is given.
    integrity: 'integrity' in changes ? resolveIntegrity(changes.integrity) : changes.workerModule === undefined ? previous.integrity : undefined,
  };
}

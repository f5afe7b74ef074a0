/**
 * `isolation: 'standard' | 'high' | 'maximum'`: one option for "as confined as this machine allows",
 * expanded into the individual options before they are resolved. Each level is a bundle of defaults:
 * an option the user gives explicitly wins (that is how one opts out of a part, e.g.
 * `isolateNetwork: false` at 'high'), and every part the level turns on is resolved like the option
 * itself, so a machine that cannot provide it refuses the pool with a ConfigurationError naming what
 * is missing: a level is never silently weaker.
 *
 *   standard  noNewPrivileges; dropCapabilities when the host holds capabilities (root)
 *   high      + env 'minimal', isolateNetwork, namespaces ipc and uts, and a cgroup holding
 *               hardMemoryLimitMB when that is given without a cgroup
 *   maximum   + namespaces pid and mount (read-only but writablePaths, private /tmp), and Node's
 *               permission model (`permissions: {}` unless given; `permissions: false` opts out,
 *               for implementations that load native addons)
 * `user`, `limits`, `cgroup` and `writablePaths` are the user's to give at any level.
 */
import { ConfigurationError } from '@process-sandbox/abstractions';
import { effectiveCapabilities, hasCapability } from './isolation.js';
import type { ProcessProxyOptions } from './options.js';

/** How far a worker is confined: each level a bundle of confinements (see docs/configuration.md#isolation). */
export type IsolationLevel = 'standard' | 'high' | 'maximum';
const ISOLATION_LEVELS: readonly IsolationLevel[] = Object.freeze(['standard', 'high', 'maximum']);

const CAP_SETPCAP = 8n;

/** `input` with its isolation level's bundle filled in where the user left an option out. */
export function withIsolationLevel(input: ProcessProxyOptions): ProcessProxyOptions {
  const level = input.isolation;
  if (level === undefined) return input;
  const rank = ISOLATION_LEVELS.indexOf(level);
  if (rank < 0) throw new ConfigurationError('isolation', `expected one of ${ISOLATION_LEVELS.map((l) => `'${l}'`).join(', ')}, got ${JSON.stringify(level)}`);
  if (process.platform !== 'linux') throw new ConfigurationError('isolation', `the levels are built from Linux confinements (namespaces, capabilities, no_new_privs); on ${process.platform} use the individual options`);
  const out: ProcessProxyOptions = { ...input };
  out.noNewPrivileges ??= true;
  // A host without capabilities starts workers without any; no_new_privs keeps them from gaining one.
  out.dropCapabilities ??= hasCapability(effectiveCapabilities(), CAP_SETPCAP);
  if (rank >= 1) {
    out.env ??= 'minimal';
    out.isolateNetwork ??= true;
    const given = typeof input.namespaces === 'object' && input.namespaces !== null ? input.namespaces : {};
    out.namespaces = input.namespaces !== undefined && typeof input.namespaces !== 'object' ? input.namespaces : { ipc: true, uts: true, ...(rank >= 2 ? { pid: true, mount: true } : {}), ...given };
    // The kernel holds the memory limit, not only the host's sampling.
    if (out.cgroup === undefined && typeof input.hardMemoryLimitMB === 'number') out.cgroup = {};
  }
  if (rank >= 2) out.permissions ??= {};
  return out;
}

/**
 * Runs `resolve` on the expanded options; an error about a part the level filled in says which level
 * could not be provided. Errors about the user's own options stay theirs.
 */
export function underLevel<T>(given: ProcessProxyOptions, expanded: ProcessProxyOptions, resolve: () => T): T {
  try {
    return resolve();
  } catch (error) {
    if (given.isolation === undefined || !(error instanceof ConfigurationError)) throw error;
    const filled = new Set(Object.keys(expanded).filter((k) => expanded[k as keyof ProcessProxyOptions] !== given[k as keyof ProcessProxyOptions]));
    // The permission model brings prlimit along for the rlimits of `limits`.
    if (filled.has('permissions')) filled.add('limits');
    if (!filled.has(error.option.split('.')[0]!)) throw error;
    throw new ConfigurationError('isolation', `'${given.isolation}' cannot be provided on this machine, or conflicts with another option: ${error.message}`);
  }
}

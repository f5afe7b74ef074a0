// The host side of the legacy service, shared by demo.mjs and http-server.mjs: which backend the
// workers load (the C++ addon, or the pure-JS stand-in when the addon is not built), and a pool of
// worker processes serving ./legacy-service.mjs through ProcessProxy.
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ProcessProxy } from '@process-sandbox/core';
// Importing index.mjs never throws, and loading the addon harms nothing: only calling its
// defective functions does, and this process never calls them.
import { addonAvailable, addonLoadError } from '../legacy-addon/index.mjs';

export const workerModule = new URL('./legacy-service.mjs', import.meta.url);

/** How to build the addon, for people who see the fallback. */
export const BUILD_HINT = [
  'To build it: install python3, make and a C++ compiler (Debian/Ubuntu: `apt-get install python3 make g++`),',
  'then run `npm install` at the repository root, or rebuild just the addon with `node samples/legacy-addon/build.mjs`.',
];

/**
 * The backend the workers will load. `LEGACY_SERVICE_BACKEND` may force one: 'native' (fail when the
 * addon is not built) or 'js'; unset or 'auto' picks the addon when it is built, else the stand-in.
 * @returns {{ backend: 'native' | 'js', fallback: boolean, reason: string | undefined, error: string | undefined }}
 */
export function chooseBackend(env = process.env) {
  const wanted = (env.LEGACY_SERVICE_BACKEND ?? 'auto').toLowerCase();
  if (wanted === 'js') return { backend: 'js', fallback: false, reason: 'LEGACY_SERVICE_BACKEND=js', error: undefined };
  if (wanted !== 'native' && wanted !== 'auto') {
    return { backend: 'js', fallback: false, reason: undefined, error: `LEGACY_SERVICE_BACKEND must be 'native', 'js' or 'auto', got '${wanted}'` };
  }
  if (addonAvailable()) return { backend: 'native', fallback: false, reason: undefined, error: undefined };
  const why = addonLoadError()?.message ?? 'the legacy addon is not available';
  if (wanted === 'native') return { backend: 'native', fallback: false, reason: why, error: `LEGACY_SERVICE_BACKEND=native, but ${why}` };
  return { backend: 'js', fallback: true, reason: why, error: undefined };
}

/** What the workers run, in words. */
export function describeBackend(backend) {
  return backend === 'native'
    ? 'the legacy C++ addon (samples/legacy-addon/build/Release/legacy_addon.node): a real SIGSEGV, real malloc and open() leaks, a real nanosleep'
    : 'the pure-JS stand-in (js-stand-in.mjs): SIGSEGV by process.kill, Buffers that are never freed, fs.openSync without close, Atomics.wait';
}

/** The explanation printed when the demos fall back to the stand-in. */
export function fallbackNotice(reason) {
  return [
    'NOTE: the legacy C++ addon is not built, so this demo runs the pure-JS stand-in instead.',
    `  Why: ${reason}`,
    ...BUILD_HINT.map((line) => `  ${line}`),
    '  The stand-in has the same defects where JavaScript allows (SIGSEGV via process.kill, memory via',
    '  Buffers, descriptors via fs.openSync, a hang via Atomics.wait), so isolation is demonstrated either way.',
  ];
}

/**
 * Starts a pool of workers serving LegacyService with `backend`. Every worker runs in a fresh
 * temporary directory (where a core dump from the segfault would land, if core dumps are enabled).
 * @param {{ backend: 'native' | 'js' } & Partial<import('@process-sandbox/core').ProcessProxyOptions>} options
 */
export async function openLegacyService({ backend, ...options }) {
  const workDir = mkdtempSync(join(tmpdir(), 'legacy-service-'));
  /** @type {import('@process-sandbox/core').Remote<import('./legacy-service.d.mts').LegacyService>} */
  let service;
  try {
    service = await ProcessProxy.create({
      workerModule,
      workerExport: 'LegacyService',
      workerOptions: { backend },
      cwd: workDir,
      ...options,
    });
  } catch (error) {
    rmSync(workDir, { recursive: true, force: true });
    throw error;
  }
  const pool = ProcessProxy.poolOf(service);
  // Every worker process this pool ever started, to check after dispose that none survived.
  const startedPids = new Set(pool.stats().workers.map((w) => w.pid).filter((pid) => pid > 0));
  pool.on('workerStarted', ({ pid }) => startedPids.add(pid));
  let closing;
  return {
    service,
    pool,
    backend,
    workDir,
    startedPids,
    /** Disposes the pool (resolves once every worker has exited) and removes the work directory. */
    close() {
      closing ??= pool.dispose().finally(() => rmSync(workDir, { recursive: true, force: true }));
      return closing;
    },
  };
}

/** True while `pid` is a live process (not a zombie): /proc on Linux, signal 0 elsewhere. */
export function isAlive(pid) {
  if (!(pid > 0)) return false;
  if (process.platform === 'linux') {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
    } catch {
      return false;
    }
  }
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return error.code === 'EPERM';
  }
}

/** Polls until none of `pids` is alive or `timeoutMs` passes; returns the survivors. */
export async function survivors(pids, timeoutMs = 2_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const alive = [...pids].filter(isAlive);
    if (alive.length === 0 || Date.now() >= deadline) return alive;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

/** Open file descriptors of this process (Linux, macOS), or undefined. */
export function ownFds() {
  for (const dir of ['/proc/self/fd', '/dev/fd']) {
    try {
      return readdirSync(dir).length;
    } catch {
      // try the next one
    }
  }
  return undefined;
}

export const MiB = 1024 * 1024;

/**
 * The few libc calls the worker's guards need, through koffi (an optional dependency). Everything
 * here degrades to `undefined` when koffi cannot load (not installed, unsupported platform): callers
 * then fall back (the parent watchdog still runs; limits go through util-linux's `prlimit`).
 */
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { loadKoffi } from '@process-sandbox/abstractions';

/** The part of koffi's API used here. */
interface Koffi {
  load(path: string): { func(definition: string): (...args: unknown[]) => number };
  struct(name: string, def: Record<string, string>): unknown;
  errno(): number;
}

export interface Libc {
  /** prctl(PR_SET_PDEATHSIG, signal); Linux only. */
  setParentDeathSignal?(signal: number): boolean;
  /** prctl(PR_SET_CHILD_SUBREAPER, 1): orphaned descendants reparent to this process; Linux only. */
  becomeSubreaper?(): boolean;
  /** prctl(PR_SET_DUMPABLE, 0); Linux only. */
  setNotDumpable?(): boolean;
  /** setrlimit(resource, { soft, hard }); throws with errno on failure. */
  setrlimit(resource: number, soft: bigint, hard: bigint): void;
}

let cached: Libc | null | undefined;

/**
 * koffi's binary without koffi's JavaScript loader, on glibc Linux: the loader (its index.cjs) costs
 * twice the binary's own dlopen (it reads the ELF header of Node's executable to tell glibc from
 * musl, resolves its packages, wraps the module in deprecation shims), 3-15 ms of every worker's
 * start on its critical path (docs/benchmarks.md, "Worker start"). koffi 3 ships the binary as its
 * own dependency, @koromix/koffi-linux-<arch>, in linux_<arch>/koffi.node; loaded from there it is
 * the same module, used only if its version is the installed koffi's. Anything else (another
 * layout, musl, another OS, a failure) returns undefined, and koffi's loader does it instead.
 */
function koffiBinary(): Koffi | undefined {
  // Where a musl loader would be, by machine name; other architectures go through koffi's loader.
  const machine = ({ x64: 'x86_64', arm64: 'aarch64' } as Record<string, string | undefined>)[process.arch];
  if (process.platform !== 'linux' || machine === undefined) return undefined;
  try {
    // (Inside the try: under Node's permission model a read may throw.)
    if (existsSync(`/lib/ld-musl-${machine}.so.1`)) return undefined;
    const koffiDir = dirname(createRequire(import.meta.url).resolve('koffi'));
    const { version } = JSON.parse(readFileSync(join(koffiDir, 'package.json'), 'utf8')) as { version?: unknown };
    const binaries = dirname(createRequire(join(koffiDir, 'index.cjs')).resolve(`@koromix/koffi-linux-${process.arch}/package.json`));
    const module = { exports: {} as { version?: unknown } };
    process.dlopen(module, join(binaries, `linux_${process.arch}`, 'koffi.node'));
    return typeof version === 'string' && module.exports.version === version ? (module.exports as unknown as Koffi) : undefined;
  } catch {
    return undefined;
  }
}

/** libc through koffi, or undefined when koffi (or libc) cannot be loaded. Loaded once. */
export function libc(): Libc | undefined {
  if (cached !== undefined) return cached ?? undefined;
  cached = null;
  if (process.platform !== 'linux' && process.platform !== 'darwin') return undefined;
  try {
    const koffi = koffiBinary() ?? loadKoffi<Koffi>(import.meta.url);
    if (!koffi) return undefined;
    const lib = koffi.load(process.platform === 'linux' ? 'libc.so.6' : 'libSystem.B.dylib');
    koffi.struct('ps_rlimit', { rlim_cur: 'uint64_t', rlim_max: 'uint64_t' });
    const setrlimit = lib.func('int setrlimit(int resource, const ps_rlimit *rlim)');
    const result: Libc = {
      setrlimit(resource, soft, hard) {
        if (setrlimit(resource, { rlim_cur: soft, rlim_max: hard }) !== 0) {
          throw Object.assign(new Error(`setrlimit(${resource}) failed: errno ${koffi.errno()}`), { errno: koffi.errno() });
        }
      },
    };
    if (process.platform === 'linux') {
      const prctl = lib.func('int prctl(int option, unsigned long arg2, unsigned long arg3, unsigned long arg4, unsigned long arg5)');
      const PR_SET_PDEATHSIG = 1;
      result.setParentDeathSignal = (signal) => prctl(PR_SET_PDEATHSIG, signal, 0, 0, 0) === 0;
      const PR_SET_CHILD_SUBREAPER = 36;
      result.becomeSubreaper = () => prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) === 0;
      const PR_SET_DUMPABLE = 4;
      result.setNotDumpable = () => prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) === 0;
    }
    cached = result;
  } catch {
    cached = null;
  }
  return cached ?? undefined;
}

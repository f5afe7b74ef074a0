/**
 * The few libc calls the worker's guards need, through koffi (an optional dependency). Everything
 * here degrades to `undefined` when koffi cannot load (not installed, unsupported platform): callers
 * then fall back (the parent watchdog still runs; limits go through util-linux's `prlimit`).
 */
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

/** libc through koffi, or undefined when koffi (or libc) cannot be loaded. Loaded once. */
export function libc(): Libc | undefined {
  if (cached !== undefined) return cached ?? undefined;
  cached = null;
  if (process.platform !== 'linux' && process.platform !== 'darwin') return undefined;
  try {
    const koffi = loadKoffi<Koffi>(import.meta.url);
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

/**
 * The host's own measurement of its workers, on one timer per pool: resident memory and CPU time
 * through pidusage, and on Linux the number of entries in /proc/<pid>/fd; on Windows, working set,
 * handle count and CPU time straight from kernel32 (os/windows.ts; pidusage would ask wmic, which
 * current Windows no longer ships). It sees what the operating system sees (native allocations,
 * descriptors opened by addons) and it works while a worker is blocked in native code and cannot
 * report anything itself.
 */
import { readdir } from 'node:fs/promises';
import pidusage from 'pidusage';
import { processFigures } from './os/windows.js';

export interface HostSample {
  rssBytes: number;
  cpuMs: number;
  /** Open descriptors (Linux) or handles (Windows); undefined elsewhere (no /proc). */
  handles: number | undefined;
}

const hasProcFs = process.platform === 'linux';
const isWindows = process.platform === 'win32';

/** Samples one process; undefined if it is gone. */
export async function sampleProcess(pid: number, intervalMs: number): Promise<HostSample | undefined> {
  if (isWindows) {
    const figures = processFigures(pid);
    // A live Windows process always holds handles: 0 means the count is not implemented (Wine),
    // and the worker's own report is then the better figure.
    if (figures) return { rssBytes: figures.workingSetBytes, cpuMs: figures.cpuMs, handles: figures.handles || undefined };
    // No koffi: pidusage, for what it can still tell.
  }
  try {
    // pidusage keeps an open /proc/<pid>/stat descriptor per pid for `maxage`; keep that short so the
    // descriptors of workers that have exited are released soon (maxage 0 would never close them).
    const [usage, fds] = await Promise.all([
      pidusage(pid, { maxage: Math.max(2 * intervalMs, 1_000) }),
      hasProcFs ? readdir(`/proc/${pid}/fd`).then((e) => e.length, () => undefined) : Promise.resolve(undefined),
    ]);
    return { rssBytes: usage.memory, cpuMs: usage.ctime, handles: fds };
  } catch {
    return undefined;
  }
}

/** Calls `tick` every `intervalMs`, never overlapping itself. */
export class Sampler {
  readonly #timer: NodeJS.Timeout;
  #running = false;

  constructor(intervalMs: number, tick: () => Promise<void>) {
    this.#timer = setInterval(() => {
      if (this.#running) return;
      this.#running = true;
      tick().finally(() => (this.#running = false));
    }, intervalMs);
    // Live workers keep the host alive on their own; the sampler must not.
    this.#timer.unref();
  }

  stop(): void {
    clearInterval(this.#timer);
  }
}

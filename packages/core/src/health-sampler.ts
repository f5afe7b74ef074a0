/**
 * The host's own measurement of its workers, on one timer per pool: on Linux, resident memory and CPU
 * time from /proc/<pid>/stat and the number of entries in /proc/<pid>/fd; elsewhere through pidusage
 * (ps on macOS and the BSDs); on Windows, working set,
 * handle count and CPU time straight from kernel32 (os/windows.ts; pidusage would ask wmic, which
 * current Windows no longer ships). It sees what the operating system sees (native allocations,
 * descriptors opened by addons) and it works while a worker is blocked in native code and cannot
 * report anything itself.
 */
import { readdir, readFile } from 'node:fs/promises';
import pidusage from 'pidusage';
import { pageBytes } from './memory-watch.js';
import { processFigures } from './os/windows.js';

export interface HostSample {
  rssBytes: number;
  cpuMs: number;
  /** Open descriptors (Linux) or handles (Windows); undefined elsewhere (no /proc). */
  handles: number | undefined;
}

const hasProcFs = process.platform === 'linux';
const isWindows = process.platform === 'win32';

/**
 * Linux reports CPU times in /proc in USER_HZ ticks, which the kernel fixes at 100 on every
 * architecture Node runs on (x86, arm, arm64, ppc64, s390x, riscv64), whatever its own HZ.
 */
const USER_HZ = 100;

/**
 * Resident bytes and CPU time of `pid` from one read of /proc/<pid>/stat.
 *
 * Not pidusage here: on Linux it keeps each pid's stat file open between samples and closes it only
 * when the pid has not been asked about for `maxage`, on an interval whose period is fixed by the
 * first caller in the process. A pool that recycles fast left dozens of descriptors of dead workers
 * open for tens of seconds after its disposal (seen as the host's fd count not returning to its
 * baseline in test/recycling.test.mjs under load). This opens, reads and closes.
 */
async function linuxSample(pid: number): Promise<HostSample> {
  const [stat, fds] = await Promise.all([
    readFile(`/proc/${pid}/stat`, 'latin1'),
    readdir(`/proc/${pid}/fd`).then((e) => e.length, () => undefined),
  ]);
  // "pid (comm) state ppid …": comm may hold spaces and parentheses; the last ')' ends it. After it,
  // field 3 (state) is index 0, so utime (14) is 11, stime (15) is 12 and rss (24, pages) is 21.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(fields[11]) + Number(fields[12]);
  const pages = Number(fields[21]);
  if (!Number.isFinite(ticks) || !Number.isFinite(pages)) throw new Error(`unreadable /proc/${pid}/stat`);
  return { rssBytes: pages * pageBytes(), cpuMs: (ticks * 1000) / USER_HZ, handles: fds };
}

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
    if (hasProcFs) return await linuxSample(pid);
    // pidusage keeps state per pid for `maxage`; keep that short so that of exited workers goes soon.
    const usage = await pidusage(pid, { maxage: Math.max(2 * intervalMs, 1_000) });
    return { rssBytes: usage.memory, cpuMs: usage.ctime, handles: undefined };
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

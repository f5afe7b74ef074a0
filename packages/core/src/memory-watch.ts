/**
 * hardMemoryLimitMB while calls run: the health sampler looks every healthIntervalMs (a second by
 * default), long enough for a worker allocating flat out to grow by gigabytes. So, on Linux, one
 * timer per pool reads the resident size of each worker that is running a call from
 * /proc/<pid>/statm every WATCH_INTERVAL_MS: one small synchronous read of a kernel counter, no
 * child process, no thread pool (pidusage would queue behind both). Idle workers cannot grow by
 * much and stay with the sampler. Elsewhere (no /proc) the sampler alone enforces the limit.
 *
 * The bound: a worker is stopped once a reading is at or over the limit; it can have grown past it
 * by what it allocates in one interval plus the host's timer lag (measured in docs/reliability.md).
 * The kill itself first SIGSTOPs the worker's group (process-tree.ts), so it grows no further.
 */
import { readFileSync } from 'node:fs';

export const WATCH_INTERVAL_MS = 10;

const hasProcFs = process.platform === 'linux';
let pageSize: number | undefined;

/** Bytes per page, from this process's own statm against libuv's resident size (no sysconf in Node). */
export function pageBytes(): number {
  if (pageSize !== undefined) return pageSize;
  const pages = Number(readFileSync('/proc/self/statm', 'latin1').split(' ')[1]);
  const ratio = process.memoryUsage.rss() / Math.max(pages, 1);
  // The two reads are microseconds apart: the ratio is the page size give or take a little.
  pageSize = 2 ** Math.round(Math.log2(ratio));
  return pageSize;
}

/** Resident bytes of `pid` (its statm's second field), or undefined if it is gone or unreadable. */
export function residentBytes(pid: number): number | undefined {
  try {
    const pages = Number(readFileSync(`/proc/${pid}/statm`, 'latin1').split(' ')[1]);
    return Number.isFinite(pages) ? pages * pageBytes() : undefined;
  } catch {
    return undefined;
  }
}

/** One timer for a pool: calls `over(worker, rss)` for each running worker at or over `limitBytes`. */
export class BusyMemoryWatch<W extends { readonly runtimePid: number }> {
  readonly #timer: NodeJS.Timeout | undefined;

  /** Undefined where /proc is not there (non-Linux): the sampler alone enforces the limit then. */
  static start<W extends { readonly runtimePid: number }>(limitBytes: number, running: () => Iterable<W>, over: (worker: W, rssBytes: number) => void): BusyMemoryWatch<W> | undefined {
    return hasProcFs ? new BusyMemoryWatch(limitBytes, running, over) : undefined;
  }

  private constructor(limitBytes: number, running: () => Iterable<W>, over: (worker: W, rssBytes: number) => void) {
    this.#timer = setInterval(() => {
      for (const worker of running()) {
        const rss = worker.runtimePid > 0 ? residentBytes(worker.runtimePid) : undefined;
        if (rss !== undefined && rss >= limitBytes) over(worker, rss);
      }
    }, WATCH_INTERVAL_MS);
    // Live workers keep the host alive on their own; the watch must not.
    this.#timer.unref();
  }

  stop(): void {
    clearInterval(this.#timer);
  }
}

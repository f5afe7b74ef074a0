/**
 * hardMemoryLimitMB while calls run: the health sampler looks every healthIntervalMs (a second by
 * default), long enough for a worker allocating flat out to grow by gigabytes. So, on Linux, one
 * timer per pool reads the resident size of each worker that is running a call from
 * /proc/<pid>/statm every WATCH_INTERVAL_MS while a call runs (and not at all while none does): one small synchronous read of a kernel counter, no
 * child process, no thread pool (pidusage would queue behind both). Idle workers cannot grow by
 * much and stay with the sampler. Elsewhere (no /proc) the sampler alone enforces the limit.
 *
 * The bound: a worker is stopped once a reading is at or over the limit; it can have grown past it
 * by what it allocates in one interval plus the host's timer lag (measured in docs/reliability.md).
 * The kill itself first SIGSTOPs the worker's group (process-tree.ts), so it grows no further.
 */
import { readFileSync } from 'node:fs';

const WATCH_INTERVAL_MS = 10;

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
function residentBytes(pid: number): number | undefined {
  try {
    const pages = Number(readFileSync(`/proc/${pid}/statm`, 'latin1').split(' ')[1]);
    return Number.isFinite(pages) ? pages * pageBytes() : undefined;
  } catch {
    return undefined;
  }
}

/** Watches armed now, across this host: each is a pool with a call running under hardMemoryLimitMB. */
let armedWatches = 0;

/** How many pools' watches have their timer running now (the tests check that an idle pool has none). */
export function armedMemoryWatches(): number {
  return armedWatches;
}

/**
 * One timer for a pool: calls `over(worker, rss)` for each running worker at or over `limitBytes`.
 * It ticks only while a call runs: the pool arms it when a call starts and disarms it when no worker
 * runs one any more (a tick that finds none disarms it too), so an idle pool costs nothing.
 */
export class BusyMemoryWatch<W extends { readonly runtimePid: number }> {
  #timer: NodeJS.Timeout | undefined;
  readonly #limitBytes: number;
  readonly #running: () => Iterable<W>;
  readonly #over: (worker: W, rssBytes: number) => void;

  /** Undefined where /proc is not there (non-Linux): the sampler alone enforces the limit then. */
  static create<W extends { readonly runtimePid: number }>(limitBytes: number, running: () => Iterable<W>, over: (worker: W, rssBytes: number) => void): BusyMemoryWatch<W> | undefined {
    return hasProcFs ? new BusyMemoryWatch(limitBytes, running, over) : undefined;
  }

  private constructor(limitBytes: number, running: () => Iterable<W>, over: (worker: W, rssBytes: number) => void) {
    this.#limitBytes = limitBytes;
    this.#running = running;
    this.#over = over;
  }

  /** A call started: watch until none runs. Cheap when already armed (it is asked at every call). */
  arm(): void {
    if (this.#timer) return;
    armedWatches++;
    this.#timer = setInterval(() => this.#tick(), WATCH_INTERVAL_MS);
    // Live workers keep the host alive on their own; the watch must not.
    this.#timer.unref();
  }

  /** A worker stopped running a call: disarm if no other runs one. */
  disarmIfIdle(): void {
    if (this.#timer && this.#running()[Symbol.iterator]().next().done) this.stop();
  }

  stop(): void {
    if (!this.#timer) return;
    clearInterval(this.#timer);
    this.#timer = undefined;
    armedWatches--;
  }

  #tick(): void {
    let any = false;
    for (const worker of this.#running()) {
      any = true;
      const rss = worker.runtimePid > 0 ? residentBytes(worker.runtimePid) : undefined;
      if (rss !== undefined && rss >= this.#limitBytes) this.#over(worker, rss);
    }
    if (!any) this.stop();
  }
}

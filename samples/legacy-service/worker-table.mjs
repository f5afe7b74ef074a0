// A live table of a pool's workers: pid, state, calls, resident memory, open descriptors, and what
// became of each (recycled, and why; crashed, and how).
//
// On a terminal it is redrawn in place (ANSI cursor moves) a few times a second, with the demo's
// narration scrolling above it. Anywhere else (a pipe, CI, a test) it is printed as a snapshot at
// the moments the demo asks for and otherwise at most every `snapshotMs`, never as a flood.

const MiB = 1024 * 1024;
const ESC = '\x1b[';

const COLUMNS = [
  { title: 'pid', align: 'right' },
  { title: 'state', align: 'left' },
  { title: 'calls', align: 'right' },
  { title: 'RSS MiB', align: 'right' },
  { title: 'fds', align: 'right' },
  { title: 'recycled', align: 'left' },
  { title: 'crashed', align: 'left' },
];

export class WorkerTable {
  #pool;
  #out;
  #live;
  #color;
  #intervalMs;
  #snapshotMs;
  #maxDeparted;
  /** pid → row; insertion order is start order. */
  #rows = new Map();
  #drawn = 0;
  #timer;
  #lastSnapshotAt = 0;
  #startedAt;
  #stopped = false;
  #listeners = [];

  /**
   * @param {import('@process-sandbox/core').PoolHandle} pool
   * @param {{ stream?: NodeJS.WriteStream, live?: boolean, color?: boolean, intervalMs?: number, snapshotMs?: number, maxDeparted?: number, since?: number }} [options]
   *   `live`: redraw in place (default: when the stream is a TTY); `intervalMs`: refresh period;
   *   `snapshotMs`: longest gap between two snapshots when not live; `since`: the clock's zero (performance.now()).
   */
  constructor(pool, options = {}) {
    this.#pool = pool;
    this.#out = options.stream ?? process.stdout;
    this.#live = options.live ?? this.#out.isTTY === true;
    this.#color = options.color ?? (this.#live && !process.env.NO_COLOR);
    this.#intervalMs = options.intervalMs ?? 200;
    this.#snapshotMs = options.snapshotMs ?? 4_000;
    this.#maxDeparted = options.maxDeparted ?? 8;
    this.#startedAt = options.since ?? performance.now();
    for (const w of pool.stats().workers) this.#row(w.pid);
    this.#on('workerStarted', ({ pid }) => this.#row(pid));
    this.#on('workerRecycled', ({ pid, reason }) => (this.#row(pid).recycled = reason));
    this.#on('workerCrashed', ({ pid, signal, exitCode }) => (this.#row(pid).crashed = signal ?? `exit ${exitCode}`));
    this.#on('callTimedOut', ({ pid, timeoutMs }) => (this.#row(pid).crashed = `hung, killed at ${timeoutMs} ms`));
    this.#on('workerExited', ({ pid, reason }) => {
      const row = this.#row(pid);
      row.gone = true;
      row.goneAt = performance.now();
      row.state = reason === 'start-failed' ? 'failed to start' : row.crashed ? (reason === 'timeout' ? 'killed' : 'crashed') : 'exited';
    });
  }

  /** True when the table is redrawn in place. */
  get live() {
    return this.#live;
  }

  start() {
    if (this.#live) this.#out.write(`${ESC}?25l`); // hide the cursor while redrawing
    // Every tick refreshes what is known of each worker (so that a worker that dies between two
    // snapshots still shows its last calls, RSS and descriptors); on a terminal it also redraws.
    this.#timer = setInterval(() => {
      if (this.#live) return this.#redraw();
      this.#refresh();
      if (performance.now() - this.#lastSnapshotAt >= this.#snapshotMs) this.snapshot('periodic');
    }, this.#intervalMs);
    this.#timer.unref();
    this.#redraw();
    return this;
  }

  /** A line of narration: above the live table, or just printed. */
  log(line = '') {
    if (!this.#live || this.#stopped) {
      this.#out.write(`${line}\n`);
      return;
    }
    // Narration scrolls above the table and is never redrawn: it may wrap.
    this.#clear();
    this.#out.write(`${line}\n`);
    this.#redraw();
  }

  /** On a terminal, a redraw; elsewhere, a snapshot of the table headed by `label`. */
  snapshot(label) {
    if (this.#live) return this.#redraw();
    this.#lastSnapshotAt = performance.now();
    const seconds = ((performance.now() - this.#startedAt) / 1000).toFixed(1);
    this.#out.write(`\n── workers at ${seconds} s${label ? ` (${label})` : ''} ──\n${this.render().join('\n')}\n\n`);
  }

  /** Stops redrawing; leaves the last table on screen (or prints a final snapshot). */
  stop(label = 'final') {
    if (this.#stopped) return;
    clearInterval(this.#timer);
    if (this.#live) {
      this.#redraw();
      this.#out.write(`${ESC}?25h`);
      this.#drawn = 0; // what follows is printed below the table, which stays
    } else {
      this.snapshot(label);
    }
    this.#stopped = true;
    for (const [event, listener] of this.#listeners) this.#pool.off(event, listener);
  }

  /** The table as lines of text. */
  render() {
    const { totals } = this.#refresh();
    const rows = [...this.#rows.values()];
    const live = rows.filter((r) => !r.gone);
    const departed = rows.filter((r) => r.gone).sort((a, b) => b.goneAt - a.goneAt);
    // On a terminal the whole table must stay on screen, or the cursor cannot get back to its top.
    const room = this.#live && this.#out.rows ? Math.max(0, this.#out.rows - live.length - 7) : Infinity;
    const maxDeparted = Math.min(this.#maxDeparted, room);
    const shown = [...live, ...departed.slice(0, maxDeparted)];
    const cells = shown.map((r) => [
      String(r.pid),
      r.state,
      String(r.calls),
      r.rss === undefined ? '-' : (r.rss / MiB).toFixed(0),
      r.fds === undefined ? '-' : String(r.fds),
      r.recycled ?? '',
      r.crashed ?? '',
    ]);
    const widths = COLUMNS.map((c, i) => Math.max(c.title.length, ...cells.map((row) => row[i].length)));
    const line = (values) => values.map((v, i) => (COLUMNS[i].align === 'right' ? v.padStart(widths[i]) : v.padEnd(widths[i]))).join('  ').trimEnd();
    const lines = [this.#paint(line(COLUMNS.map((c) => c.title)), '1'), this.#paint(widths.map((w) => '─'.repeat(w)).join('  '), '2')];
    shown.forEach((r, i) => lines.push(this.#paint(line(cells[i]), r.crashed ? '31' : r.recycled ? '33' : r.gone ? '2' : r.state === 'busy' ? '32' : '')));
    if (departed.length > maxDeparted) lines.push(this.#paint(`… and ${departed.length - maxDeparted} earlier workers, gone`, '2'));
    const recycles = Object.entries(totals.recycles).filter(([, n]) => n > 0).map(([reason, n]) => `${reason} ${n}`).join(', ') || 'none';
    lines.push(
      `calls ${totals.calls} · ok ${totals.succeeded} · failed ${totals.failed} · in flight ${totals.inFlight} · queued ${totals.queued}`,
      `crashes ${totals.crashes} · timeouts ${totals.timeouts} · recycles: ${recycles}`,
    );
    return lines;
  }

  /** Updates the rows from the pool's stats; returns the stats. */
  #refresh() {
    const stats = this.#pool.stats();
    for (const w of stats.workers) {
      const row = this.#row(w.pid);
      if (row.gone) continue;
      row.state = w.spare ? `${w.state} (spare)` : w.state;
      row.calls = w.calls;
      if (w.rssBytes !== undefined) row.rss = w.rssBytes;
      if (w.handles !== undefined) row.fds = w.handles;
    }
    return stats;
  }

  #on(event, listener) {
    this.#pool.on(event, listener);
    this.#listeners.push([event, listener]);
  }

  #row(pid) {
    let row = this.#rows.get(pid);
    if (!row) {
      row = { pid, state: 'spawning', calls: 0, rss: undefined, fds: undefined, recycled: undefined, crashed: undefined, gone: false, goneAt: 0 };
      this.#rows.set(pid, row);
    }
    return row;
  }

  #redraw() {
    if (!this.#live || this.#stopped) return;
    const lines = ['', ...this.render()].map((l) => this.#fit(l));
    this.#clear();
    this.#out.write(`${lines.join('\n')}\n`);
    this.#drawn = lines.length;
  }

  /** Moves the cursor back to the top of the table and clears to the end of the screen. */
  #clear() {
    if (this.#drawn > 0) this.#out.write(`${ESC}${this.#drawn}A\r${ESC}J`);
    this.#drawn = 0;
  }

  /** Cuts a line to the terminal's width, so that the cursor arithmetic holds (no wrapping). */
  #fit(line) {
    const columns = this.#out.columns;
    if (!columns) return line;
    // eslint-disable-next-line no-control-regex
    const visible = line.replace(/\x1b\[[0-9;]*m/g, '');
    if (visible.length < columns) return line;
    return `${visible.slice(0, columns - 2)}…`;
  }

  #paint(text, code) {
    return this.#color && code ? `${ESC}${code}m${text}${ESC}0m` : text;
  }
}

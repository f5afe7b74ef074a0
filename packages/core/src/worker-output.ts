/**
 * What a worker prints: every line of its stdout and stderr goes to the pool's logger, prefixed
 * with its pid (never counted as a failure), and the last few KiB of stderr are kept for the
 * errors that explain why a worker could not start or died.
 *
 * A worker's output is hostile input like everything else it sends, so every cost is bounded:
 *  - a line longer than MAX_LINE_BYTES is cut there, with `… [truncated N bytes]`; the rest of it is
 *    counted and discarded as it arrives, so a line without end (600 MiB, no newline) costs nothing;
 *  - the logger gets at most LINES_PER_SECOND lines and BYTES_PER_SECOND bytes a second from one
 *    worker (a token bucket, bursts up to one second's worth); lines over budget are dropped, and
 *    one line a DROP_REPORT_MS later says how many;
 *  - the stderr tail is the last STDERR_TAIL_BYTES bytes.
 * The pipes are read as fast as the worker writes, never paused: output over budget is discarded,
 * so a worker that prints without end keeps running (and keeps being bounded by its own limits)
 * rather than blocking forever in a write the host will never read.
 */
import type { Readable } from 'node:stream';
import type { Logger } from './logger.js';

export const MAX_LINE_BYTES = 16 * 1024;
export const LINES_PER_SECOND = 100;
const BYTES_PER_SECOND = 1024 * 1024;
const DROP_REPORT_MS = 1_000;
const STDERR_TAIL_BYTES = 4096;
const NEWLINE = 0x0a;

type Stream = 'stdout' | 'stderr';

/** Lines and bytes a second, refilled continuously, at most one second's worth in hand. */
class TokenBucket {
  #lines = LINES_PER_SECOND;
  #bytes = BYTES_PER_SECOND;
  #at = performance.now();

  take(bytes: number): boolean {
    const now = performance.now();
    const seconds = (now - this.#at) / 1000;
    this.#at = now;
    this.#lines = Math.min(LINES_PER_SECOND, this.#lines + seconds * LINES_PER_SECOND);
    this.#bytes = Math.min(BYTES_PER_SECOND, this.#bytes + seconds * BYTES_PER_SECOND);
    if (this.#lines < 1 || this.#bytes < bytes) return false;
    this.#lines -= 1;
    this.#bytes -= bytes;
    return true;
  }
}

/**
 * Splits a byte stream into lines of at most MAX_LINE_BYTES, holding no more than that meanwhile.
 * `wants` decides from a line's size whether it is wanted at all; only a wanted line is handed over as
 * bytes, so a flood of unwanted lines costs a scan for newlines and no allocation per line.
 */
class LineSplitter {
  #parts: Buffer[] = [];
  #kept = 0;
  #cut = 0;

  constructor(
    readonly wants: (kept: number, cut: number) => boolean,
    readonly onLine: (line: Buffer, cut: number) => void,
  ) {}

  push(chunk: Buffer): void {
    let start = 0;
    for (let nl = chunk.indexOf(NEWLINE); nl !== -1; nl = chunk.indexOf(NEWLINE, start)) {
      if (this.#kept === 0 && this.#cut === 0) {
        // The whole line is in this chunk: nothing to gather.
        const kept = Math.min(nl - start, MAX_LINE_BYTES);
        const cut = nl - start - kept;
        if (this.wants(kept, cut)) this.onLine(chunk.subarray(start, start + kept), cut);
      } else {
        this.#add(chunk.subarray(start, nl), false);
        this.#emit();
      }
      start = nl + 1;
    }
    // The unfinished line's head is copied: a slice would keep the whole chunk alive.
    if (start < chunk.length) this.#add(chunk.subarray(start), true);
  }

  /** The stream ended: an unfinished last line is a line. */
  end(): void {
    if (this.#kept > 0 || this.#cut > 0) this.#emit();
  }

  #add(piece: Buffer, copy: boolean): void {
    const room = MAX_LINE_BYTES - this.#kept;
    const kept = Math.min(room, piece.length);
    if (kept > 0) {
      this.#parts.push(copy ? Buffer.from(piece.subarray(0, kept)) : piece.subarray(0, kept));
      this.#kept += kept;
    }
    this.#cut += piece.length - kept;
  }

  #emit(): void {
    const [parts, kept, cut] = [this.#parts, this.#kept, this.#cut];
    this.#parts = [];
    this.#kept = 0;
    this.#cut = 0;
    if (this.wants(kept, cut)) this.onLine(parts.length === 1 ? parts[0]! : Buffer.concat(parts, kept), cut);
  }
}

export class WorkerOutput {
  readonly #bucket = new TokenBucket();
  #stderrTail = Buffer.alloc(0);
  #droppedLines = 0;
  #droppedBytes = 0;
  #reportTimer: NodeJS.Timeout | undefined;

  constructor(
    readonly logger: Logger,
    readonly pid: () => number,
  ) {}

  get stderrTail(): string {
    return this.#stderrTail.toString('utf8');
  }

  follow(source: Readable | null, stream: Stream): void {
    if (!source) return;
    const lines = new LineSplitter(
      (kept, cut) => this.#budget(kept, cut),
      (line, cut) => this.#line(stream, line, cut),
    );
    source.on('data', (chunk: Buffer) => {
      if (stream === 'stderr') this.#keepTail(chunk);
      lines.push(chunk);
    });
    source.on('end', () => lines.end());
    source.on('error', () => {}); // the worker's exit tells the story
  }

  #keepTail(chunk: Buffer): void {
    const tail = chunk.length >= STDERR_TAIL_BYTES ? chunk.subarray(chunk.length - STDERR_TAIL_BYTES) : Buffer.concat([this.#stderrTail, chunk]);
    this.#stderrTail = Buffer.from(tail.subarray(Math.max(0, tail.length - STDERR_TAIL_BYTES)));
  }

  /** Whether a line of this size may go to the logger now; if not, it is counted as dropped. */
  #budget(kept: number, cut: number): boolean {
    if (this.#bucket.take(kept)) return true;
    this.#dropped(kept + cut);
    return false;
  }

  #line(stream: Stream, line: Buffer, cut: number): void {
    let text = line.toString('utf8');
    if (text.endsWith('\r')) text = text.slice(0, -1);
    const pid = this.pid();
    const obj: Record<string, unknown> = { pid, stream };
    if (cut > 0) {
      text += `… [truncated ${cut} bytes]`;
      obj.truncatedBytes = cut;
    }
    this.#log(stream === 'stderr' ? 'warn' : 'info', obj, `[worker ${pid}] ${text}`);
  }

  #dropped(bytes: number): void {
    this.#droppedLines++;
    this.#droppedBytes += bytes;
    this.#reportTimer ??= setTimeout(() => this.#reportDropped(), DROP_REPORT_MS).unref();
  }

  #reportDropped(): void {
    this.#reportTimer = undefined;
    const pid = this.pid();
    const [lines, bytes] = [this.#droppedLines, this.#droppedBytes];
    this.#droppedLines = 0;
    this.#droppedBytes = 0;
    const why = `over ${LINES_PER_SECOND} lines/s or ${BYTES_PER_SECOND / (1024 * 1024)} MiB/s`;
    this.#log('warn', { pid, droppedLines: lines, droppedBytes: bytes }, `[worker ${pid}] … dropped ${lines} lines (${bytes} bytes) of output: ${why}`);
  }

  /** The application's logger may throw: never into the pipe's event handler. */
  #log(level: 'info' | 'warn', obj: object, msg: string): void {
    try {
      this.logger[level](obj, msg);
    } catch {
      // its own problem; the worker's output is not worth a crash
    }
  }
}

/**
 * What a worker prints: every line of its stdout and stderr goes to the pool's logger, prefixed
 * with its pid (never counted as a failure), and the last few KiB of stderr are kept for the
 * errors that explain why a worker could not start or died.
 */
import type { Readable } from 'node:stream';
import { createInterface } from 'node:readline';
import type { Logger } from './logger.js';

const STDERR_TAIL_BYTES = 4096;

export class WorkerOutput {
  #stderrTail = '';

  constructor(
    readonly logger: Logger,
    readonly pid: () => number,
  ) {}

  get stderrTail(): string {
    return this.#stderrTail;
  }

  follow(source: Readable | null, stream: 'stdout' | 'stderr'): void {
    if (!source) return;
    createInterface({ input: source, crlfDelay: Infinity }).on('line', (line) => {
      const pid = this.pid();
      if (stream === 'stderr') {
        this.#stderrTail = (this.#stderrTail + line + '\n').slice(-STDERR_TAIL_BYTES);
        this.logger.warn({ pid, stream }, `[worker ${pid}] ${line}`);
      } else {
        this.logger.info({ pid, stream }, `[worker ${pid}] ${line}`);
      }
    });
  }
}

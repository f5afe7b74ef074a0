/**
 * How a worker ends: one record (WorkerEnd), filled in by WorkerHandle as things become known, and
 * what follows from it once the process has exited — whether that was a crash, the error of a call
 * that was running, the WorkerStartError of a worker that never became ready.
 */
import { WorkerCrashedError, WorkerStartError, type ProtocolError } from '@process-sandbox/abstractions';
import type { ResolvedOptions } from './options.js';
import type { StopReason } from './pool-worker.js';
import { limitErrorFor } from './resource-limits.js';

/**
 * How a worker ends, filled in as it is known (the first word on each point wins) and complete
 * when the process has exited. Whether the end was a crash follows from it (see #onExit).
 */
export interface WorkerEnd {
  /** Why we took it out of service (retired, disposed, timed out, protocol error ...), if we did. */
  requested: StopReason | undefined;
  /** We sent Shutdown or killed it on purpose: its exit is our doing (unless `requested` was a fault). */
  asked: boolean;
  /** What is known of why the process goes, before it exits (start failure, protocol error, fatal error ...). */
  detail: string | undefined;
  /** The worker's own error that ends it (a start failure or a fatal error): the cause of its calls' errors. */
  fatal: Error | undefined;
  /** The protocol error we end it for: from then on nothing it sends is believed. */
  protocol: ProtocolError | undefined;
  /** The user's method that was running when the process ended, if any. */
  interrupted: string | undefined;
  /** Its exit status, once it has exited. */
  code: number | null;
  signal: NodeJS.Signals | null;
}

export function newWorkerEnd(): WorkerEnd {
  return { requested: undefined, asked: false, detail: undefined, fatal: undefined, protocol: undefined, interrupted: undefined, code: null, signal: null };
}

/**
 * Exited as asked: after Shutdown, or killed by us for a reason that is not a fault. A worker that
 * dies on its own while draining (retired, finishing its last call) has crashed.
 */
export function endedAsAsked(end: WorkerEnd): boolean {
  return end.requested !== undefined && end.requested !== 'protocol' && end.requested !== 'timeout' && end.asked;
}

/** What a call running when the process ended rejects with: a resource limit it hit, or the crash. */
export function lostCallError(options: ResolvedOptions, pid: number, end: WorkerEnd, method: string, stderrTail: string): Error {
  // A protocol error is what we observed and acted on; a fatal error is only what the worker said of
  // itself (and a worker that broke the protocol after saying it is not believed any further).
  const cause = end.protocol ?? end.fatal;
  return limitErrorFor(options, pid, end.code, end.signal, method, stderrTail) ?? new WorkerCrashedError(pid, end.code, end.signal, method, end.detail, cause ? { cause } : undefined);
}

/** Why a worker that never became ready failed to start. */
export function startErrorOf(end: WorkerEnd, pid: number, stderrTail: string): WorkerStartError {
  const how = end.signal ? `signal ${end.signal}` : `exit code ${end.code}`;
  const reason = end.detail ?? `the worker process exited (${how}) before it was ready`;
  const cause = end.protocol ?? end.fatal;
  return new WorkerStartError(reason, stderrTail.trimEnd(), pid || undefined, cause ? { cause } : undefined);
}

/** The worker's own words become part of the host's error messages: a bounded part of them. */
const MAX_DETAIL_CHARS = 4096;
export function clip(text: string): string {
  return text.length <= MAX_DETAIL_CHARS ? text : `${text.slice(0, MAX_DETAIL_CHARS)}… (${text.length - MAX_DETAIL_CHARS} more characters)`;
}

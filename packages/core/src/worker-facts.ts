/**
 * What the pool reads of one worker besides its state: the PoolWorker members that are facts, not
 * acts. Each fact is kept once, in the part that records it: the worker's resource use
 * (WorkerUsage), the calls it holds (WorkerCalls), its start (WorkerStart) and how it ends (the
 * WorkerEnd record); this class only reads them out. WorkerHandle extends it and is the one writer
 * of these parts, so that worker-handle.ts holds the state machine, not some fifteen getters. Its
 * state, and what follows from it (live, terminal, canTakeAhead), are the machine's own.
 */
import type { HealthSnapshot, WorkerStartError } from '@process-sandbox/abstractions';
import type { Call } from './call.js';
import type { StopReason } from './pool-worker.js';
import type { WorkerCalls } from './worker-calls.js';
import { newWorkerEnd, type WorkerEnd } from './worker-end.js';
import type { WorkerStart } from './worker-start.js';
import { WorkerUsage } from './worker-usage.js';

export abstract class WorkerFacts {
  /** Its resource use as last known: its own reports and the host's samples. */
  protected readonly usage = new WorkerUsage();
  /** How this worker ends, gathered as it goes (see WorkerEnd): its one record. */
  protected readonly end: WorkerEnd = newWorkerEnd();
  /** The calls it holds: the one running and the calls sent ahead. */
  protected readonly held: WorkerCalls;
  protected readonly start: WorkerStart;
  readonly ready: Promise<void>;

  protected constructor(held: WorkerCalls, start: WorkerStart) {
    this.held = held;
    this.start = start;
    this.ready = start.ready;
  }

  get methods(): readonly string[] {
    return this.start.methods;
  }
  get startError(): WorkerStartError | undefined {
    return this.start.error;
  }

  get health(): HealthSnapshot | undefined {
    return this.usage.health;
  }
  get lastHealthAt(): number | undefined {
    return this.usage.healthAt;
  }
  /** Resident memory, handles and CPU time from whichever source spoke last: the worker or the host's sampler. */
  get rssBytes(): number | undefined {
    return this.usage.rssBytes;
  }
  get handles(): number | undefined {
    return this.usage.handles;
  }
  get cpuMs(): number | undefined {
    return this.usage.cpuMs;
  }

  get calls(): number {
    return this.held.finished;
  }
  get currentCall(): Call | undefined {
    return this.held.running;
  }
  get aheadCalls(): readonly Call[] {
    return this.held.ahead;
  }

  get stopReason(): StopReason | undefined {
    return this.end.requested;
  }
  get exitCode(): number | null {
    return this.end.code;
  }
  get signal(): NodeJS.Signals | null {
    return this.end.signal;
  }
  get interruptedMethod(): string | undefined {
    return this.end.interrupted;
  }
  get endReason(): string | undefined {
    return this.end.detail;
  }
}

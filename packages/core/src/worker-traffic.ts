/**
 * What a worker sends that neither answers a call nor moves its state: the running call's stream
 * items and calls back into its function arguments (CallTraffic, call-traffic.ts), and the
 * implementation's named events, which reach the pool's listeners within the host's EventBudget.
 * The gate (worker-gate.ts) hands these messages here; one that breaks the protocol goes back to
 * the worker's state machine (WorkerHandle), which kills the worker. Nothing here changes its state.
 */
import { CallTraffic, type Problem, type TrafficLink } from './call-traffic.js';
import { EventBudget } from './event-budget.js';
import type { PoolLogger } from './logger.js';
import type { GateHandlers } from './worker-gate.js';

/** What the traffic needs from its worker, besides what its running call's traffic needs. */
export interface WorkerTrafficLink extends TrafficLink {
  /** The worker's pid, for the log. */
  pid(): number;
  /** A message broke the protocol: the worker is to be killed. */
  protocolError(problem: string): void;
  /** A named event, within the budget: for the pool's listeners. */
  event(name: string, payload: unknown): void;
}

export class WorkerTraffic implements Pick<GateHandlers, 'streamOpen' | 'streamItem' | 'callback' | 'event'> {
  readonly #link: WorkerTrafficLink;
  readonly #logger: PoolLogger;
  readonly #calls: CallTraffic;
  readonly #events = new EventBudget();

  constructor(link: WorkerTrafficLink, maxMessageBytes: number, logger: PoolLogger) {
    this.#link = link;
    this.#logger = logger;
    this.#calls = new CallTraffic(link, maxMessageBytes);
  }

  streamOpen(id: number): void {
    this.#problem(this.#calls.streamOpen(id));
  }
  streamItem(id: number, item: unknown): void {
    this.#problem(this.#calls.streamItem(id, item));
  }
  callback(id: number, callback: number, slot: number, args: unknown[]): void {
    this.#problem(this.#calls.callback(id, callback, slot, args));
  }

  /** Beyond the budget an event is dropped, and the drops are logged at most once a second: a flood costs the host little. */
  event(name: string, payload: unknown): void {
    if (this.#events.take()) return this.#link.event(name, payload);
    const dropped = this.#events.dueReport();
    if (dropped === undefined) return;
    const pid = this.#link.pid();
    this.#logger.warn({ pid, dropped }, `process-sandbox: worker ${pid} emits events faster than the host takes them; ${dropped} dropped so far`);
  }

  #problem(problem: Problem): void {
    if (problem !== undefined) this.#link.protocolError(problem);
  }
}

/**
 * Lookahead (pipelineDepth): a busy worker may be sent up to that many next calls before its current
 * one returns, so it never waits for the host between calls; it still runs them one at a time, in
 * the order sent. Which calls go ahead is decided in a microtask, after everything enqueued in the
 * same tick has taken its place in line by priority, and the rules keep every call's meaning:
 *  - only the head of the line goes ahead (a call sent ahead is one that would be next anyway), to
 *    the worker holding the fewest calls ahead;
 *  - a call that enters the line with a higher priority than calls already sent ahead recalls them
 *    (Cancel): those the worker has not started come back to their place in line, behind it, so a
 *    high-priority call never waits behind lower ones that have not started;
 *  - a worker that becomes free while the line is empty recalls the calls ahead elsewhere beyond
 *    the first of each worker, so that no call waits behind a long one while a worker idles;
 *  - the call limit of a worker counts the calls sent ahead (Recycling.mayGoAhead), and a worker
 *    retired over a limit recalls its calls ahead (WorkerHandle.stop); a call sent ahead whose
 *    worker dies before starting it comes back and runs elsewhere, once;
 *  - aborts and queue timeouts treat a call sent ahead as waiting: it settles at once and the
 *    worker is asked to drop it; its call timeout starts when it starts running.
 *
 * This is the dispatcher's index of the calls in state `ahead`, the recall rules over it, and the
 * ahead pass's timing. The dispatcher still owns the calls' states (it keeps this index as it moves
 * them) and the scheduling loop that runs the pass; a recalled call comes back through the worker's
 * report (unstarted), never from here.
 */
import type { Call } from './call.js';
import { entryPriority } from './call-line.js';
import type { PoolWorker } from './pool-worker.js';

export class Lookahead {
  /** Users' calls in state `ahead`: kept by the dispatcher as it moves calls, for recalls. */
  readonly #ahead = new Set<Call>();
  /** Some entry ever had a priority other than 0: only then can a call overtake calls sent ahead. */
  #prioritiesUsed = false;
  #passQueued = false;
  #passDue = false;
  readonly #holderOf: (call: Call) => PoolWorker | undefined;
  readonly #schedule: () => void;

  /** `holderOf`: the worker holding a call; `schedule`: runs the dispatcher's scheduling loop. */
  constructor(holderOf: (call: Call) => PoolWorker | undefined, schedule: () => void) {
    this.#holderOf = holderOf;
    this.#schedule = schedule;
  }

  /** Users' calls sent ahead and not started. */
  get size(): number {
    return this.#ahead.size;
  }
  add(call: Call): void {
    this.#ahead.add(call);
  }
  delete(call: Call): void {
    this.#ahead.delete(call);
  }

  /** An entry of `priority` joins the line. */
  noteEntry(priority: number): void {
    if (priority !== 0) this.#prioritiesUsed = true;
  }

  /** A call of priority `priority` waits: every call sent ahead with a lower one is recalled to the line, behind it. */
  recallBelow(priority: number): void {
    if (!this.#prioritiesUsed || this.#ahead.size === 0) return;
    for (const call of this.#ahead) {
      if (!call.cancelRequested && entryPriority(call) < priority) this.#holderOf(call)?.cancelAhead(call);
    }
  }

  /**
   * A worker is free and nothing waits in line: the calls sent ahead to other workers beyond the
   * first of each are recalled, so that none waits behind a long call while a worker idles. Those
   * their worker has not started come back (unstarted) and go to the free worker.
   */
  stealForFree(): void {
    for (const call of this.#ahead) {
      if (call.cancelRequested) continue;
      const worker = this.#holderOf(call);
      if (worker && worker.aheadCalls.indexOf(call) > 0) worker.cancelAhead(call);
    }
  }

  /** Asks for an ahead pass once everything enqueued in this tick is in line: in a microtask, which runs the scheduling loop. */
  wantPass(): void {
    if (this.#passQueued) return;
    this.#passQueued = true;
    queueMicrotask(() => {
      this.#passQueued = false;
      this.#passDue = true;
      this.#schedule();
    });
  }

  /** Whether an ahead pass is due now (the scheduling loop then runs it: it is no longer due). */
  takePass(): boolean {
    const due = this.#passDue;
    this.#passDue = false;
    return due;
  }
}

/**
 * The line of entries (calls and lease requests) waiting for a worker: by priority, higher first,
 * FIFO within one. Two parts:
 *
 * - the line itself, p-queue's stable PriorityQueue used as a store (pull mode: p-queue's job runner
 *   pushes a job out as soon as a concurrency slot is free, which let a low-priority call leave
 *   before higher ones enqueued in the same tick);
 * - the front: entries that were at the head once and come back (calls sent ahead that their worker
 *   did not start, because it died or they were recalled; a crashed call being retried; a lease
 *   request passed over by an ahead pass). Ordered by priority, then call id, so that recalled calls
 *   go back to their own place: before the line's entries of their priority, after higher ones.
 *
 * An entry settled while waiting (abort, queue timeout, dispose) is skipped when reached, or removed.
 */
import { PriorityQueue } from 'p-queue';
import { Call } from './call.js';

/** Something other than a call that waits in line for a worker (a lease). */
export interface WorkerRequest {
  readonly settled: boolean;
  priority?: number;
}

export type Entry = Call | WorkerRequest;

export function entryPriority(entry: Entry): number {
  return (entry instanceof Call ? entry.options?.priority : entry.priority) ?? 0;
}

export class CallLine {
  /** Typed for functions by p-queue; it only stores them. */
  readonly #line = new PriorityQueue();
  readonly #front: Entry[] = [];
  /** The head of #line, taken out to compare its priority with the front's (p-queue has no peek). */
  #lineHead: Entry | undefined;

  /** Entries waiting (settled ones not yet skipped included). */
  get size(): number {
    return this.#line.size + this.#front.length + (this.#lineHead ? 1 : 0);
  }

  /** A new entry, behind every entry of its priority or higher. */
  enqueue(entry: Entry): void {
    this.#line.enqueue(entry as unknown as () => Promise<unknown>, { priority: entryPriority(entry) });
  }

  /** An entry that was at the head once: before the line's entries of its priority, in call-id order among the front's. */
  returnToFront(entry: Entry): void {
    const priority = entryPriority(entry);
    const id = entry instanceof Call ? entry.id : 0;
    let i = 0;
    while (i < this.#front.length) {
      const other = this.#front[i]!;
      const p = entryPriority(other);
      if (p < priority || (p === priority && (other instanceof Call ? other.id : 0) > id)) break;
      i++;
    }
    this.#front.splice(i, 0, entry);
  }

  /**
   * The next unsettled entry: of the front's first and the line's head, the one of higher priority
   * (the front's on a tie). With `callsOnly`, lease requests keep their place.
   */
  takeNext(callsOnly: boolean): Entry | undefined {
    for (;;) {
      let first: number | undefined;
      for (let i = 0; i < this.#front.length; i++) {
        const entry = this.#front[i]!;
        if (entry.settled) this.#front.splice(i--, 1);
        else if (!callsOnly || entry instanceof Call) {
          first = i;
          break;
        }
      }
      const head = this.#peekLine();
      if (first !== undefined && (head === undefined || entryPriority(this.#front[first]!) >= entryPriority(head))) return this.#front.splice(first, 1)[0];
      if (head === undefined) return undefined;
      this.#lineHead = undefined;
      if (!callsOnly || head instanceof Call) return head;
      this.returnToFront(head); // a lease request at the head: it keeps its turn
    }
  }

  /** Takes a call out of the line (it settled while waiting); one in the front is skipped when reached. */
  remove(call: Call): void {
    if (this.#lineHead === call) this.#lineHead = undefined;
    else this.#line.remove(call as unknown as () => Promise<unknown>);
  }

  /** The line's first unsettled entry, left in line (as #lineHead). */
  #peekLine(): Entry | undefined {
    while (this.#lineHead === undefined || this.#lineHead.settled) {
      this.#lineHead = this.#line.dequeue() as unknown as Entry | undefined;
      if (this.#lineHead === undefined) return undefined;
    }
    return this.#lineHead;
  }
}

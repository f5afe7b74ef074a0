/**
 * How many events the host takes from one worker: a token bucket of twice the rate the worker's
 * own emit() keeps to (EVENTS_PER_SECOND), so that an honest worker whose events arrive bunched
 * (the host was busy; the socket held them) is never cut, while a flood costs the host at most
 * that many listener runs per second. Events beyond are dropped, counted, and logged at most once
 * a second. (Their decoding is already bounded by MAX_EVENT_BYTES per frame.)
 */
import { EVENTS_PER_SECOND } from '@process-sandbox/abstractions';

const RATE = 2 * EVENTS_PER_SECOND;

export class EventBudget {
  #tokens = RATE;
  #at = performance.now();
  #dropped = 0;
  #reportedAt = -Infinity;

  /** Whether one more event may be delivered now. */
  take(): boolean {
    const now = performance.now();
    this.#tokens = Math.min(RATE, this.#tokens + ((now - this.#at) * RATE) / 1000);
    this.#at = now;
    if (this.#tokens >= 1) {
      this.#tokens--;
      return true;
    }
    this.#dropped++;
    return false;
  }

  /** Events dropped so far, when a report is due (at most once a second); else undefined. */
  dueReport(): number | undefined {
    const now = performance.now();
    if (now - this.#reportedAt < 1000) return undefined;
    this.#reportedAt = now;
    return this.#dropped;
  }
}

/**
 * The calls one worker holds: the one running, and the calls sent ahead (already in the worker's
 * queue, in the order it will start them: the first starts the moment the running call's reply is
 * written). It matches each reply to the call it answers and keeps the running call's timeout. It
 * decides nothing about the worker's state: WorkerHandle owns that, and asks this for the calls
 * when it changes state.
 */
import type { Call } from './call.js';

/**
 * What a reply did: settled the running call; dropped a call ahead, as a Cancel asked (`call`
 * settled: its caller aborted it; unsettled: it was recalled and must run elsewhere); or broke the
 * protocol.
 */
export type ReplyMatch = { kind: 'running'; call: Call } | { kind: 'dropped'; call: Call } | { kind: 'wrong'; problem: string };

export class WorkerCalls {
  #running: Call | undefined;
  /** Sent ahead, not started: first to start first. */
  readonly #ahead: Call[] = [];
  /** User calls finished (value or thrown error); session messages are not counted. */
  #finished = 0;
  #timer: NodeJS.Timeout | undefined;
  #timerMs = 0;
  /** The running call's timer is paused: a stream whose consumer is not waiting for an item. */
  #paused = false;
  readonly #onTimeout: (call: Call) => void;

  /** `onTimeout`: the running call outlived its timeout. */
  constructor(onTimeout: (call: Call) => void) {
    this.#onTimeout = onTimeout;
  }

  get running(): Call | undefined {
    return this.#running;
  }
  /** The calls sent ahead, in the order the worker will start them. */
  get ahead(): readonly Call[] {
    return this.#ahead;
  }
  get finished(): number {
    return this.#finished;
  }
  /**
   * A user's call runs and fewer than `depth` calls are sent ahead. Not while the running call
   * streams: a stream may hold its worker for as long as its consumer reads, and a call sent ahead
   * would wait as long.
   */
  roomAhead(depth: number): boolean {
    return this.#ahead.length < depth && this.#running !== undefined && !this.#running.control && this.#running.stream === undefined;
  }

  /** `call` starts running now; its timeout starts with it, not when it was sent. */
  start(call: Call): void {
    this.#running = call;
    this.#paused = false;
    call.startedAt = performance.now();
    // One timer per worker, re-armed for each call: no timer is created per call.
    if (this.#timer && this.#timerMs === call.timeoutMs) this.#timer.refresh();
    else {
      clearTimeout(this.#timer);
      this.#timer = setTimeout(() => this.#timedOut(), call.timeoutMs).unref();
      this.#timerMs = call.timeoutMs;
    }
  }

  /** The start's warm-up call (WorkerHandle): it runs with no timer of its own, under the start's timeout. */
  startWarmUp(call: Call): void {
    this.#running = call;
  }

  sendAhead(call: Call): void {
    this.#ahead.push(call);
  }

  /** `call` is to be dropped unrun (aborted by its caller, or recalled): true if it is ahead here and no Cancel was asked for it yet. */
  markCancelAhead(call: Call): boolean {
    if (call.cancelRequested || !this.#ahead.includes(call)) return false;
    call.cancelRequested = true;
    return true;
  }

  /**
   * Matches a reply to `id`. Only the Cancelled answer may come for a call still ahead, and only
   * for one a Cancel was sent for (anything else would be out of order); any other reply but to the
   * running call is a protocol error. The running call it answers is no longer held: the caller
   * settles it, then calls `promoteAhead`.
   */
  match(id: number, cancelled: boolean): ReplyMatch {
    const i = this.#ahead.findIndex((c) => c.id === id);
    if (i >= 0) {
      const ahead = this.#ahead[i]!;
      if (!cancelled || !ahead.cancelRequested) return { kind: 'wrong', problem: `reply to call ${id}, which was sent ahead and has not started` };
      this.#ahead.splice(i, 1); // dropped unrun by the worker, as asked
      return { kind: 'dropped', call: ahead };
    }
    const call = this.#running;
    // Never settle some other call: the worker is treated as broken.
    if (call === undefined || call.id !== id) return { kind: 'wrong', problem: `reply to call ${id}, but ${call ? `call ${call.id}` : 'no call'} is in flight` };
    if (cancelled) return { kind: 'wrong', problem: `call ${id} answered as cancelled, but it was running` };
    this.#running = undefined;
    if (!call.control) this.#finished++;
    return { kind: 'running', call };
  }

  /** The first call ahead started the moment the previous reply was written: it runs now. */
  promoteAhead(): Call | undefined {
    const ahead = this.#ahead.shift();
    if (ahead !== undefined) this.start(ahead);
    return ahead;
  }

  /** Hands over the running call, if any (the worker is killed or gone): this holds it no more. */
  takeRunning(): Call | undefined {
    const call = this.#running;
    this.#running = undefined;
    return call;
  }

  /** Hands over the calls ahead, in order (the worker is gone: they must run elsewhere). */
  takeAhead(): Call[] {
    return this.#ahead.splice(0);
  }

  /** No call runs on the clock any more (the worker is stopping or gone). */
  stopTimer(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  /**
   * A stream's consumer waits for an item (`true`: the running call's timeout starts again from
   * now) or does not (`false`: the timer does not fire). A paused timer may still go off; it is
   * then ignored, and refresh() re-arms it when the wait resumes.
   */
  waitOnWorker(waiting: boolean): void {
    if (!waiting) return void (this.#paused = true);
    this.#paused = false;
    this.#timer?.refresh();
  }

  /**
   * The timer fired; the verdict waits for the loop's next check phase. A host that was busy or
   * descheduled past the timeout runs its due timers before the I/O that arrived meanwhile, so a
   * worker that crashed in time (its EOF and exit status waiting to be read) was reported as timed
   * out (seen in the demo on a loaded machine). The poll phase in between reads that I/O first.
   */
  #timedOut(): void {
    const call = this.#running;
    if (!call || this.#paused) return;
    setImmediate(() => {
      if (this.#running === call && !this.#paused) this.#onTimeout(call);
    });
  }
}

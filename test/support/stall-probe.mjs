// The host's event loop must never stall on what a worker sends: a hostile frame may cost the host
// some work, but not hold its loop (timers, other pools, other workers' replies) for long. This probe
// records the longest delay of the event loop while a describe block's tests run, prints it, and
// fails the block if it reached STALL_LIMIT_MS. It bounds the host's loop, not how fast anything is:
// the hostile inputs of those tests stay within the protocol's caps, where the host's work is small.
import { expect } from 'chai';
import { monitorEventLoopDelay } from 'node:perf_hooks';

export const STALL_LIMIT_MS = 200;

/** Call inside a describe(): probes the event loop from its first test to its last. */
export function probeEventLoopStalls(what) {
  let histogram;
  before(function () {
    histogram = monitorEventLoopDelay({ resolution: 10 });
    histogram.enable();
  });
  after(function () {
    histogram.disable();
    const longestMs = histogram.max / 1e6;
    console.log(`      longest event-loop stall during ${what}: ${longestMs.toFixed(1)} ms (p99 ${(histogram.percentile(99) / 1e6).toFixed(1)} ms, limit ${STALL_LIMIT_MS} ms)`);
    expect(longestMs, `longest event-loop stall during ${what}`).to.be.below(STALL_LIMIT_MS);
  });
}

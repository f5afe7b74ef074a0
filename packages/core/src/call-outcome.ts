/** What the `callSettled` event says of a call that settled. */
import { classCodeOf } from '@process-sandbox/abstractions';
import type { Call } from './call.js';
import type { PoolEvents } from './pool-events.js';

export function callSettledEvent(call: Call, error: Error | undefined): Parameters<PoolEvents['callSettled']>[0] {
  return {
    method: call.method,
    // The class's code, not the instance's: a RemoteError carries the remote error's own code.
    outcome: error === undefined ? 'success' : outcomeOf(error),
    durationMs: performance.now() - call.enqueuedAt,
    queueWaitMs: call.startedAt === undefined ? undefined : call.startedAt - call.enqueuedAt,
  };
}

/**
 * The `outcome` of a failed call: its error class's static code, looked up through the prototype
 * chain (an own `constructor` property cannot shadow it); a short `name` for an error that is not
 * the library's. Never throws, and its values are few (they label metrics).
 */
function outcomeOf(error: Error): string {
  const code = classCodeOf(error);
  if (code !== undefined) return code;
  try {
    const name: unknown = error.name;
    return typeof name === 'string' && name.length <= 64 ? name : 'Error';
  } catch {
    return 'Error';
  }
}

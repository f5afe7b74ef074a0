/** What the `callSettled` event says of a call that settled. */
import { classCodeOf } from '@process-sandbox/abstractions';
import type { Call } from './call.js';
import type { PoolEvents } from './pool-events.js';

export function callSettledEvent(call: Call, error: Error | undefined): Parameters<PoolEvents['callSettled']>[0] {
  const event: Parameters<PoolEvents['callSettled']>[0] = {
    method: call.method,
    // The class's code, not the instance's: a RemoteError carries the remote error's own code.
    outcome: error === undefined ? 'success' : outcomeOf(error),
    durationMs: performance.now() - call.enqueuedAt,
    queueWaitMs: call.startedAt === undefined ? undefined : call.startedAt - call.enqueuedAt,
  };
  // Only a WebAssembly worker reports these (validate.ts checked and bounded them).
  const usage = call.usage;
  if (usage?.fuel !== undefined) event.fuel = usage.fuel;
  if (usage?.hostCalls !== undefined) event.hostCalls = usage.hostCalls;
  if (usage?.hostCallsDropped !== undefined) event.hostCallsDropped = usage.hostCallsDropped;
  return event;
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

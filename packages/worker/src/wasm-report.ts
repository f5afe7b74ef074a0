/**
 * What the worker host learns from a WebAssembly implementation about the call it just served,
 * without loading any of the WebAssembly code: the usage (fuel, host calls) it reports with the
 * reply, and the failure reason of a limit it hit. A JavaScript implementation has neither.
 *
 * Both are looked up in weak collections of our own, never read from the implementation or the
 * thrown value: those may be hostile Proxies whose traps must not run here.
 */
import { FailureReason, type CallUsage } from '@process-sandbox/abstractions';

const usageSources = new WeakMap<object, () => CallUsage | undefined>();
const limitErrors = new WeakSet<object>();

/** Thrown by a WebAssembly call that hit its fuel or memory limit: the reply says which. */
export class WasmLimitError extends Error {
  constructor(
    readonly reason: typeof FailureReason.FuelExhausted | typeof FailureReason.WasmMemoryLimit,
    message: string,
  ) {
    super(message);
    this.name = reason === FailureReason.FuelExhausted ? 'FuelExhaustedError' : 'WasmMemoryLimitError';
    limitErrors.add(this);
  }
}

/** `implementation` reports each call's usage through `take` (which hands it over and forgets it). */
export function reportsUsage(implementation: object, take: () => CallUsage | undefined): void {
  usageSources.set(implementation, take);
}

/** The last call's usage, if the implementation reports any. */
export function takeUsage(implementation: object): CallUsage | undefined {
  return usageSources.get(implementation)?.();
}

/** The reason a thrown value fails its call with: a WebAssembly limit's own, else Thrown. */
export function failureReasonOf(error: unknown): FailureReason {
  return typeof error === 'object' && error !== null && limitErrors.has(error) ? (error as WasmLimitError).reason : FailureReason.Thrown;
}

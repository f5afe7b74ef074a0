/**
 * What the worker host learns from a WebAssembly implementation about the call it just served,
 * without loading any of the WebAssembly code: the usage (fuel, host calls) it reports with the
 * reply, and the failure reason of a limit it hit. A JavaScript implementation has neither.
 */
import { FailureReason, type CallUsage } from '@process-sandbox/abstractions';

/** The implementation's method that hands over (and forgets) the last call's usage. */
export const TAKE_USAGE = Symbol('process-sandbox.takeUsage');

/** Thrown by a WebAssembly call that hit its fuel or memory limit: the reply says which. */
export class WasmLimitError extends Error {
  constructor(
    readonly reason: typeof FailureReason.FuelExhausted | typeof FailureReason.WasmMemoryLimit,
    message: string,
  ) {
    super(message);
    this.name = reason === FailureReason.FuelExhausted ? 'FuelExhaustedError' : 'WasmMemoryLimitError';
  }
}

/** The last call's usage, if the implementation reports any. */
export function takeUsage(implementation: object): CallUsage | undefined {
  const take = (implementation as { [TAKE_USAGE]?: () => CallUsage | undefined })[TAKE_USAGE];
  return typeof take === 'function' ? take.call(implementation) : undefined;
}

/** The reason a thrown value fails its call with: a WebAssembly limit's own, else Thrown. */
export function failureReasonOf(error: unknown): FailureReason {
  return error instanceof WasmLimitError ? error.reason : FailureReason.Thrown;
}

/**
 * A call's Invoke frame. It is encoded when the call is made, so that an argument that cannot cross
 * fails there, before anything is queued or sent, with a SerializationError that names the argument
 * (`add() argument 0: [3][0]`); one over maxMessageBytes (which the worker would refuse) fails as soon
 * as the encoding passes it. Large binary arguments are referenced, not copied: the caller leaves them
 * be until the call settles. Functions among the arguments are callbacks: sent as null, their indices
 * listed (splitCallbacks, call-traffic.ts).
 */
import { describePath, frameMessageShared, MessageKind, type EncodeOptions, type Frame, type PathKey } from '@process-sandbox/abstractions';

const NO_CALLBACKS: number[] = [];

/** The encoding options of a pool's Invoke frames: made once, so that the hot path allocates nothing for them. */
export function invokeEncodeOptions(maxMessageBytes: number): EncodeOptions {
  return { maxBytes: maxMessageBytes, limitName: 'maxMessageBytes', describePath: describeInvokePath };
}

/** `args` as sent (each function already replaced by null), `slots` the indices of the functions, if any. */
export function invokeFrame(id: number, method: string, args: unknown[], session: number, slots: number[] | undefined, options: EncodeOptions): Frame {
  return frameMessageShared([MessageKind.Invoke, id, method, args, session, slots ?? NO_CALLBACKS], options);
}

/** Names a place in an Invoke message for SerializationError: `add() argument 0: [3][0]`, `the call add()`. */
function describeInvokePath(path: readonly PathKey[], message: unknown): string {
  const method = String((message as unknown[])[2]);
  if (path[0] === 3 && typeof path[1] === 'number') return describePath(`${method}() argument ${path[1]}`, path.slice(2));
  return describePath(`the call ${method}()`, path);
}

/**
 * What an implementation gets as the second argument of its constructor or factory: `emit(name,
 * payload)` sends a named event to the host, where the pool emits it as `workerEvent` with this
 * worker's pid. Bounded here, so that an honest implementation never meets the host's own bounds:
 * a name of 1 to MAX_EVENT_NAME_LENGTH characters (else TypeError), a frame of at most
 * MAX_EVENT_BYTES (else SerializationError, as for a payload that cannot cross), and
 * EVENTS_PER_SECOND (a burst of as many, then that rate): beyond it emit() drops the event and
 * returns false.
 */
import { EVENTS_PER_SECOND, frameMessage, MAX_EVENT_BYTES, MAX_EVENT_NAME_LENGTH, MessageKind } from '@process-sandbox/abstractions';

/** Handed to the implementation's constructor or factory, after its options. */
export interface WorkerContext {
  /** Sends a named event to the host; false if dropped for going over EVENTS_PER_SECOND. */
  emit(name: string, payload?: unknown): boolean;
}

export function workerContext(send: (frame: Buffer) => void): WorkerContext {
  let tokens = EVENTS_PER_SECOND;
  let at = performance.now();
  const options = { maxBytes: MAX_EVENT_BYTES, limitName: 'MAX_EVENT_BYTES' };
  return Object.freeze({
    emit(name: string, payload?: unknown): boolean {
      if (typeof name !== 'string' || name.length === 0 || name.length > MAX_EVENT_NAME_LENGTH) {
        throw new TypeError(`emit(): an event name is a string of 1 to ${MAX_EVENT_NAME_LENGTH} characters`);
      }
      const frame = frameMessage([MessageKind.Event, name, payload], options);
      const now = performance.now();
      tokens = Math.min(EVENTS_PER_SECOND, tokens + ((now - at) * EVENTS_PER_SECOND) / 1000);
      at = now;
      if (tokens < 1) return false;
      tokens--;
      send(frame);
      return true;
    },
  });
}

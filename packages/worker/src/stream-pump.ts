/**
 * The worker's side of a stream: a method returned an async iterable (an async generator, a Node
 * Readable, anything with Symbol.asyncIterator), and its items go to the host one frame each,
 * never more than the host granted (STREAM_WINDOW at first, then what StreamCredit adds): a slow
 * consumer on the host stops the producer here, at the `await` for credit, instead of filling
 * the host's memory. StreamCancel (the consumer broke off) returns the iterator, at once if it is
 * waiting for credit, else as soon as its pending next() settles (a Readable's return() destroys
 * it, which ends that next() too).
 */
import { STREAM_WINDOW } from '@process-sandbox/abstractions';

/** How a stream ended: its last item sent, or an error (thrown by the iterator, or an item that cannot be encoded). */
export type StreamOutcome = { ok: true } | { ok: false; error: unknown; unserializable: boolean };

interface Flow {
  credit: number;
  cancelled: boolean;
  /** Wakes the loop waiting for credit. */
  wake: (() => void) | undefined;
  iterator: AsyncIterator<unknown>;
  returned: boolean;
}

export function isAsyncIterable(value: unknown): value is AsyncIterable<unknown> {
  return typeof value === 'object' && value !== null && typeof (value as { [Symbol.asyncIterator]?: unknown })[Symbol.asyncIterator] === 'function';
}

export class StreamPump {
  readonly #flows = new Map<number, Flow>();

  /** StreamCredit from the host. */
  credit(id: number, credit: number): void {
    const flow = this.#flows.get(id);
    if (!flow || !(credit > 0)) return;
    flow.credit += credit;
    flow.wake?.();
  }

  /** StreamCancel from the host. */
  cancel(id: number): void {
    const flow = this.#flows.get(id);
    if (!flow || flow.cancelled) return;
    flow.cancelled = true;
    if (flow.wake) flow.wake();
    else void returnIterator(flow); // it is inside next(): a Readable or a well-behaved iterator ends that now
  }

  /**
   * Sends the items of `iterable` for call `id`, each through `send` (which encodes and writes it,
   * or throws a SerializationError), until it ends, throws or is cancelled.
   */
  async run(id: number, iterable: AsyncIterable<unknown>, send: (item: unknown) => void): Promise<StreamOutcome> {
    let flow: Flow;
    try {
      flow = { credit: STREAM_WINDOW, cancelled: false, wake: undefined, iterator: iterable[Symbol.asyncIterator](), returned: false };
    } catch (error) {
      return { ok: false, error, unserializable: false };
    }
    this.#flows.set(id, flow);
    try {
      for (;;) {
        while (flow.credit === 0 && !flow.cancelled) await new Promise<void>((resolve) => (flow.wake = resolve));
        flow.wake = undefined;
        if (flow.cancelled) break;
        const step = await flow.iterator.next();
        if (step.done || flow.cancelled) break;
        try {
          send(step.value);
        } catch (error) {
          await returnIterator(flow);
          return { ok: false, error, unserializable: true };
        }
        flow.credit--;
      }
      await returnIterator(flow);
      return { ok: true };
    } catch (error) {
      return { ok: false, error, unserializable: false };
    } finally {
      this.#flows.delete(id);
    }
  }
}

/** return() once, if the iterator has one and is not done; what it throws is the stream's error only if it was not cancelled. */
async function returnIterator(flow: Flow): Promise<void> {
  if (flow.returned) return;
  flow.returned = true;
  if (typeof flow.iterator.return === 'function') await flow.iterator.return();
}

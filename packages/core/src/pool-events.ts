/**
 * The pool's typed events, and an emitter whose listeners cannot hurt it: a listener that throws
 * (or an async one that rejects) is logged and the remaining listeners still run. Every event of the
 * pool goes through this emit, including those emitted from inside a worker's state transitions,
 * which run on the worker's receive path.
 *
 * The typing is our own few lines rather than a types-only package (typed-emitter pulled rxjs into
 * every consumer, and its namespace-style declarations broke `moduleResolution: bundler`/`node10`)
 * or @types/node's generic EventEmitter (absent from the @types/node versions consumers may have).
 */
import { EventEmitter } from 'node:events';
import type { HealthSnapshot, HostCallRecord } from '@process-sandbox/abstractions';
import type { Logger } from './logger.js';
import type { LimitWarning, RecycleReason } from './recycle-policy.js';

export interface WorkerExit {
  pid: number;
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  /** Why it left: 'dispose', 'timeout', 'crash', 'start-failed', a recycle reason, … */
  reason: string;
}

export type PoolEvents = {
  workerStarted: (e: { pid: number }) => void;
  workerReady: (e: { pid: number; methods: readonly string[] }) => void;
  workerExited: (e: WorkerExit) => void;
  workerCrashed: (e: WorkerExit & { method: string | undefined; detail: string | undefined }) => void;
  callTimedOut: (e: { pid: number; method: string; timeoutMs: number }) => void;
  workerRecycled: (e: { pid: number; reason: RecycleReason }) => void;
  /** A worker passed 80 % of a limit (once per worker and limit). */
  resourceWarning: (e: { pid: number } & LimitWarning) => void;
  /** What a worker reported about itself (with each reply, and on its own while idle). */
  health: (e: { pid: number; health: HealthSnapshot }) => void;
  queueFull: (e: { method: string; maxQueueSize: number }) => void;
  /**
   * Every accepted call, once, when it settles. `outcome` is 'success' or the error class's `code`
   * (e.g. 'ERR_PS_REMOTE', 'ERR_PS_WORKER_CRASHED');
   * `queueWaitMs` is undefined for a call that never reached a worker. A WebAssembly worker adds
   * `fuel` (consumed, with `wasm.fuelPerCall`) and `hostCalls` (the audit of its host function calls,
   * with `wasm.auditHostCalls`; `hostCallsDropped` counts those past the record limit).
   */
  callSettled: (e: {
    method: string;
    outcome: string;
    durationMs: number;
    queueWaitMs: number | undefined;
    fuel?: number;
    hostCalls?: HostCallRecord[];
    hostCallsDropped?: number;
  }) => void;
  /**
   * A named event the implementation emitted with its `emit(name, payload)` (the second argument of
   * its constructor or factory). At most 2 × EVENTS_PER_SECOND a second per worker are delivered.
   */
  workerEvent: (e: { pid: number; name: string; payload: unknown }) => void;
  disposed: () => void;
};

/**
 * The `this` each emitter's listeners see, when it is not the emitter: the pool's listeners see its
 * public handle (pool-handle.ts), never the pool.
 */
const faces = new WeakMap<object, object>();

/** From now on, `emitter`'s listeners run with `face` as their `this`. */
export function presentListenersAs(emitter: SafeEmitter<EventMap>, face: object): void {
  faces.set(emitter, face);
}

/** Event names to listener signatures. */
export type EventMap = { [event: string]: (...args: any[]) => void }; // eslint-disable-line @typescript-eslint/no-explicit-any -- listeners' parameters are each event's own

/**
 * EventEmitter's listener methods, typed by an event map. Declared over the class below (interface
 * merging): types only, nothing runs in between.
 */
export interface SafeEmitter<Events extends EventMap> {
  on<E extends keyof Events & string>(event: E, listener: Events[E]): this;
  once<E extends keyof Events & string>(event: E, listener: Events[E]): this;
  off<E extends keyof Events & string>(event: E, listener: Events[E]): this;
  addListener<E extends keyof Events & string>(event: E, listener: Events[E]): this;
  prependListener<E extends keyof Events & string>(event: E, listener: Events[E]): this;
  prependOnceListener<E extends keyof Events & string>(event: E, listener: Events[E]): this;
  removeListener<E extends keyof Events & string>(event: E, listener: Events[E]): this;
  removeAllListeners(event?: keyof Events & string): this;
  listeners<E extends keyof Events & string>(event: E): Events[E][];
  rawListeners<E extends keyof Events & string>(event: E): Events[E][];
  listenerCount(event: keyof Events & string): number;
  eventNames(): (keyof Events & string)[];
}

// eslint-disable-next-line @typescript-eslint/no-unsafe-declaration-merging -- the interface above only narrows EventEmitter's own methods
export class SafeEmitter<Events extends EventMap> extends EventEmitter {
  #logger: Logger;
  constructor(logger: Logger) {
    super();
    this.#logger = logger;
  }

  override emit<E extends keyof Events & string>(event: E, ...args: Parameters<Events[E]>): boolean {
    // rawListeners: `once` wrappers must run so that they remove themselves.
    const listeners = this.rawListeners(event) as unknown as ((...a: unknown[]) => unknown)[];
    const self = faces.get(this) ?? this;
    const failed = (error: unknown): void => {
      this.#logger.error({ event: String(event), error }, `process-sandbox: a '${String(event)}' listener threw; the pool carries on`);
    };
    for (const listener of listeners) {
      try {
        const result = listener.apply(self, args);
        // An async listener that rejects would be an unhandled rejection, which ends the host.
        if (result instanceof Promise) result.catch(failed);
      } catch (error) {
        failed(error);
      }
    }
    return listeners.length > 0;
  }
}

/**
 * What user code gets of a pool (`ProcessProxy.poolOf()`): its stats, its events, reload and
 * dispose. The pool itself also serves the dispatcher, the leases and the workers (hand out an idle
 * worker, demand workers, release, forget …); those methods keep its bookkeeping consistent only
 * when called by them, so they are out of reach here: the handle is a frozen object of closures over
 * the pool, which it never exposes (not as a property, not as the `this` of an event listener).
 */
import type { ReloadOptions } from './options.js';
import { presentListenersAs, type PoolEvents } from './pool-events.js';
import type { DisposeOptions, PoolStats, ProcessPool } from './pool.js';

/** The pool behind a proxy, as `ProcessProxy.poolOf()` returns it. */
export interface PoolHandle extends AsyncDisposable {
  /** A snapshot of the workers, the call totals, open leases and the circuit breaker. */
  stats(): PoolStats;
  /** Pids of the worker processes that have not exited yet. */
  livePids(): number[];
  /** The methods the workers serve (a copy), or undefined before the first worker was ready. */
  readonly methods: ReadonlySet<string> | undefined;
  /** True once `dispose()` was called (by anyone: the proxy, `disposeAll()`, the handle). */
  readonly disposed: boolean;
  /** Adds a listener; the listener's `this` is this handle. */
  on<E extends keyof PoolEvents>(event: E, listener: PoolEvents[E]): PoolHandle;
  /** Adds a listener that runs once, then is removed. */
  once<E extends keyof PoolEvents>(event: E, listener: PoolEvents[E]): PoolHandle;
  /** Removes a listener added with `on` or `once`. */
  off<E extends keyof PoolEvents>(event: E, listener: PoolEvents[E]): PoolHandle;
  /** How many listeners `event` has (the library's own metrics listeners included). */
  listenerCount(event: keyof PoolEvents): number;
  /**
   * Rolls every worker onto new code (or options): successors start first, then the old workers
   * leave as soon as they are idle. No call fails; calls made after this resolves run on the new code.
   * If a successor cannot start, the old workers stay and this rejects with its WorkerStartError.
   */
  reload(changes?: ReloadOptions): Promise<void>;
  /**
   * Stops the pool. Queued calls reject with PoolDisposedError (or run first, with `drain`);
   * calls in flight get `shutdownGraceMs` to finish; then every worker is killed. Resolves once
   * every worker process has exited. Idempotent.
   */
  dispose(options?: DisposeOptions): Promise<void>;
}

type Listener = (...args: never[]) => void;

/** The handle of `pool`. Make one per pool: listeners see it as their `this`. */
export function poolHandle(pool: ProcessPool): PoolHandle {
  // The pool replaces its set of methods (first ready worker, reload) and never changes one in
  // place: a copy per set keeps `methods` stable between reads and the pool's own set untouched.
  let methodsOf: ReadonlySet<string> | undefined;
  let methods: ReadonlySet<string> | undefined;
  const handle: PoolHandle = Object.freeze({
    stats: () => pool.stats(),
    livePids: () => pool.livePids(),
    get methods() {
      if (pool.methods !== methodsOf) {
        methodsOf = pool.methods;
        methods = methodsOf && new Set(methodsOf);
      }
      return methods;
    },
    get disposed() {
      return pool.disposed;
    },
    on(event: keyof PoolEvents, listener: Listener) {
      pool.on(event, listener as PoolEvents[typeof event]);
      return handle;
    },
    once(event: keyof PoolEvents, listener: Listener) {
      // Not the pool's `once`: EventEmitter would call the listener with the pool as `this`. The
      // `listener` property lets EventEmitter's `off` and `listenerCount` find it (as for its own).
      const wrapper = Object.assign(function (this: unknown, ...args: never[]) {
        pool.off(event, wrapper as PoolEvents[typeof event]);
        (listener as (...a: never[]) => void).apply(handle, args);
      }, { listener });
      pool.on(event, wrapper as PoolEvents[typeof event]);
      return handle;
    },
    off(event: keyof PoolEvents, listener: Listener) {
      pool.off(event, listener as PoolEvents[typeof event]);
      return handle;
    },
    listenerCount: (event: keyof PoolEvents) => pool.listenerCount(event),
    reload: (changes?: ReloadOptions) => pool.reload(changes),
    dispose: (options?: DisposeOptions) => pool.dispose(options),
    [Symbol.asyncDispose]: () => pool.dispose(),
    [Symbol.toStringTag]: 'PoolHandle',
  }) as PoolHandle;
  presentListenersAs(pool, handle);
  return handle;
}

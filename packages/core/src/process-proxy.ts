/**
 * The face of the library: `ProcessProxy.create<T>()` returns an object that looks like T, whose
 * every method runs in a worker process and returns a promise.
 *
 * The proxy is an ES Proxy over nothing: any string property is a remote method, except the few
 * names that JavaScript machinery probes (`then`, so that `await proxy` does not hang; `toJSON`;
 * inspection hooks) and every symbol, which are never sent to a worker. util.inspect formats a
 * Proxy's target without running its traps: the target carries the proxy's self-description.
 */
import { inspect, type InspectOptionsStylized } from 'node:util';
import { ConfigurationError } from '@process-sandbox/abstractions';
import type { CallOptions } from './call.js';
import type { RemoteStream } from './remote-stream.js';
import { resolveOptions, type ProcessProxyOptions } from './options.js';
import { ProcessPool, type LeaseOptions } from './pool.js';
import { poolHandle, type PoolHandle } from './pool-handle.js';
import { guardedPools } from './host-exit.js';
import { instrumentPool, loadMetricsApi } from './metrics.js';

/**
 * T with every method returning a promise of its (awaited) result; non-method members dropped, and
 * `then` too (the proxy is never a thenable).
 *
 * A method that already returns a promise keeps its signature whole: type parameters and every
 * overload. A synchronous one is rewritten, and there TypeScript loses its type parameters (they
 * become their constraints, `unknown` by default) and sees at most four overloads (the last four
 * declared). To keep a generic method generic, declare it `async` (returning a Promise) in the
 * interface you give `create<T>()`.
 *
 * A method that returns an async iterable (an async generator, a Readable, or a promise of one)
 * gives a promise of a RemoteStream of its items: `for await (const row of await proxy.rows())`.
 * A function parameter stays a function, which may also answer with a promise (the worker awaits
 * it): `process(file: string, onProgress: (pct: number) => void): AsyncIterable<Row>` keeps its shape.
 */
export type Remote<T> = {
  [K in keyof T as K extends 'then' ? never : T[K] extends (...args: never[]) => unknown ? K : never]: RemoteMethod<T[K]>;
} & AsyncDisposable;

/** One method as the proxy has it (see Remote). */
export type RemoteMethod<F> = F extends (...args: infer A) => infer R
  ? [StreamItemOf<Awaited<R>>] extends [never]
    ? F extends (...args: never[]) => PromiseLike<unknown>
      ? F
      : PromisedOverloads<F>
    : (...args: RemoteArgs<A>) => Promise<RemoteStream<StreamItemOf<Awaited<R>>>>
  : never;

/** The item type of an async iterable result; never for anything else (and for `any`). */
export type StreamItemOf<R> = 0 extends 1 & R ? never : R extends AsyncIterable<infer Item> ? Item : never;

/** The parameters of a remote method: a callback may answer with a promise of what it returns. */
export type RemoteArgs<A extends readonly unknown[]> = { [I in keyof A]: RemoteArg<A[I]> };

/** A callback parameter, as the caller may pass it; any other parameter as it is. */
export type RemoteArg<P> = P extends (...args: infer CallbackArgs) => infer CallbackResult ? (...args: CallbackArgs) => CallbackResult | PromiseLike<Awaited<CallbackResult>> : P;

/**
 * Up to four overloads of F, each returning a promise. A function with fewer overloads matches the
 * pattern with some repeated, which an intersection of signatures shrugs off.
 */
export type PromisedOverloads<F> = F extends {
  (...args: infer A1): infer R1;
  (...args: infer A2): infer R2;
  (...args: infer A3): infer R3;
  (...args: infer A4): infer R4;
}
  ? ((...args: RemoteArgs<A1>) => Promise<Awaited<R1>>) & ((...args: RemoteArgs<A2>) => Promise<Awaited<R2>>) & ((...args: RemoteArgs<A3>) => Promise<Awaited<R3>>) & ((...args: RemoteArgs<A4>) => Promise<Awaited<R4>>)
  : never;

/** Only the methods of T, without disposal: what `ProcessProxy.with()` returns. */
export type RemoteMethods<T> = Omit<Remote<T>, typeof Symbol.asyncDispose>;

/**
 * Names that libraries probe on any object; answering them with a remote method would mislead them.
 * They are remote methods only when the worker serves a method of that name, except `then`: a
 * proxy that were a thenable would be awaited into a call.
 */
const NOT_METHODS = new Set(['then', 'catch', 'finally', 'toJSON', 'inspect', 'constructor', 'asymmetricMatch', 'nodeType', '$$typeof', '@@__IMMUTABLE_ITERABLE__@@', '@@__IMMUTABLE_RECORD__@@', 'toString', 'valueOf']);
const NEVER_METHODS = new Set(['then']);

type Invoke = (method: string, args: unknown[], options: CallOptions | undefined) => Promise<unknown>;

/** What stands behind each proxy: its pool (and the pool's public handle), how it calls, and the per-call options of a view. */
interface Target {
  pool: ProcessPool;
  handle: PoolHandle;
  invoke: Invoke;
  options: CallOptions | undefined;
}

const targets = new WeakMap<object, Target>();

export class ProcessProxy {
  private constructor() {}

  /** Starts the pool and resolves once `minPoolSize` workers are ready. */
  static async create<T>(options: ProcessProxyOptions): Promise<Remote<T>> {
    const resolved = resolveOptions(options);
    const otel = await loadMetricsApi(resolved.metrics); // before the pool: a ConfigurationError leaves nothing to clean up
    const pool = new ProcessPool(resolved);
    instrumentPool(pool, otel);
    await pool.start();
    return remote<Remote<T>>({ pool, handle: poolHandle(pool), invoke: (m, a, o) => pool.invoke(m, a, o), options: undefined }, () => pool.dispose(), 'proxy');
  }

  /**
   * The pool behind a proxy (or a view or lease of one): stats(), events, reload(), dispose(). The
   * same handle for every proxy, view and lease of one pool.
   */
  static poolOf(proxy: object): PoolHandle {
    return targetOf(proxy, 'poolOf').handle;
  }

  /**
   * A view of `proxy` whose calls carry these options (signal, timeoutMs, priority, onAbortRunning).
   * Views compose: options of an outer `with` override those of an inner one. A view does not own
   * the pool: disposing is done on the proxy itself.
   */
  static with<P extends object>(proxy: P, options: CallOptions): RemoteMethods<P> {
    const target = targetOf(proxy, 'with');
    const merged = { ...target.options, ...validateCallOptions(options) };
    return remote<RemoteMethods<P>>({ ...target, options: merged }, undefined, 'view');
  }

  /**
   * A proxy pinned to one worker until disposed (`await using lease = await ProcessProxy.lease(proxy)`).
   * By default the worker builds a fresh implementation instance for it and disposes it at the end.
   */
  static async lease<P extends object>(proxy: P, options?: LeaseOptions): Promise<P> {
    const { pool, handle } = targetOf(proxy, 'lease');
    const lease = await pool.lease(options);
    return remote<P>({ pool, handle, invoke: (m, a, o) => lease.invoke(m, a, o), options: undefined }, () => lease.end(), 'lease');
  }

  /** Runs `fn` with a proxy pinned to one worker, and ends the lease when `fn` settles. */
  static async session<P extends object, R>(proxy: P, fn: (session: P) => Promise<R> | R, options?: LeaseOptions): Promise<R> {
    const leased = await ProcessProxy.lease(proxy, options);
    try {
      return await fn(leased);
    } finally {
      await (leased as unknown as AsyncDisposable)[Symbol.asyncDispose]();
    }
  }

  /** Disposes every pool in this process. */
  static async disposeAll(): Promise<void> {
    await Promise.all(guardedPools().map((p) => (p as ProcessPool).dispose()));
  }
}

function targetOf(proxy: object, caller: string): Target {
  const target = typeof proxy === 'object' && proxy !== null ? targets.get(proxy) : undefined;
  if (!target) throw new TypeError(`ProcessProxy.${caller}() expects a proxy returned by ProcessProxy.create() (or a view or lease of one)`);
  return target;
}

function validateCallOptions(options: CallOptions): CallOptions {
  if (typeof options !== 'object' || options === null) throw new ConfigurationError('with', 'expected an object of call options');
  for (const key of Object.keys(options)) {
    if (!['signal', 'timeoutMs', 'priority', 'onAbortRunning'].includes(key)) throw new ConfigurationError(key, 'unknown call option; known are signal, timeoutMs, priority, onAbortRunning');
  }
  const { signal, timeoutMs, priority, onAbortRunning } = options;
  if (signal !== undefined && !(signal instanceof AbortSignal)) throw new ConfigurationError('signal', 'expected an AbortSignal');
  if (timeoutMs !== undefined && (!Number.isInteger(timeoutMs) || timeoutMs < 1 || timeoutMs > 2 ** 31 - 1)) throw new ConfigurationError('timeoutMs', `must be a whole number of ms from 1, got ${String(timeoutMs)}`);
  if (priority !== undefined && !Number.isFinite(priority)) throw new ConfigurationError('priority', `expected a finite number, got ${String(priority)}`);
  if (onAbortRunning !== undefined && onAbortRunning !== 'kill' && onAbortRunning !== 'detach') throw new ConfigurationError('onAbortRunning', `expected 'kill' or 'detach', got ${String(onAbortRunning)}`);
  return options;
}

type Kind = 'proxy' | 'view' | 'lease';

/**
 * What a proxy says about itself: to util.inspect (which reads the custom hook from the Proxy's
 * target, without running a trap), to String() and template literals (Symbol.toPrimitive), and to
 * Object.prototype.toString (Symbol.toStringTag). Answered here, never by a worker.
 */
function selfDescription(pool: ProcessPool, kind: Kind): object {
  const { workerModule, workerExport, maxPoolSize } = pool.options;
  const title = kind === 'proxy' ? 'ProcessProxy' : `ProcessProxy ${kind}`;
  const summary = () => {
    const { workers, circuit } = pool.stats();
    const live = workers.filter((w) => w.state !== 'exited' && w.state !== 'crashed');
    return {
      module: workerModule,
      export: workerExport,
      workers: live.length,
      busy: live.filter((w) => w.state === 'busy').length,
      maxPoolSize,
      state: pool.disposed ? 'disposed' : circuit === 'closed' ? 'open' : `circuit ${circuit}`,
    };
  };
  const described = Object.create(null) as Record<PropertyKey, unknown>;
  const hidden = (value: unknown) => ({ value, configurable: true, enumerable: false, writable: false });
  Object.defineProperties(described, {
    [Symbol.toStringTag]: hidden('ProcessProxy'),
    [Symbol.toPrimitive]: hidden(() => `[${title} ${workerExport} of ${workerModule}]`),
    [inspect.custom]: hidden((_depth: number, options: InspectOptionsStylized, inspectValue: typeof inspect) => `${options.stylize(title, 'special')} ${inspectValue(summary(), options)}`),
  });
  return described;
}

/** The ES Proxy itself: every string property is a remote method of `target`. */
function remote<R>(target: Target, dispose: (() => Promise<void>) | undefined, kind: Kind): R {
  const { pool, invoke, options } = target;
  const methods = new Map<string, (...args: unknown[]) => Promise<unknown>>();
  const described = selfDescription(pool, kind);
  const proxy = new Proxy(described, {
    get(self, property) {
      if (typeof property === 'symbol') return property === Symbol.asyncDispose ? dispose : self[property as keyof typeof self];
      if (NEVER_METHODS.has(property) || (NOT_METHODS.has(property) && !pool.methods?.has(property))) return undefined;
      let method = methods.get(property);
      if (!method) {
        method = (...args: unknown[]) => invoke(property, args, options);
        methods.set(property, method);
      }
      return method;
    },
    has(_target, property) {
      return typeof property === 'string' && !NEVER_METHODS.has(property) && (pool.methods?.has(property) ?? false);
    },
    ownKeys() {
      return [];
    },
    set() {
      return false;
    },
    defineProperty() {
      return false;
    },
  });
  targets.set(proxy, target);
  return proxy as R;
}

/**
 * The face of the library: `ProcessProxy.create<T>()` returns an object that looks like T, whose
 * every method runs in a worker process and returns a promise.
 *
 * The proxy is an ES Proxy over nothing: any string property is a remote method, except the few
 * names that JavaScript machinery probes (`then`, so that `await proxy` does not hang; `toJSON`;
 * inspection hooks) and every symbol, which are never sent to a worker. (util.inspect formats a
 * Proxy's target without running its traps, so inspecting a proxy never calls a worker either.)
 */
import { resolveOptions, type ProcessProxyOptions } from './options.js';
import { ProcessPool } from './pool.js';
import { guardedPools } from './host-exit.js';

/** T with every method returning a promise of its (awaited) result; non-method members dropped. */
export type Remote<T> = {
  [K in keyof T as T[K] extends (...args: never[]) => unknown ? K : never]: T[K] extends (...args: infer A) => infer R
    ? (...args: A) => Promise<Awaited<R>>
    : never;
} & AsyncDisposable;

/** Names that libraries probe on any object; answering them with a remote method would mislead them. */
const NOT_METHODS = new Set(['then', 'catch', 'finally', 'toJSON', 'inspect', 'constructor', 'asymmetricMatch', 'nodeType', '$$typeof', '@@__IMMUTABLE_ITERABLE__@@', '@@__IMMUTABLE_RECORD__@@', 'toString', 'valueOf']);

const pools = new WeakMap<object, ProcessPool>();

export class ProcessProxy {
  private constructor() {}

  /** Starts the pool and resolves once `minPoolSize` workers are ready. */
  static async create<T>(options: ProcessProxyOptions): Promise<Remote<T>> {
    const pool = new ProcessPool(resolveOptions(options));
    await pool.start();
    return proxyFor<T>(pool);
  }

  /** The pool behind a proxy: stats(), events, dispose(). */
  static poolOf(proxy: object): ProcessPool {
    const pool = pools.get(proxy);
    if (!pool) throw new TypeError('ProcessProxy.poolOf() expects a proxy returned by ProcessProxy.create()');
    return pool;
  }

  /** Disposes every pool in this process. */
  static async disposeAll(): Promise<void> {
    await Promise.all(guardedPools().map((p) => (p as ProcessPool).dispose()));
  }
}

function proxyFor<T>(pool: ProcessPool): Remote<T> {
  const methods = new Map<string, (...args: unknown[]) => Promise<unknown>>();
  const dispose = (): Promise<void> => pool.dispose();
  const proxy = new Proxy(Object.create(null) as object, {
    get(_target, property) {
      if (typeof property === 'symbol') {
        if (property === Symbol.asyncDispose) return dispose;
        return undefined;
      }
      if (NOT_METHODS.has(property) && !pool.methods?.has(property)) return undefined;
      let method = methods.get(property);
      if (!method) {
        method = (...args: unknown[]) => pool.invoke(property, args);
        methods.set(property, method);
      }
      return method;
    },
    has(_target, property) {
      return typeof property === 'string' && (pool.methods?.has(property) ?? false);
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
  pools.set(proxy, pool);
  return proxy as Remote<T>;
}

/**
 * Turns (module, export, options) into the object whose methods the worker serves.
 *
 * A class is instantiated with `new`, a plain object is used as is, any other function is a
 * factory called once; a factory that returns a Promise (an async function) is awaited. Every
 * failure is a StartupFailure whose message says what to fix; the worker reports it to the host as
 * a start failure.
 *
 * An implementation is never awaited itself: an instance or object with a `then()` method is a
 * perfectly good implementation (a query builder, a lazy client), and awaiting it would call its
 * then(), which need not settle anything. So instances travel boxed (`{ instance }`) through
 * promises, and only a real Promise returned by a factory is awaited. (A Promise that resolves to
 * an object with then() has already adopted it by the time we see it: JavaScript gives no way to
 * tell; such a factory must return its object synchronously.)
 */
import { isAbsolute } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { types } from 'node:util';
import type { WorkerSettings } from '@process-sandbox/abstractions';
import { StartupFailure } from './startup-failure.js';

export { StartupFailure };

export type Implementation = Record<string, unknown>;

/** Builds implementation instances: the first at start-up, then one per session that asks for a fresh one. */
export interface ImplementationSource {
  /** A new instance (a class is instantiated again, a factory called again; a plain object is itself), boxed: see above. */
  create(): Promise<{ instance: Implementation }>;
}

/**
 * True when `error` says that the module at `url` itself does not exist (not one it imports).
 * Compared as URLs, or else as the platform's own path (Node's message names `C:\\...` on
 * Windows), never by assuming POSIX slashes.
 */
function isMissing(error: unknown, url: string): boolean {
  const { code, url: missing } = error as { code?: string; url?: unknown };
  if (code !== 'ERR_MODULE_NOT_FOUND') return false;
  if (typeof missing === 'string') return sameUrl(missing, url);
  let path: string;
  try {
    path = fileURLToPath(url);
  } catch {
    return false;
  }
  return String((error as Error).message).includes(`'${path}'`);
}

function sameUrl(a: string, b: string): boolean {
  try {
    return new URL(a).href === new URL(b).href;
  } catch {
    return false;
  }
}

/** What of the host's settings shapes loading: the integrity pin, and a WebAssembly module's options. */
export type LoadSettings = Pick<WorkerSettings, 'integrity' | 'wasm'>;

export async function loadImplementation(workerModule: string, workerExport: string, options: unknown, context?: object, settings: LoadSettings = {}): Promise<{ implementation: Implementation; source: ImplementationSource }> {
  const url = workerModule.startsWith('file:') ? workerModule : isAbsolute(workerModule) ? pathToFileURL(workerModule).href : undefined;
  if (url === undefined) throw new StartupFailure(`workerModule must be an absolute path or a file: URL, got '${workerModule}'`);
  // A WebAssembly module is served by its own loader (wasm-implementation.ts), loaded only when one is asked for.
  if (/\.wasm$/i.test(new URL(url).pathname)) {
    const { loadWasmImplementation } = await import('./wasm-implementation.js');
    return loadWasmImplementation(fileURLToPath(url), settings);
  }
  // Loaded only when asked for (node:crypto): a worker without a pin starts as fast as before.
  if (settings.integrity !== undefined) await (await import('./integrity.js')).readPinned(fileURLToPath(url), settings.integrity);

  let namespace: Record<string, unknown>;
  try {
    namespace = (await import(url)) as Record<string, unknown>;
  } catch (error) {
    if (isMissing(error, url)) {
      throw new StartupFailure(`workerModule not found: ${workerModule}`, { cause: error });
    }
    throw new StartupFailure(`loading ${workerModule} threw: ${describe(error)}`, { cause: error });
  }

  // A CommonJS module's exports arrive as `default`; its named exports may or may not be detected.
  const cjs = namespace.default as Record<string, unknown> | undefined;
  const exported = workerExport in namespace ? namespace[workerExport] : typeof cjs === 'object' || typeof cjs === 'function' ? cjs?.[workerExport] : undefined;
  if (exported === undefined || exported === null) {
    const names = Object.keys(namespace).concat(cjs && typeof cjs === 'object' ? Object.keys(cjs) : []);
    throw new StartupFailure(`${workerModule} has no export '${workerExport}'; it exports: ${[...new Set(names)].join(', ') || '(nothing)'}`);
  }

  let source: ImplementationSource;
  if (typeof exported === 'function') {
    const fn = exported as (...args: unknown[]) => unknown;
    const asClass = isClass(fn);
    source = {
      async create() {
        let instance: unknown;
        try {
          // The context (emit) comes second, after the options the pool was given.
          instance = asClass ? new (fn as unknown as new (o: unknown, c: unknown) => unknown)(options, context) : fn(options, context);
          // Only a real Promise is awaited: an object that merely has then() is the implementation.
          if (!asClass && types.isPromise(instance)) instance = await instance;
        } catch (error) {
          const what = asClass ? `the constructor of '${workerExport}'` : `the factory '${workerExport}'`;
          throw new StartupFailure(`${what} threw: ${describe(error)}`, { cause: error });
        }
        if (typeof instance !== 'object' || instance === null) {
          throw new StartupFailure(`the factory '${workerExport}' returned ${instance === null ? 'null' : typeof instance}; it must return an object with methods`);
        }
        return { instance: instance as Implementation };
      },
    };
  } else if (typeof exported === 'object') {
    source = { create: async () => ({ instance: exported as Implementation }) };
  } else {
    throw new StartupFailure(`export '${workerExport}' is a ${typeof exported}; expected a class, an object or a factory function`);
  }
  const { instance: implementation } = await source.create();
  if (methodNames(implementation).length === 0) {
    throw new StartupFailure(`export '${workerExport}' has no methods to call`);
  }
  return { implementation, source };
}

/** Calls an instance's dispose(), Symbol.asyncDispose or Symbol.dispose, whichever it has. */
export async function disposeImplementation(instance: Implementation): Promise<void> {
  const i = instance as { dispose?: () => unknown; [Symbol.asyncDispose]?: () => unknown; [Symbol.dispose]?: () => unknown };
  const dispose = i[Symbol.asyncDispose] ?? i[Symbol.dispose] ?? i.dispose;
  if (typeof dispose === 'function') await dispose.call(instance);
}

/**
 * Own and inherited method names, without `constructor`, without Object.prototype's, and without
 * `then`: a proxy with a then() would be a thenable, and `await`ing it (or returning it from an
 * async function) would call the worker instead of resolving to the proxy.
 */
export function methodNames(instance: object): string[] {
  const names = new Set<string>();
  for (let o: object | null = instance; o !== null && o !== Object.prototype; o = Object.getPrototypeOf(o)) {
    for (const name of Object.getOwnPropertyNames(o)) {
      if (name === 'constructor' || name === 'then') continue;
      const descriptor = Object.getOwnPropertyDescriptor(o, name);
      // Accessors are not methods, and reading them could run user code.
      if (descriptor && 'value' in descriptor && typeof descriptor.value === 'function') names.add(name);
    }
  }
  return [...names];
}

function isClass(fn: Function): boolean {
  if (/^class[\s{]/.test(Function.prototype.toString.call(fn))) return true;
  // An ES5 constructor function: its prototype carries methods.
  const proto = (fn as { prototype?: object }).prototype;
  return proto !== undefined && Object.getOwnPropertyNames(proto).some((n) => n !== 'constructor');
}

function describe(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
}

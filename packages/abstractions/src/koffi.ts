/**
 * The one loader of koffi, an optional dependency of core (Windows job objects and counters) and of
 * the worker (libc calls of its guards). Loaded at the first call, never at import: most hosts and
 * workers never need it, and it may be absent or unable to load on this platform.
 *
 * It is resolved from `from`, the caller's own module URL: the package that declares koffi as its
 * optional dependency, so that strict layouts (pnpm) find it; this package does not depend on it.
 */
import { createRequire } from 'node:module';

const loaded = new Map<string, unknown>();

/** koffi as resolved from `from` (pass `import.meta.url`), or undefined when it cannot be loaded. Tried once per `from`. */
export function loadKoffi<T>(from: string): T | undefined {
  if (!loaded.has(from)) {
    let koffi: unknown = undefined;
    try {
      koffi = createRequire(from)('koffi');
    } catch {
      // Not installed, or no build of it for this platform: the callers fall back.
    }
    loaded.set(from, koffi);
  }
  return loaded.get(from) as T | undefined;
}

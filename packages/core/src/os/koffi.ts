/** koffi, an optional dependency: undefined when it is not installed or cannot load here. */
import { createRequire } from 'node:module';

let cached: unknown | null | undefined;

export function loadKoffi<T>(): T | undefined {
  if (cached === undefined) {
    try {
      cached = createRequire(import.meta.url)('koffi');
    } catch {
      cached = null;
    }
  }
  return (cached ?? undefined) as T | undefined;
}

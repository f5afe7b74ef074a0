/**
 * The one loader of koffi, an optional dependency of core (Windows job objects and counters) and of
 * the worker (libc calls of its guards). Loaded at the first call, never at import: most hosts and
 * workers never need it, and it may be absent or unable to load on this platform.
 *
 * It is resolved from `from`, the caller's own module URL: the package that declares koffi as its
 * optional dependency, so that strict layouts (pnpm) find it; this package does not depend on it.
 */
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

const loaded = new Map<string, unknown>();

/** koffi as resolved from `from` (pass `import.meta.url`), or undefined when it cannot be loaded. Tried once per `from`. */
export function loadKoffi<T>(from: string): T | undefined {
  if (!loaded.has(from)) {
    let koffi: unknown = undefined;
    try {
      koffi = koffiBinary(from) ?? createRequire(from)('koffi');
    } catch {
      // Not installed, or no build of it for this platform: the callers fall back.
    }
    loaded.set(from, koffi);
  }
  return loaded.get(from) as T | undefined;
}

/**
 * koffi's binary without koffi's JavaScript loader, on glibc Linux: the loader (its index.cjs) costs
 * twice the binary's own dlopen (it reads the ELF header of Node's executable to tell glibc from
 * musl, resolves its packages, wraps the module in deprecation shims): 3-15 ms on every worker's
 * start, on its critical path (docs/benchmarks.md, "Worker start"). koffi 3 ships the binary as a
 * dependency of its own, @koromix/koffi-linux-<arch>, in linux_<arch>/koffi.node: the same module,
 * loaded only if that package's version is the installed koffi's. Anything else (another layout,
 * musl, another system or architecture, any failure) returns undefined, and koffi's loader does it.
 */
function koffiBinary(from: string): unknown {
  // Where a musl loader would be, by machine name; other architectures go through koffi's loader.
  const machine = ({ x64: 'x86_64', arm64: 'aarch64' } as Record<string, string | undefined>)[process.arch];
  if (process.platform !== 'linux' || machine === undefined) return undefined;
  try {
    // (Inside the try: under Node's permission model a read may throw.)
    if (existsSync(`/lib/ld-musl-${machine}.so.1`)) return undefined;
    const koffiDir = dirname(createRequire(from).resolve('koffi'));
    const versionOf = (dir: string): unknown => (JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { version?: unknown }).version;
    const binaries = dirname(createRequire(join(koffiDir, 'index.cjs')).resolve(`@koromix/koffi-linux-${process.arch}/package.json`));
    const version = versionOf(koffiDir);
    if (typeof version !== 'string' || versionOf(binaries) !== version) return undefined;
    const module = { exports: {} as { version?: unknown } };
    process.dlopen(module, join(binaries, `linux_${process.arch}`, 'koffi.node'));
    return module.exports.version === version ? module.exports : undefined;
  } catch {
    return undefined;
  }
}

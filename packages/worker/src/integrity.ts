/**
 * Integrity pinning (`integrity: 'sha384-…'`): the worker hashes the implementation's file before it
 * loads it, so the code that runs is the code that was reviewed. The format is Subresource
 * Integrity's (an algorithm, a dash, the base64 digest); a mismatch names both digests, the expected
 * one and the one the file has, so the fix (re-review, then pin the new digest) is one copy away.
 *
 * A `.wasm` module is compiled from the very bytes hashed here. A JavaScript module is hashed, then
 * imported by Node, which reads the file again: whoever can write the file between the two reads
 * can still swap it (and the modules it imports are not covered at all). Pinning guards against a
 * changed deployment, not against a writer racing the worker (docs/configuration.md says so).
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { StartupFailure } from './startup-failure.js';

const ALGORITHMS = new Set(['sha256', 'sha384', 'sha512']);

/** The file's bytes, after checking them against `integrity` when one is given. */
export async function readPinned(path: string, integrity: string | undefined): Promise<Buffer> {
  let bytes: Buffer;
  try {
    bytes = await readFile(path);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new StartupFailure(code === 'ENOENT' ? `workerModule not found: ${path}` : `reading ${path} failed: ${(error as Error).message}`, { cause: error });
  }
  if (integrity !== undefined) checkIntegrity(bytes, integrity, path);
  return bytes;
}

export function checkIntegrity(bytes: Uint8Array, integrity: string, path: string): void {
  const dash = integrity.indexOf('-');
  const algorithm = integrity.slice(0, dash);
  if (dash < 0 || !ALGORITHMS.has(algorithm)) throw new StartupFailure(`integrity '${integrity}' is not sha256-, sha384- or sha512- followed by a base64 digest`);
  const actual = `${algorithm}-${createHash(algorithm).update(bytes).digest('base64')}`;
  if (actual !== integrity) {
    throw new StartupFailure(`integrity mismatch for ${path}: expected ${integrity}, the file has ${actual}`);
  }
}

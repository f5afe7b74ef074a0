/**
 * Hard OS limits the worker puts on itself before the implementation loads (so that nothing the
 * implementation does, nor anything it spawns, runs without them; children inherit rlimits).
 *
 * setrlimit through koffi where it loads; otherwise util-linux's `prlimit --pid <self>`, run
 * synchronously. A limit that was asked for and cannot be applied fails the start: silently
 * running without it would be worse.
 */
import { execFileSync } from 'node:child_process';
import type { WorkerLimits } from '@process-sandbox/abstractions';
import { libc } from './native.js';

const RESOURCES: Record<string, { cpu: number; nofile: number; as: number } | undefined> = {
  linux: { cpu: 0, nofile: 7, as: 9 },
  darwin: { cpu: 0, nofile: 8, as: 5 },
};

interface Rlimit {
  name: 'cpu' | 'nofile' | 'as';
  soft: bigint;
  hard: bigint;
}

export function rlimitsOf(limits: WorkerLimits): Rlimit[] {
  const list: Rlimit[] = [];
  if (limits.maxOpenFiles !== undefined) list.push({ name: 'nofile', soft: BigInt(limits.maxOpenFiles), hard: BigInt(limits.maxOpenFiles) });
  if (limits.maxAddressSpaceMB !== undefined) {
    const bytes = BigInt(limits.maxAddressSpaceMB) * 1024n * 1024n;
    list.push({ name: 'as', soft: bytes, hard: bytes });
  }
  // SIGXCPU at the soft limit (reported as a CPU limit); SIGKILL a second later, if it was caught.
  if (limits.maxCpuSeconds !== undefined) list.push({ name: 'cpu', soft: BigInt(limits.maxCpuSeconds), hard: BigInt(limits.maxCpuSeconds + 1) });
  return list;
}

/** Applies `limits` to this process; throws an Error that says which limit and why not. */
export function applyLimits(limits: WorkerLimits): void {
  const wanted = rlimitsOf(limits);
  if (wanted.length === 0) return;
  const numbers = RESOURCES[process.platform];
  if (!numbers) throw new Error(`OS limits are not supported on ${process.platform}`);
  const native = libc();
  if (native) {
    for (const limit of wanted) {
      try {
        native.setrlimit(numbers[limit.name], limit.soft, limit.hard);
      } catch (error) {
        throw new Error(`could not set RLIMIT_${limit.name.toUpperCase()} to ${limit.soft}:${limit.hard}: ${(error as Error).message}`);
      }
    }
    return;
  }
  const args = ['--pid', String(process.pid), ...wanted.map((l) => `--${l.name}=${l.soft}:${l.hard}`)];
  try {
    execFileSync('prlimit', args, { stdio: ['ignore', 'ignore', 'pipe'], timeout: 5_000 });
  } catch (error) {
    const stderr = String((error as { stderr?: Buffer }).stderr ?? '').trim();
    throw new Error(`could not apply OS limits: koffi is not available and 'prlimit ${args.join(' ')}' failed: ${stderr || (error as Error).message}`);
  }
}

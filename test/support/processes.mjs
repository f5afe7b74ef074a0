// Finding the processes a test started, through /proc: every worker (and whatever it spawns)
// inherits TEST_RUN_MARKER from the test process's environment. On Windows (no /proc, and another
// process's environment cannot be read), through a Toolhelp snapshot: this process's descendants
// (win32-processes.mjs).
import { readdirSync, readFileSync } from 'node:fs';

const win32 = process.platform === 'win32' ? await import('./win32-processes.mjs') : undefined;

/** True when running on Wine (CI's Windows suite): Wine 8 reports no process handle counts. */
export const underWine = win32?.underWine ?? false;

export const TEST_RUN_MARKER = 'PROCESS_SANDBOX_TEST_RUN';
process.env[TEST_RUN_MARKER] ??= `${process.pid}-${Date.now()}`;
const marker = `${TEST_RUN_MARKER}=${process.env[TEST_RUN_MARKER]}`;

/** True while `pid` exists and is not a zombie. */
export function isAlive(pid) {
  if (win32) return win32.isAlive(pid);
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

/** Pids of live processes (other than this one) whose environment carries this run's marker. */
export function markedProcesses() {
  if (win32) return win32.descendants();
  const found = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    let environ;
    try {
      environ = readFileSync(`/proc/${entry}/environ`, 'latin1');
    } catch {
      continue;
    }
    if (environ.split('\0').includes(marker) && isAlive(Number(entry))) found.push(Number(entry));
  }
  return found;
}

/** Parent pid of `pid`, or 0. */
export function parentOf(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
  } catch {
    return 0;
  }
}

/** `pids` and all their live descendants. */
export function withDescendants(pids) {
  if (win32) return win32.withDescendantsOf(pids);
  const all = new Set(pids);
  const procs = readdirSync('/proc').filter((e) => /^\d+$/.test(e)).map(Number);
  for (let grew = true; grew; ) {
    grew = false;
    for (const pid of procs) {
      if (!all.has(pid) && all.has(parentOf(pid))) {
        all.add(pid);
        grew = true;
      }
    }
  }
  return all;
}

/** The environment `pid` was started with (a worker's pipe and token are there, for tests). */
export function environOf(pid) {
  return Object.fromEntries(
    readFileSync(`/proc/${pid}/environ`, 'latin1')
      .split('\0')
      .filter(Boolean)
      .map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]),
  );
}

export function commandLine(pid) {
  if (win32) return win32.exeOf(pid);
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ').trim();
  } catch {
    return '?';
  }
}

/**
 * Polls `predicate` until it returns a truthy value, and returns that value; THROWS if `timeoutMs`
 * passes first, saying what it waited for (`what`, e.g. 'the worker to exit'). The deadline is
 * generous on purpose: it bounds a hang, it is not a speed claim.
 */
export async function waitFor(predicate, what, { timeoutMs = 10_000, intervalMs = 10 } = {}) {
  if (typeof what !== 'string') throw new TypeError('waitFor(predicate, what, options): say what is awaited, for the timeout message');
  const started = Date.now();
  const value = await poll(predicate, { timeoutMs, intervalMs });
  if (!value) throw new Error(`timed out after ${Date.now() - started} ms waiting for ${what} (last value: ${String(value)})`);
  return value;
}

/** Polls `predicate` until it is truthy or `timeoutMs` passes; returns its last value, never throws on timeout. */
export async function poll(predicate, { timeoutMs = 10_000, intervalMs = 10 } = {}) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await predicate();
    if (value || Date.now() >= deadline) return value;
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/** Resolves when none of `pids` is alive; rejects naming the survivors after `timeoutMs`. */
export async function waitForExit(pids, timeoutMs = 10_000) {
  const gone = await poll(() => pids.every((p) => !isAlive(p)), { timeoutMs });
  if (!gone) throw new Error(`still alive after ${timeoutMs} ms: ${pids.filter(isAlive).join(', ')}`);
}

/** Open file descriptors of this process. */
export function openFds(pid = 'self') {
  return readdirSync(`/proc/${pid}/fd`).length;
}

/** this.skip() with the reason printed (mocha itself drops a skip's message). */
export function skipBecause(context, reason) {
  console.log(`      (skipped: ${reason})`);
  context.skip();
}

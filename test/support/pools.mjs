// Creating proxies in tests: every proxy made through `createProxy` is disposed by `disposeProxies`,
// which each test file calls in afterEach (the root hook then checks that no process survived).
import { rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ProcessProxy } from '@process-sandbox/core';

export const fixture = (name) => new URL(`../fixtures/${name}`, import.meta.url);

const open = new Set();

/** Pids of the workers of proxies made here and not yet disposed: legitimately alive between tests. */
export function openPoolPids() {
  return [...open].flatMap((p) => ProcessProxy.poolOf(p).livePids());
}

export async function createProxy(options) {
  const proxy = await ProcessProxy.create(options);
  open.add(proxy);
  return proxy;
}

export async function disposeProxies() {
  const proxies = [...open];
  open.clear();
  await Promise.all(proxies.map((p) => ProcessProxy.poolOf(p).dispose()));
  for (const path of gatePaths) rmSync(path, { force: true });
  gatePaths.clear();
}

/** A logger that keeps every line, for assertions. */
export function memoryLogger() {
  const lines = [];
  const at = (level) => (obj, msg) => lines.push({ level, obj, msg });
  return { lines, debug: () => {}, info: at('info'), warn: at('warn'), error: at('error') };
}

/** Resolves with the rejection of `promise`, fails if it resolves. */
export async function rejectionOf(promise) {
  try {
    const value = await promise;
    throw Object.assign(new Error(`expected a rejection, got ${JSON.stringify(value)}`), { unexpected: true });
  } catch (error) {
    if (error?.unexpected) throw error;
    return error;
  }
}

/** Resolves with the payload of the next `event` from `emitter`. */
export function nextEvent(emitter, event) {
  return new Promise((resolve) => emitter.once(event, resolve));
}

/**
 * A gate for the torture fixture's `gate(path)` call, which blocks until told: `path` to pass it,
 * `open()` to let every call waiting on it return. The file lives in the OS temp directory;
 * disposeProxies removes it.
 */
export function gate() {
  const path = join(tmpdir(), `ps-gate-${process.pid}-${++gates}-${Math.random().toString(36).slice(2)}`);
  gatePaths.add(path);
  return { path, open: () => writeFileSync(path, '') };
}
let gates = 0;
const gatePaths = new Set();

/**
 * The worker's own view of its resource use, attached to every reply.
 *
 * Counting open descriptors reads a directory, which costs more than the rest together, so the
 * count is refreshed at most every `HANDLES_TTL_MS` (the host samples /proc/<pid>/fd on its own too).
 */
import { readdirSync } from 'node:fs';
import { HEALTH_REFRESH_MS, type HealthSnapshot } from '@process-sandbox/abstractions';

const HANDLES_TTL_MS = 100;
let handles = -1;
let handlesAt = -Infinity;

function countHandles(now: number): number {
  if (now - handlesAt < HANDLES_TTL_MS) return handles;
  handlesAt = now;
  try {
    // Linux (and anything with procfs): every open descriptor, native ones included. Never on
    // Windows: under Wine, "/proc" is the Linux one, which would count Wine's descriptors.
    if (process.platform === 'win32') throw new Error('no procfs');
    handles = readdirSync('/proc/self/fd').length - 1; // minus the one readdir itself held
  } catch {
    // Elsewhere: libuv's active handles (sockets, timers, files opened through fs streams).
    const getActive = (process as unknown as { getActiveResourcesInfo?: () => string[] }).getActiveResourcesInfo;
    handles = getActive ? getActive().length : -1;
  }
  return handles;
}

let lastAttachedAt = -Infinity;

/**
 * The snapshot to attach to a reply, or null while the last one attached is younger than
 * HEALTH_REFRESH_MS: process.memoryUsage() reads /proc/self/stat and costs more than a trivial call,
 * and the host samples every worker on its own anyway.
 */
export function replyHealth(calls: number): HealthSnapshot | null {
  const now = performance.now();
  if (now - lastAttachedAt < HEALTH_REFRESH_MS) return null;
  lastAttachedAt = now;
  return healthSnapshot(calls);
}

/**
 * The snapshot Ready carries: it counts as attached, so the first call's reply carries none unless
 * HEALTH_REFRESH_MS has passed since (a worker's first call is its slowest already: cold code).
 */
export function readyHealth(): HealthSnapshot {
  lastAttachedAt = performance.now();
  return healthSnapshot(0);
}

export function healthSnapshot(calls: number): HealthSnapshot {
  const now = performance.now();
  const memory = process.memoryUsage();
  const cpu = process.cpuUsage();
  return {
    rss: memory.rss,
    heapUsed: memory.heapUsed,
    external: memory.external,
    arrayBuffers: memory.arrayBuffers,
    handles: countHandles(now),
    cpuUserMs: cpu.user / 1000,
    cpuSystemMs: cpu.system / 1000,
    calls,
    uptimeMs: Math.round(process.uptime() * 1000),
  };
}

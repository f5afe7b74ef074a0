/**
 * A worker's resource use as last known, from two sources: what the worker reports about itself
 * (with replies, and while idle) and what the host's sampler measures from outside (which works
 * while the worker is blocked). For each figure, the more recent source wins.
 */
import type { HealthSnapshot } from '@process-sandbox/abstractions';
import type { HostSample } from './health-sampler.js';

export class WorkerUsage {
  #health: HealthSnapshot | undefined;
  #healthAt: number | undefined;
  #sample: HostSample | undefined;
  #sampleAt: number | undefined;

  recordHealth(health: HealthSnapshot): void {
    this.#health = health;
    this.#healthAt = Date.now();
  }

  recordSample(sample: HostSample): void {
    this.#sample = sample;
    this.#sampleAt = Date.now();
  }

  /** The worker's own last report. */
  get health(): HealthSnapshot | undefined {
    return this.#health;
  }
  get healthAt(): number | undefined {
    return this.#healthAt;
  }
  /** The host's last measurement. */
  get sample(): HostSample | undefined {
    return this.#sample;
  }

  get rssBytes(): number | undefined {
    return this.#sampleIsNewer() ? this.#sample?.rssBytes : this.#health?.rss;
  }
  get handles(): number | undefined {
    const fromHost = this.#sample?.handles;
    return fromHost !== undefined && this.#sampleIsNewer() ? fromHost : this.#health?.handles;
  }
  get cpuMs(): number | undefined {
    if (this.#sampleIsNewer()) return this.#sample?.cpuMs;
    return this.#health ? this.#health.cpuUserMs + this.#health.cpuSystemMs : undefined;
  }

  #sampleIsNewer(): boolean {
    return this.#sampleAt !== undefined && (this.#healthAt === undefined || this.#sampleAt >= this.#healthAt);
  }
}

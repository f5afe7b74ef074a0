/** Small statistics helpers shared by the benchmarks. */

export function concat(arrays) {
  const out = new Float64Array(arrays.reduce((n, a) => n + a.length, 0));
  let offset = 0;
  for (const a of arrays) {
    out.set(a, offset);
    offset += a.length;
  }
  return out;
}

/** mean, p50 and p99 of a sample (nearest-rank percentiles). */
export function summarise(latencies) {
  const sorted = Float64Array.from(latencies).sort();
  let sum = 0;
  for (const v of sorted) sum += v;
  const at = (q) => sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)];
  return { mean: sum / sorted.length, p50: at(0.5), p99: at(0.99), n: sorted.length };
}

/** min, median and max of one figure measured once per round (NaN and undefined are left out). */
export function spread(values) {
  const kept = values.filter((v) => typeof v === 'number' && !Number.isNaN(v));
  if (kept.length === 0) return undefined;
  const sorted = [...kept].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  const median = sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
  return { min: sorted[0], median, max: sorted[sorted.length - 1], values: kept };
}

// Interleaved A/B of the host's per-call cost: no caller frames at all / async view / sync capture.
import { ProcessProxy } from '@process-sandbox/core';
const workerModule = new URL('../samples/calculator/calculator.mjs', import.meta.url).href;
const configs = {
  'none (promise as is)': { opts: { captureCallerStack: false }, noView: true },
  'async frames (view)': { opts: { captureCallerStack: false }, noView: false },
  'sync capture + view': { opts: { captureCallerStack: true }, noView: false },
};
const proxies = {};
for (const [name, c] of Object.entries(configs)) proxies[name] = await ProcessProxy.create({ workerModule, workerExport: 'CalculatorImpl', minPoolSize: 1, maxPoolSize: 1, ...c.opts });
const res = Object.fromEntries(Object.keys(configs).map((n) => [n, { lat: [], host: [], tput: [] }]));
const N = Number(process.argv[2] ?? 3000), ROUNDS = Number(process.argv[3] ?? 8);
for (const p of Object.values(proxies)) for (let i = 0; i < 1000; i++) await p.add(1, 2);
for (let r = 0; r < ROUNDS; r++) {
  for (const [name, c] of Object.entries(configs)) {
    globalThis.__PS_NO_VIEW = c.noView;
    const p = proxies[name];
    const c0 = process.cpuUsage(); const t0 = performance.now();
    for (let i = 0; i < N; i++) if ((await p.add(1, 2)) !== 3) throw new Error('bad');
    const t = (performance.now() - t0) * 1000 / N; const cu = process.cpuUsage(c0);
    res[name].lat.push(t); res[name].host.push((cu.user + cu.system) / N);
    let done = 0; const end = performance.now() + 300;
    await Promise.all(Array.from({ length: 64 }, async () => { while (performance.now() < end) { await p.add(1, 2); done++; } }));
    res[name].tput.push(done / 0.3);
  }
}
const med = (a) => { const s = [...a].sort((x, y) => x - y); return s[Math.floor(s.length / 2)]; };
for (const [name, r] of Object.entries(res)) console.log(name.padEnd(22), 'latency µs', med(r.lat).toFixed(1).padStart(7), '  host CPU µs/call', med(r.host).toFixed(2).padStart(6), '  throughput (1 worker, 64 callers) calls/s', Math.round(med(r.tput)));
globalThis.__PS_NO_VIEW = false;
await Promise.all(Object.values(proxies).map((p) => ProcessProxy.poolOf(p).dispose()));

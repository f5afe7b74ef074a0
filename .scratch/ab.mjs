// Interleaved A/B of per-call costs: caller-stack capture on/off, reply deferral on/off.
import { readFileSync } from 'node:fs';
import { ProcessProxy } from '@process-sandbox/core';
const workerModule = new URL('../samples/calculator/calculator.mjs', import.meta.url).href;
const mod = await import(workerModule); const exportName = Object.keys(mod).find((k) => k !== 'default') ?? 'default';
const ticks = (pid) => { const s = readFileSync(`/proc/${pid}/stat`, 'utf8'); const f = s.slice(s.lastIndexOf(')') + 2).split(' '); return (Number(f[11]) + Number(f[12])) * 10_000; }; // µs
const configs = {
  'reply deferred (setImmediate)': { captureCallerStack: false },
  'reply at once': { captureCallerStack: false, env: { ...process.env, PS_MEASURE_NO_DEFER: '1' } },
};
const proxies = {};
for (const [name, extra] of Object.entries(configs)) proxies[name] = await ProcessProxy.create({ workerModule, workerExport: exportName, minPoolSize: 1, maxPoolSize: 1, ...extra });
const pids = Object.fromEntries(await Promise.all(Object.entries(proxies).map(async ([n, p]) => [n, ProcessProxy.poolOf(p).livePids()[0]])));
const res = Object.fromEntries(Object.keys(configs).map((n) => [n, { lat: [], host: [], worker: [], tput: [] }]));
const N = Number(process.argv[2] ?? 3000), ROUNDS = Number(process.argv[3] ?? 8);
for (const p of Object.values(proxies)) for (let i = 0; i < 1000; i++) await p.add(1, 2);
for (let r = 0; r < ROUNDS; r++) {
  for (const name of Object.keys(configs)) {
    const p = proxies[name];
    const c0 = process.cpuUsage(); const w0 = ticks(pids[name]); const t0 = performance.now();
    for (let i = 0; i < N; i++) if ((await p.add(1, 2)) !== 3) throw new Error('bad');
    const t = (performance.now() - t0) * 1000 / N; const c = process.cpuUsage(c0); const w = ticks(pids[name]) - w0;
    res[name].lat.push(t); res[name].host.push((c.user + c.system) / N); res[name].worker.push(w / N);
    // throughput: 64 concurrent callers on the one worker for 300 ms
    let done = 0; const end = performance.now() + 300;
    await Promise.all(Array.from({ length: 64 }, async () => { while (performance.now() < end) { await p.add(1, 2); done++; } }));
    res[name].tput.push(done / 0.3);
  }
}
const med = (a) => { const s = [...a].sort((x, y) => x - y); return s[Math.floor(s.length / 2)]; };
for (const [name, r] of Object.entries(res)) console.log(name.padEnd(20), 'latency µs', med(r.lat).toFixed(1).padStart(7), ' host CPU µs/call', med(r.host).toFixed(2).padStart(6), ' worker CPU µs/call', med(r.worker).toFixed(2).padStart(6), ' throughput calls/s', Math.round(med(r.tput)));
await Promise.all(Object.values(proxies).map((p) => ProcessProxy.poolOf(p).dispose()));

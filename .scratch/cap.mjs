import { ProcessProxy } from '@process-sandbox/core';
const workerModule = new URL('../samples/calculator/calculator.mjs', import.meta.url).href;
const p = await ProcessProxy.create({ workerModule, workerExport: 'CalculatorImpl', maxPoolSize: 1 });
for (let r = 0; r < 4; r++) {
  globalThis.__capNs = 0n; globalThis.__capN = 0;
  const c0 = process.cpuUsage();
  for (let i = 0; i < 5000; i++) await p.add(1, 2);
  const c = process.cpuUsage(c0);
  console.log('capture µs/call', Number(globalThis.__capNs) / 1000 / globalThis.__capN, 'host cpu µs/call', (c.user + c.system) / 5000);
}
await ProcessProxy.poolOf(p).dispose();

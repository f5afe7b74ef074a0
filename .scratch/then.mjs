import { ProcessProxy } from '@process-sandbox/core';
for (const workerExport of ['WithThen', 'withThenObject', 'withThenFactory', 'asyncFactory']) {
  const t = Date.now();
  try {
    const proxy = await ProcessProxy.create({ workerModule: new URL('../test/fixtures/hostile-errors.mjs', import.meta.url).href, workerExport, workerOptions: { a: 1 }, processStartTimeoutMs: 3000 });
    console.log(workerExport, await proxy.ping(7), Date.now() - t, 'ms');
    await ProcessProxy.poolOf(proxy).dispose();
  } catch (e) { console.log(workerExport, 'FAILED', e.message); }
}

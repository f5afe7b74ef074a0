import { ProcessProxy } from '@process-sandbox/core';
import util from 'node:util';
process.on('uncaughtException', (e) => { console.log('HOST uncaughtException:', e.message); });
process.on('unhandledRejection', (e) => { console.log('HOST unhandledRejection:', e?.message); });
const proxy = await ProcessProxy.create({ workerModule: new URL('../test/fixtures/hostile-errors.mjs', import.meta.url).href, workerExport: 'HostileErrors', methodCallTimeoutMs: 3000 });
const pool = ProcessProxy.poolOf(proxy);
pool.on('callSettled', (e) => console.log('callSettled', e.method, e.outcome));
for (const m of [process.argv[2]]) {
  try { console.log(await proxy[m]()); } catch (e) {
    console.log(m, 'rejected:', e.constructor?.name);
    for (const f of [() => String(e), () => e.toString(), () => util.inspect(e).slice(0, 300), () => JSON.stringify(e).slice(0, 300)]) { try { console.log('  ok', f().slice(0,200)) } catch (x) { console.log('  THROWS', x.message) } }
  }
}
console.log('next', await proxy.ping(1));
await pool.dispose();

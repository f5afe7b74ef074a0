import { ProcessProxy } from '@process-sandbox/core';
const proxy = await ProcessProxy.create({ workerModule: new URL('../test/fixtures/hostile-errors.mjs', import.meta.url).href, workerExport: 'HostileErrors', captureCallerStack: process.argv[2] !== 'off' });
async function myCallerFunction() { await null; return await proxy.throwConstructorNull(); }
try { await myCallerFunction(); } catch (e) { console.log(e.stack); }
const p = ProcessProxy.with(proxy, { timeoutMs: 50 });
async function timeoutCaller() { return await p.rejectWhileRunning(2000); }
try { await timeoutCaller(); } catch (e) { console.log(e.stack); }
await ProcessProxy.poolOf(proxy).dispose();

#!/usr/bin/env node
// The sample WebAssembly plugin behind a typed proxy: fuel per call, a memory cap, one granted
// host function, every host call audited. Run: npm run build && node samples/wasm-plugin/demo.mjs
import { ProcessProxy, ResourceLimitError } from '@process-sandbox/core';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const wasm = fileURLToPath(new URL('./plugin.wasm', import.meta.url));
const proxy = await ProcessProxy.create({
  workerModule: wasm,
  // The reviewed build: any other bytes fail the start with both digests named.
  integrity: `sha384-${createHash('sha384').update(readFileSync(wasm)).digest('base64')}`,
  wasm: {
    fuelPerCall: 10_000_000,
    maxMemoryMB: 16,
    hostFunctions: { module: new URL('./host-functions.mjs', import.meta.url), grant: ['log'] },
    auditHostCalls: true,
  },
  // The worker's stdout (where host.log writes) arrives as info lines.
  logger: { debug() {}, info: (obj, msg) => console.log(msg), warn: (obj, msg) => console.warn(msg), error: (obj, msg) => console.error(msg) },
});
const pool = ProcessProxy.poolOf(proxy);
pool.on('callSettled', (e) => console.log(`  ${e.method}: ${e.outcome}, fuel ${e.fuel}, host calls ${JSON.stringify(e.hostCalls)}`));
try {
  console.log(await proxy.add(2, 3));
  console.log(await proxy.wordCount('the quick brown fox'));
  console.log(await proxy.checksum(Buffer.from('Wikipedia')));
  console.log(await proxy.greet('WebAssembly'));
  try {
    await proxy.fib(40); // far more than 10 million function entries and exits
  } catch (error) {
    if (!(error instanceof ResourceLimitError)) throw error;
    console.log(`fib(40): ${error.limit} limit, as expected`);
  }
  console.log(await proxy.fib(20), 'total fuel', pool.stats().totals.fuel);
} finally {
  await pool.dispose();
}

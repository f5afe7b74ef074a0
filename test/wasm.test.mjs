// WebAssembly implementations (docs/webassembly.md), through the public API with real worker
// processes: a .wasm workerModule's exports become methods; numbers, strings and bytes cross the
// ABI; the contract is checked at load; fuel stops a runaway deterministically and the instance is
// reset; the memory cap refuses a module that declares more and turns running out into a typed
// error; host functions are granted by name and audited; integrity pins JS and WASM alike. What the
// worker reports (fuel, audit records) is checked by the host's gate: a bogus value is a
// ProtocolError. Fixtures are built from their WAT source at test time (test/support/wasm.mjs).
import { expect } from 'chai';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ConfigurationError, ProcessProxy, RemoteError, ResourceLimitError, WorkerStartError } from '@process-sandbox/core';
import { MAX_HOST_CALL_RECORDS } from '@process-sandbox/abstractions';
import { createProxy, disposeProxies, fixture, nextEvent, rejectionOf } from './support/pools.mjs';
import { expectProtocolKill, forbidEscapes, forgingPool } from './support/forging.mjs';
import { TEST_RUN_MARKER, skipBecause } from './support/processes.mjs';
import { sri, startFailure, wasmFile, wasmFixture } from './support/wasm.mjs';

const HOST_FUNCTIONS = fileURLToPath(fixture('wasm/host-functions.mjs'));
const plugin = wasmFixture('plugin');
const grantLog = { hostFunctions: { module: HOST_FUNCTIONS, grant: ['log'] } };

/** A proxy of the plugin fixture whose callSettled events are kept. */
async function pluginProxy(wasm = {}, options = {}) {
  const proxy = await createProxy({ workerModule: plugin, maxPoolSize: 1, wasm: { ...grantLog, ...wasm }, ...options });
  const settled = [];
  ProcessProxy.poolOf(proxy).on('callSettled', (e) => settled.push(e));
  return { proxy, pool: ProcessProxy.poolOf(proxy), settled };
}

describe('WebAssembly implementations', function () {
  this.timeout(60_000);
  forbidEscapes(disposeProxies);

  describe('exported functions are the methods', function () {
    it('lists the functions, not the ABI exports, and passes numbers: i32, i64 as BigInt, f64', async () => {
      const ready = [];
      const proxy = await createProxy({ workerModule: plugin, minPoolSize: 0, maxPoolSize: 1, wasm: grantLog });
      ProcessProxy.poolOf(proxy).on('workerReady', (e) => ready.push(e.methods));
      expect(await proxy.add(2, 40)).to.equal(42);
      expect(await proxy.mul64(3n, 2n ** 40n)).to.equal(3n * 2n ** 40n);
      expect(await proxy.mul64(6, 7), 'a safe integer for an i64').to.equal(42n);
      expect(await proxy.half(3)).to.equal(1.5);
      expect(ready[0]).to.include.members(['add', 'mul64', 'half', 'upper', 'spin']);
      expect(ready[0]).to.not.include.members(['alloc', 'memory']);
    });

    it('strings and bytes cross through linear memory (UTF-8, copied both ways)', async () => {
      const { proxy } = await pluginProxy();
      expect(await proxy.upper('héllo, wörld')).to.equal('HéLLO, WöRLD');
      expect(await proxy.upper('')).to.equal('');
      expect(await proxy.sum(Buffer.from([1, 2, 3, 250]))).to.equal(256);
      const reversed = await proxy.reverse(new Uint8Array([1, 2, 3]));
      expect([...reversed]).to.deep.equal([3, 2, 1]);
      const big = 'x'.repeat(200_000);
      expect(await proxy.upper(big), 'an argument larger than the initial memory').to.equal(big.toUpperCase());
    });

    it('a wrong argument is a RemoteError naming it, and the instance goes on', async () => {
      const { proxy } = await pluginProxy();
      expect(await proxy.counter()).to.equal(1);
      const notString = await rejectionOf(proxy.upper(5));
      expect(notString).to.be.an.instanceOf(RemoteError);
      expect(notString.message).to.match(/argument 1 of upper\(\) must be a string/);
      const count = await rejectionOf(proxy.add(1));
      expect(count.message).to.match(/add\(\) takes 2 arguments, got 1/);
      const heap = await proxy.heap();
      const second = await rejectionOf(proxy.lengths('abc', 5));
      expect(second.message).to.match(/argument 2 of lengths\(\) must be a string/);
      expect(await proxy.heap(), 'the first argument was not copied in either').to.equal(heap);
      expect(await proxy.lengths('abc', 'de')).to.equal(5);
      expect(await proxy.counter(), 'not reset: nothing ran').to.equal(2);
    });

    it('exports named like Object.prototype members are plain methods, nothing more', async () => {
      const path = wasmFile('(module (func (export "__proto__") (result i32) (i32.const 1)) (func (export "hasOwnProperty") (result i32) (i32.const 2)))');
      const ready = [];
      const proxy = await createProxy({ workerModule: path, minPoolSize: 0, maxPoolSize: 1 });
      ProcessProxy.poolOf(proxy).on('workerReady', (e) => ready.push(e.methods));
      expect(ProcessProxy.poolOf(proxy).stats().workers, "minPoolSize 0: none yet").to.have.length(0);
      expect(await proxy.hasOwnProperty()).to.equal(2);
      expect([...ready[0]].sort()).to.deep.equal(['__proto__', 'hasOwnProperty']);
    });

    it('a trap is a RemoteError and the instance is reset', async () => {
      const { proxy } = await pluginProxy();
      expect(await proxy.counter()).to.equal(1);
      expect(await proxy.counter()).to.equal(2);
      const error = await rejectionOf(proxy.crash());
      expect(error).to.be.an.instanceOf(RemoteError);
      expect(error.remoteName).to.equal('RuntimeError');
      expect(error.message).to.match(/unreachable/);
      expect(await proxy.counter(), 'a fresh instance').to.equal(1);
    });
  });

  describe('the contract, checked at load', function () {
    const cases = [
      ['not WebAssembly at all', () => { const p = join(mkdtempSync(join(tmpdir(), 'ps-notwasm-')), 'x.wasm'); writeFileSync(p, 'hello'); return p; }, {}, /is not a valid WebAssembly module: not a WebAssembly 1.0 binary/],
      ['no function exported', () => wasmFile('(module (memory (export "memory") 1))'), {}, /exports no functions to call/],
      ['an ABI entry for a function it does not export', () => wasmFile('(module (func (export "f")))', { functions: { g: { params: [] } } }), {}, /declares 'g', which the module does not export as a function/],
      ['an ABI entry with the wrong parameter count', () => wasmFile('(module (func (export "f") (param i32)))', { functions: { f: { params: ['string'] } } }), {}, /declares 'f' with 2 WebAssembly parameters .* but the function has 1/],
      ['an unknown ABI type', () => wasmFile('(module (func (export "f") (param i32)))', { functions: { f: { params: ['u8'] } } }), {}, /each must be one of i32, i64, f32, f64, string, bytes/],
      ['a string parameter without alloc', () => wasmFile('(module (memory (export "memory") 1) (func (export "f") (param i32 i32)))', { functions: { f: { params: ['string'] } } }), {}, /must export alloc/],
      ['a string result without an exported memory', () => wasmFile('(module (memory 1) (func (export "f") (result i64) (i64.const 0)))', { functions: { f: { result: 'string' } } }), {}, /must export its memory as 'memory'/],
      ['an imported memory', () => wasmFile('(module (import "host" "mem" (memory 1)) (func (export "f")))'), {}, /imports its memory/],
      ['an import from an unknown module', () => wasmFile('(module (import "env" "abort" (func)) (func (export "f")))'), {}, /env\.abort \(nothing provides the module 'env'/],
      ['a WASI import with WASI off', () => wasmFile('(module (import "wasi_snapshot_preview1" "fd_write" (func (param i32 i32 i32 i32) (result i32))) (func (export "f")))'), {}, /wasi_snapshot_preview1\.fd_write \(WASI is off: set wasm\.wasi\)/],
      ['a reserved export name', () => wasmFile('(module (func (export "__ps_fuel")) (func (export "f")))'), {}, /names starting with __ps_ are the sandbox's own/],
      ['a start function that traps', () => wasmFile('(module (func $s unreachable) (start $s) (func (export "f")))'), {}, /instantiating .* failed: unreachable/],
    ];
    for (const [what, make, wasm, reason] of cases) {
      it(`refuses ${what} with a WorkerStartError saying so`, async () => {
        await startFailure({ workerModule: make(), ...(Object.keys(wasm).length ? { wasm } : {}) }, reason);
      });
    }

    it('wasm options for a JavaScript module, or unknown ones, are ConfigurationErrors', async () => {
      const js = await rejectionOf(ProcessProxy.create({ workerModule: fileURLToPath(fixture('torture.mjs')), wasm: { fuelPerCall: 10 } }));
      expect(js).to.be.an.instanceOf(ConfigurationError).and.include({ option: 'wasm' });
      const unknown = await rejectionOf(ProcessProxy.create({ workerModule: plugin, wasm: { fuel: 10 } }));
      expect(unknown).to.include({ option: 'wasm.fuel' });
      const fuel = await rejectionOf(ProcessProxy.create({ workerModule: plugin, wasm: { fuelPerCall: 0 } }));
      expect(fuel).to.include({ option: 'wasm.fuelPerCall' });
      const audit = await rejectionOf(ProcessProxy.create({ workerModule: plugin, wasm: { auditHostCalls: true } }));
      expect(audit).to.include({ option: 'wasm.auditHostCalls' });
      const preopen = await rejectionOf(ProcessProxy.create({ workerModule: plugin, wasm: { wasi: { preopens: { '/data': '/no/such/dir' } } } }));
      expect(preopen).to.include({ option: 'wasm.wasi.preopens' });
    });
  });

  describe('WASI preview 1, only when asked, with only the preopens configured', function () {
    // argc() from args_sizes_get; preopened() is fd_prestat_get(3): 0 when fd 3 is a preopen, 8 (EBADF) when none is.
    const wasi = `(module
      (import "wasi_snapshot_preview1" "args_sizes_get" (func $sizes (param i32 i32) (result i32)))
      (import "wasi_snapshot_preview1" "fd_prestat_get" (func $prestat (param i32 i32) (result i32)))
      (memory (export "memory") 1)
      (func (export "argc") (result i32) (drop (call $sizes (i32.const 0) (i32.const 4))) (i32.load (i32.const 0)))
      (func (export "preopened") (result i32) (call $prestat (i32.const 3) (i32.const 16))))`;

    it('args and preopens as configured, nothing more', async () => {
      const path = wasmFile(wasi);
      const dir = mkdtempSync(join(tmpdir(), 'ps-wasi-'));
      try {
        const bare = await createProxy({ workerModule: path, wasm: { wasi: true } });
        expect(await bare.argc()).to.equal(0);
        expect(await bare.preopened(), 'no preopen: EBADF').to.equal(8);
        const given = await createProxy({ workerModule: path, wasm: { wasi: { args: ['plugin', '--x'], preopens: { '/data': dir } } } });
        expect(await given.argc()).to.equal(2);
        expect(await given.preopened()).to.equal(0);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  });

  describe('memory cap (wasm.maxMemoryMB)', function () {
    it('refuses a module that declares a larger maximum, or starts larger, naming both', async () => {
      const declared = wasmFile('(module (memory (export "memory") 1 64) (func (export "f")))');
      await startFailure({ workerModule: declared, wasm: { maxMemoryMB: 2 } }, /declares a memory maximum of 4 MiB \(64 pages\), more than wasm\.maxMemoryMB \(2 MiB, 32 pages\)/);
      const initial = wasmFile('(module (memory (export "memory") 40) (func (export "f")))');
      await startFailure({ workerModule: initial, wasm: { maxMemoryMB: 2 } }, /starts with 2\.5 MiB of memory \(40 pages\), more than wasm\.maxMemoryMB/);
    });

    it('caps a module without a maximum: growth past the cap fails as WebAssembly says, running out is a typed error, the instance is reset', async () => {
      const { proxy, settled } = await pluginProxy({ maxMemoryMB: 1 });
      expect(await proxy.counter()).to.equal(1);
      expect(await proxy.grow(100), 'memory.grow past the cap answers -1').to.equal(-1);
      expect(await proxy.grow(1), 'within the cap it grows').to.equal(1);
      const error = await rejectionOf(proxy.fill());
      expect(error, error.stack).to.be.an.instanceOf(ResourceLimitError);
      expect(error).to.include({ limit: 'wasmMemory', method: 'fill' });
      expect(error.message).to.match(/at the cap of 1 MiB/);
      expect(settled.at(-1)).to.include({ method: 'fill', outcome: 'ERR_PS_RESOURCE_LIMIT' });
      expect(await proxy.counter(), 'a fresh instance').to.equal(1);
      expect(await proxy.pages(), 'with its initial memory').to.equal(1);
      const tooBig = await rejectionOf(proxy.upper('y'.repeat(2 * 1024 * 1024)));
      expect(tooBig, 'an argument that cannot fit').to.be.an.instanceOf(ResourceLimitError).and.include({ limit: 'wasmMemory' });
      expect(await proxy.add(1, 1)).to.equal(2);
    });
  });

  describe('fuel (wasm.fuelPerCall)', function () {
    it('stops a runaway with ResourceLimitError (limit fuel), at the same count every time; the next call works on a fresh instance', async () => {
      const { proxy, pool, settled } = await pluginProxy({ fuelPerCall: 10_000 });
      const pid = await pool.livePids()[0];
      expect(await proxy.counter()).to.equal(1);
      for (let i = 0; i < 2; i++) {
        const error = await rejectionOf(proxy.forever());
        expect(error, error.stack).to.be.an.instanceOf(ResourceLimitError);
        expect(error).to.include({ limit: 'fuel', method: 'forever' });
        expect(error.message).to.match(/used up its fuel \(wasm\.fuelPerCall 10000\)/);
        expect(settled.at(-1)).to.include({ method: 'forever', outcome: 'ERR_PS_RESOURCE_LIMIT', fuel: 10_000 });
        expect(await proxy.counter(), 'a fresh instance after each').to.equal(1);
      }
      expect(pool.livePids(), 'the same worker: only the instance was reset').to.deep.equal([pid]);
    });

    it('is deterministic: the same call uses the same fuel, and traps at the same budget', async () => {
      const { proxy, pool, settled } = await pluginProxy({ fuelPerCall: 5_000 });
      const used = [];
      for (let i = 0; i < 3; i++) {
        expect(await proxy.spin(1000)).to.equal(1000);
        used.push(settled.at(-1).fuel);
      }
      expect(used[0]).to.be.above(1000).and.below(5_000);
      expect(used, 'the same count each time').to.deep.equal([used[0], used[0], used[0]]);
      const over = await rejectionOf(proxy.spin(10_000));
      expect(over).to.be.an.instanceOf(ResourceLimitError).and.include({ limit: 'fuel' });
      expect(pool.stats().totals.fuel, 'stats add up what the calls used').to.equal(used[0] * 3 + 5_000);
      expect(await proxy.spin(1000)).to.equal(1000);
      expect(settled.at(-1).fuel).to.equal(used[0]);

      // The smallest budget spin(1000) runs in is exactly what it used: one less traps.
      const exact = await pluginProxy({ fuelPerCall: used[0] });
      expect(await exact.proxy.spin(1000)).to.equal(1000);
      const short = await pluginProxy({ fuelPerCall: used[0] - 1 });
      expect(await rejectionOf(short.proxy.spin(1000))).to.be.an.instanceOf(ResourceLimitError).and.include({ limit: 'fuel' });
    });
  });

  describe('host functions by capability', function () {
    it('an import that is not granted is refused at load by its name', async () => {
      const error = await startFailure({ workerModule: plugin, wasm: { hostFunctions: { module: HOST_FUNCTIONS, grant: ['secret'] } } }, /host\.log \(not granted: wasm\.hostFunctions\.grant lists secret\)/);
      expect(error.reason).to.not.match(/host\.secret/);
      await startFailure({ workerModule: plugin }, /host\.log \(not granted: wasm\.hostFunctions\.grant is empty\)/);
    });

    it('a grant the host functions module does not export is refused', async () => {
      await startFailure({ workerModule: plugin, wasm: { hostFunctions: { module: HOST_FUNCTIONS, grant: ['log', 'missing'] } } }, /grant names 'missing', but .* exports no function 'missing'/);
    });

    it('granted functions run in the worker, and every call is audited in callSettled', async () => {
      const dir = mkdtempSync(join(tmpdir(), 'ps-hostfn-'));
      const file = join(dir, 'log.txt');
      try {
        const { proxy, settled } = await pluginProxy({ auditHostCalls: true }, { env: { ...process.env, PS_WASM_LOG: file } });
        expect(await proxy.shout('hello')).to.equal(5);
        expect(readFileSync(file, 'utf8')).to.equal('hello\nhello\n');
        const { hostCalls } = settled.at(-1);
        expect(hostCalls).to.have.length(2);
        for (const record of hostCalls) {
          expect(record.fn).to.equal('log');
          expect(record.args).to.have.length(2);
          expect(record.args[1]).to.equal(5);
        }
        expect(await proxy.add(1, 2)).to.equal(3);
        expect(settled.at(-1).hostCalls, 'a call without host calls has an empty audit').to.deep.equal([]);
        const trapped = await rejectionOf(proxy.logThenTrap('last words'));
        expect(trapped).to.be.an.instanceOf(RemoteError);
        expect(settled.at(-1)).to.include({ method: 'logThenTrap', outcome: 'ERR_PS_REMOTE' });
        expect(settled.at(-1).hostCalls.map((r) => [r.fn, r.args[1]]), 'the audit of a call that trapped arrives too').to.deep.equal([['log', 10]]);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  });

  describe("under Node's permission model", function () {
    it('the host functions module and binaryen are readable, WASI is allowed only with wasm.wasi', async () => {
      const { proxy } = await pluginProxy({ fuelPerCall: 100_000, auditHostCalls: true }, { permissions: {} });
      expect(await proxy.shout('permitted')).to.equal(9);
      expect(await proxy.upper('abc')).to.equal('ABC');
      const wasi = wasmFile('(module (import "wasi_snapshot_preview1" "fd_prestat_get" (func $p (param i32 i32) (result i32))) (memory (export "memory") 1) (func (export "preopened") (result i32) (call $p (i32.const 3) (i32.const 16))))');
      const dir = mkdtempSync(join(tmpdir(), 'ps-wasi-perm-'));
      try {
        const withWasi = await createProxy({ workerModule: wasi, permissions: {}, wasm: { wasi: { preopens: { '/data': dir } } } });
        expect(await withWasi.preopened()).to.equal(0);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  });

  describe('under isolation levels', function () {
    it("isolation 'maximum' (namespaces, read-only mounts, the permission model): host functions, fuel and the audit work", async function () {
      if (process.platform !== 'linux' || process.getuid?.() !== 0) return skipBecause(this, "'maximum' needs root on Linux");
      const { proxy, settled } = await pluginProxy({ fuelPerCall: 100_000, auditHostCalls: true }, { isolation: 'maximum', envPassthrough: [TEST_RUN_MARKER] });
      expect(await proxy.shout('confined')).to.equal(8);
      expect(settled.at(-1).hostCalls).to.have.length(2);
      expect(await rejectionOf(proxy.forever())).to.be.an.instanceOf(ResourceLimitError).and.include({ limit: 'fuel' });
      expect(await proxy.add(1, 2)).to.equal(3);
    });
  });

  describe('sessions and the sample plugin', function () {
    it('a session that asks for a fresh instance gets its own, the shared one is untouched', async () => {
      const { proxy } = await pluginProxy();
      expect(await proxy.counter()).to.equal(1);
      await ProcessProxy.session(proxy, async (own) => {
        expect(await own.counter(), 'a fresh instance').to.equal(1);
        expect(await own.counter()).to.equal(2);
      });
      expect(await proxy.counter(), 'the shared instance went on').to.equal(2);
    });

    it('samples/wasm-plugin: the committed plugin.wasm is what its source builds, and it serves like its JavaScript twin', async () => {
      const { build } = await import('../samples/wasm-plugin/build.mjs');
      const committed = fileURLToPath(new URL('../samples/wasm-plugin/plugin.wasm', import.meta.url));
      expect(Buffer.compare(await build(), readFileSync(committed)), 'node samples/wasm-plugin/build.mjs').to.equal(0);
      const { plugin: js } = await import('../samples/wasm-plugin/plugin.mjs');
      const hostFunctions = { module: new URL('../samples/wasm-plugin/host-functions.mjs', import.meta.url), grant: ['log'] };
      const proxy = await createProxy({ workerModule: committed, integrity: sri(committed), wasm: { hostFunctions, fuelPerCall: 10_000_000, maxMemoryMB: 4 } });
      const text = 'the quick\tbrown  fox\njumps ';
      const bytes = Buffer.from('Wikipedia');
      expect(await proxy.add(2, 3)).to.equal(js.add(2, 3));
      expect(await proxy.fib(20)).to.equal(js.fib(20));
      expect(await proxy.wordCount(text)).to.equal(js.wordCount(text));
      expect(await proxy.checksum(bytes)).to.equal(js.checksum(bytes));
      expect(await proxy.greet('wörld')).to.equal(js.greet('wörld'));
      const big = 'word '.repeat(200_000);
      expect(await proxy.wordCount(big), 'a megabyte argument, under the 4 MiB cap, freed after each call').to.equal(200_000);
      expect(await proxy.wordCount(big)).to.equal(200_000);
      expect(await rejectionOf(proxy.fib(40))).to.be.an.instanceOf(ResourceLimitError).and.include({ limit: 'fuel' });
      expect(await proxy.fib(20)).to.equal(6765);
    });
  });

  describe('what the worker reports is checked on the host', function () {
    it('a bogus fuel figure or audit record is a ProtocolError that ends that worker', async () => {
      const ctx = await forgingPool();
      await expectProtocolKill(ctx, [[4, '$id', 'x', null, { fuel: -1 }]], /Result usage\.fuel is -1, expected a whole number/);
      await expectProtocolKill(ctx, [[4, '$id', 'x', null, { fuel: 'lots' }]], /usage\.fuel is "lots"/);
      await expectProtocolKill(ctx, [[4, '$id', 'x', null, null]], /Result usage is null, expected a plain object/);
      await expectProtocolKill(ctx, [[4, '$id', 'x', null, { gas: 1 }]], /unknown field "gas"/);
      const records = Array.from({ length: MAX_HOST_CALL_RECORDS + 1 }, () => ({ fn: 'log', args: [] }));
      await expectProtocolKill(ctx, [[4, '$id', 'x', null, { hostCalls: records }]], new RegExp(`more than the ${MAX_HOST_CALL_RECORDS} allowed`));
      await expectProtocolKill(ctx, [[4, '$id', 'x', null, { hostCalls: [{ fn: 'log', args: ['str'] }] }]], /expected at most 16 numbers or BigInts/);
      await expectProtocolKill(ctx, [[4, '$id', 'x', null, { hostCalls: [{ fn: 'x'.repeat(300), args: [] }] }]], /record fn is a string of 300 characters/);
      await expectProtocolKill(ctx, [[4, '$id', 'x', null, {}, 'extra']], /Result has 6 fields, expected 4 or 5/);
    });

    it("well-formed figures a JavaScript worker's pool never asked for are refused too", async () => {
      const ctx = await forgingPool();
      await expectProtocolKill(ctx, [[4, '$id', 'x', null, { fuel: 5 }]], /Result reports fuel, but its pool sets no wasm\.fuelPerCall/);
      await expectProtocolKill(ctx, [[4, '$id', 'x', null, { hostCalls: [{ fn: 'log', args: [1] }] }]], /Result reports host calls, but its pool sets no wasm\.auditHostCalls/);
      await expectProtocolKill(ctx, [[5, '$id', new Error('out'), 6, null]], /Failure fails a call for fuel, but its pool sets no wasm\.fuelPerCall/);
      await expectProtocolKill(ctx, [[5, '$id', new Error('out'), 7, null]], /Failure fails a call for its memory cap/);
    });

    it('fuel above the pool\'s budget is refused (the gate on its own)', async () => {
      const { admitWorkerMessage } = await import(new URL('../packages/core/dist/worker-gate.js', import.meta.url).href);
      const admit = (message, wasm) => {
        const seen = [];
        admitWorkerMessage(message, false, {
          reply: (...a) => seen.push(['reply', ...a]),
          protocolError: (problem) => seen.push(['protocolError', String(problem?.message ?? problem)]),
          failureError: () => new Error('mapped'),
          wasm: () => wasm,
        });
        return seen;
      };
      const wasm = { fuelPerCall: 100, auditHostCalls: true };
      expect(admit([4, 1, 'x', null, { fuel: 100, hostCalls: [] }], wasm)[0][0]).to.equal('reply');
      expect(admit([4, 1, 'x', null, { fuel: 101 }], wasm)[0]).to.deep.equal(['protocolError', 'Result reports 101 fuel used, more than wasm.fuelPerCall (100)']);
      expect(admit([5, 1, new Error('e'), 6, null, { fuel: 100 }], wasm)[0][0]).to.equal('reply');
      expect(admit([5, 1, new Error('e'), 7, null], wasm)[0][1]).to.match(/no wasm\.maxMemoryMB/);
    });
  });
});

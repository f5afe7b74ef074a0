/**
 * A `.wasm` workerModule served like any implementation: its exported functions are the methods
 * (docs/webassembly.md). At load the worker reads the bytes (checking `integrity`), caps the
 * memory (`wasm.maxMemoryMB`), adds fuel counting (`wasm.fuelPerCall`), compiles, and checks the
 * contract: every import granted, the ABI declarations consistent with the exports, what they need
 * (memory, alloc) exported. Anything wrong is a StartupFailure naming it, so `create()` rejects with
 * a WorkerStartError that says what to fix.
 *
 * A call that traps (fuel, memory, `unreachable`, an out-of-bounds access) or whose host function
 * throws may leave the instance half-way through anything: the instance is replaced by a fresh one
 * from the same compiled module before the next call.
 */
import { FailureReason, type CallUsage, type WasmSettings } from '@process-sandbox/abstractions';
import type { Implementation, ImplementationSource, LoadSettings } from './implementation.js';
import { readPinned } from './integrity.js';
import { StartupFailure } from './startup-failure.js';
import { ABI_EXPORTS, ABI_SECTION, ArgumentError, liftResult, lowerArguments, readDeclarations, usesMemory, type AbiInstance, type Signature } from './wasm-abi.js';
import { customSections, definedMemories, withMemoryMaximum } from './wasm-binary.js';
import { FUEL_EXHAUSTED, FUEL_GLOBAL, instrumentFuel } from './wasm-fuel.js';
import { HostCallLog, hostImports, loadHostFunctions, type HostContext } from './wasm-host-functions.js';
import { reportsUsage, WasmLimitError } from './wasm-report.js';
import { WebAssembly, type WasmExports, type WasmGlobal, type WasmImports, type WasmInstance, type WasmMemory, type WasmModule } from './wasm-api.js';

const PAGE = 64 * 1024;
const HOST_MODULE = 'host';
const WASI_MODULE = 'wasi_snapshot_preview1';

/** Everything one load prepared; each instance is made from it. */
interface Prepared {
  module: WasmModule;
  settings: WasmSettings;
  methods: Map<string, { arity: number; signature: Signature | undefined }>;
  hostFunctions: Awaited<ReturnType<typeof loadHostFunctions>> | undefined;
  maxPages: number | undefined;
  /** The ABI custom sections' payloads. */
  abi: Uint8Array[];
  /** `kind:name` of every export. */
  exportNames: Set<string>;
}

function fail(message: string, cause?: unknown): never {
  throw new StartupFailure(message, cause === undefined ? undefined : { cause });
}

/** Caps the memory: refused if the module declares more, its maximum set if it declares none. */
function capMemory(bytes: Uint8Array, maxMemoryMB: number | undefined, path: string): { bytes: Uint8Array; maxPages: number | undefined } {
  let memories;
  try {
    memories = definedMemories(bytes);
  } catch (error) {
    fail(`${path} is not a valid WebAssembly module: ${(error as Error).message}`, error);
  }
  if (memories.length > 1) fail(`${path} defines ${memories.length} memories; a plugin may define one`);
  const memory = memories[0];
  // Without a cap there is none to report: a trap at the module's own maximum is an ordinary trap.
  if (maxMemoryMB === undefined) return { bytes, maxPages: undefined };
  const cap = (maxMemoryMB * 1024 * 1024) / PAGE;
  if (memory === undefined) return { bytes, maxPages: undefined };
  if (memory.flags > 1) fail(`${path} declares a shared or 64-bit memory (limits flags ${memory.flags}), which wasm.maxMemoryMB cannot cap`);
  if (memory.initial > cap) fail(`${path} starts with ${(memory.initial * PAGE) / 2 ** 20} MiB of memory (${memory.initial} pages), more than wasm.maxMemoryMB (${maxMemoryMB} MiB, ${cap} pages)`);
  if (memory.maximum !== undefined && memory.maximum > cap) fail(`${path} declares a memory maximum of ${(memory.maximum * PAGE) / 2 ** 20} MiB (${memory.maximum} pages), more than wasm.maxMemoryMB (${maxMemoryMB} MiB, ${cap} pages); lower the module's maximum or raise the cap`);
  if (memory.maximum !== undefined) return { bytes, maxPages: memory.maximum };
  return { bytes: withMemoryMaximum(bytes, cap), maxPages: cap };
}

/** Every import must be one the pool provides: the granted host functions, WASI when it is on. */
function checkImports(module: WasmModule, settings: WasmSettings, path: string): void {
  const granted = new Set(settings.hostFunctions?.grant ?? []);
  const problems: string[] = [];
  for (const { module: from, name, kind } of WebAssembly.Module.imports(module)) {
    const what = `${from}.${name}`;
    if (kind !== 'function') problems.push(`${what} (a ${kind}: a plugin defines its own memory, tables and globals)`);
    else if (from === HOST_MODULE && !granted.has(name)) problems.push(`${what} (not granted: wasm.hostFunctions.grant ${granted.size ? `lists ${[...granted].join(', ')}` : 'is empty'})`);
    else if (from === WASI_MODULE && settings.wasi === undefined) problems.push(`${what} (WASI is off: set wasm.wasi)`);
    else if (from !== HOST_MODULE && from !== WASI_MODULE) problems.push(`${what} (nothing provides the module '${from}': a plugin imports only ${HOST_MODULE}.* and, with wasm.wasi, ${WASI_MODULE}.*)`);
  }
  if (problems.length > 0) fail(`${path} imports what the pool does not grant: ${problems.join('; ')}`);
}

async function prepare(path: string, settings: LoadSettings): Promise<Prepared> {
  const wasm = settings.wasm ?? { auditHostCalls: false };
  let bytes: Uint8Array = await readPinned(path, settings.integrity);
  const abi = (() => {
    try {
      return customSections(bytes, ABI_SECTION);
    } catch (error) {
      return fail(`${path} is not a valid WebAssembly module: ${(error as Error).message}`, error);
    }
  })();
  const capped = capMemory(bytes, wasm.maxMemoryMB, path);
  bytes = capped.bytes;
  let module: WasmModule;
  try {
    module = await WebAssembly.compile(bytes);
  } catch (error) {
    fail(`${path} is not a valid WebAssembly module: ${(error as Error).message}`, error);
  }
  const imports = WebAssembly.Module.imports(module);
  if (imports.some((i) => i.kind === 'memory')) fail(`${path} imports its memory; a plugin must define (and export) its own`);
  checkImports(module, wasm, path);
  const functions = WebAssembly.Module.exports(module).filter((e) => e.kind === 'function').map((e) => e.name);
  const reserved = functions.filter((n) => n.startsWith('__ps_'));
  if (reserved.length > 0) fail(`${path} exports ${reserved.join(', ')}: names starting with __ps_ are the sandbox's own`);
  if (!functions.some((n) => !ABI_EXPORTS.has(n))) fail(`${path} exports no functions to call (alloc, dealloc, _initialize and _start are not methods)`);
  const exportNames = new Set(WebAssembly.Module.exports(module).map((e) => `${e.kind}:${e.name}`));
  if (wasm.maxMemoryMB !== undefined && definedMemories(bytes).length === 1 && !exportNames.has('memory:memory')) fail(`${path} must export its memory as 'memory' for wasm.maxMemoryMB to be enforced`);
  if (wasm.fuelPerCall !== undefined) module = await WebAssembly.compile(await instrumentFuel(bytes, wasm.fuelPerCall));
  const hostFunctions = wasm.hostFunctions ? await loadHostFunctions(wasm.hostFunctions) : undefined;
  return { module, settings: wasm, methods: new Map(), hostFunctions, maxPages: capped.maxPages, abi, exportNames };
}

/**
 * The methods and their ABI, checked against the first instance's exports: a function's parameter
 * count is its `length` there (the JavaScript API tells it of an instance's functions only).
 */
function settleContract(p: Prepared, exports: WasmExports, path: string): void {
  const functions = new Map<string, number>();
  for (const [name, value] of Object.entries(exports)) if (typeof value === 'function') functions.set(name, value.length);
  const declared = readDeclarations(p.abi, functions);
  for (const [name, arity] of functions) if (!ABI_EXPORTS.has(name) && name !== FUEL_GLOBAL) p.methods.set(name, { arity, signature: declared.get(name) });
  const needing = [...p.methods].filter(([, m]) => m.signature && usesMemory(m.signature)).map(([n]) => n);
  if (needing.length === 0) return;
  if (!p.exportNames.has('memory:memory')) fail(`${path}: ${needing.join(', ')} take or return strings or bytes, so the module must export its memory as 'memory'`);
  const takes = needing.filter((n) => p.methods.get(n)!.signature!.params.some((t) => t === 'string' || t === 'bytes'));
  if (takes.length > 0 && !p.exportNames.has('function:alloc')) fail(`${path}: ${takes.join(', ')} take strings or bytes, so the module must export alloc(len: i32) -> i32`);
}

/** One live instance, with what the ABI and the limits need of it. */
interface Live extends AbiInstance {
  exports: WasmExports;
  fuel: WasmGlobal | undefined;
}

async function instantiate(p: Prepared, log: HostCallLog | undefined, path: string): Promise<Live> {
  const live = {} as Live;
  const context: HostContext = {
    get memory() {
      return live.memory;
    },
    readString: (ptr, len) => Buffer.from(readBytes(live, ptr, len)).toString('utf8'),
    readBytes: (ptr, len) => readBytes(live, ptr, len).slice(),
  };
  const imports: WasmImports = {};
  if (p.hostFunctions) imports[HOST_MODULE] = hostImports(p.hostFunctions, context, log);
  let wasi: { initialize(instance: object): void } | undefined;
  if (p.settings.wasi) {
    const { WASI } = await import('node:wasi');
    const w = new WASI({ version: 'preview1', args: p.settings.wasi.args, env: p.settings.wasi.env, preopens: p.settings.wasi.preopens, returnOnExit: true });
    Object.assign(imports, w.getImportObject());
    wasi = w;
  }
  let instance: WasmInstance;
  try {
    instance = await WebAssembly.instantiate(p.module, imports);
    wasi?.initialize(instance);
  } catch (error) {
    fail(`instantiating ${path} failed: ${(error as Error).message}`, error);
  }
  const e = instance.exports;
  live.exports = e;
  live.memory = e.memory instanceof WebAssembly.Memory ? e.memory : undefined;
  live.alloc = typeof e.alloc === 'function' ? (e.alloc as (len: number) => number) : undefined;
  live.dealloc = typeof e.dealloc === 'function' ? (e.dealloc as (ptr: number, len: number) => unknown) : undefined;
  live.fuel = e[FUEL_GLOBAL] instanceof WebAssembly.Global ? e[FUEL_GLOBAL] : undefined;
  return live;
}

function readBytes(live: Live, ptr: number, len: number): Uint8Array {
  if (live.memory === undefined) throw new RangeError('the module exports no memory: there is nothing to read');
  const memory = new Uint8Array(live.memory.buffer);
  if (!Number.isInteger(ptr) || !Number.isInteger(len) || ptr < 0 || len < 0 || ptr + len > memory.length) throw new RangeError(`ptr ${ptr}, len ${len} lies outside the module's memory of ${memory.length} bytes`);
  return memory.subarray(ptr, ptr + len);
}

/** An implementation object over its own instance, which it replaces after a trap. */
async function createImplementation(p: Prepared, path: string, first?: { live: Live; log: HostCallLog | undefined }): Promise<Implementation> {
  const log = first ? first.log : p.settings.auditHostCalls ? new HostCallLog() : undefined;
  let live = first?.live ?? (await instantiate(p, log, path));
  let usage: CallUsage | undefined;
  const budget = p.settings.fuelPerCall;
  // A reset that fails (a start function that traps only sometimes) leaves the instance stale: the
  // call that needed it keeps its own error, and the next call tries again before it runs.
  let stale = false;
  const reset = async (): Promise<void> => {
    try {
      live = await instantiate(p, log, path);
      stale = false;
    } catch {
      stale = true;
    }
  };
  // No prototype: an export named __proto__ (or anything of Object.prototype's) is just a method.
  const implementation = Object.create(null) as Implementation;
  reportsUsage(implementation, () => {
    const u = usage;
    usage = undefined;
    return u;
  });
  for (const [name, { arity, signature }] of p.methods) {
    const method = async (...args: unknown[]) => {
      if (stale) live = await instantiate(p, log, path).then((fresh) => ((stale = false), fresh));
      const current = live;
      if (current.fuel && budget !== undefined) current.fuel.value = BigInt(budget);
      log?.take();
      try {
        const { values, buffers } = lowerArguments(name, signature, arity, args, current);
        const raw = (current.exports[name] as (...a: unknown[]) => unknown)(...values);
        const value = liftResult(name, signature, raw, current);
        // Last allocated, first freed: a stack-like allocator gets all of it back.
        for (const [ptr, len] of buffers.reverse()) current.dealloc?.(ptr, len);
        return value;
      } catch (error) {
        // Arguments that do not fit ran no plugin code; anything else (alloc included) did.
        if (error instanceof ArgumentError) throw error;
        const exhausted = current.fuel !== undefined && (current.fuel.value as bigint) === FUEL_EXHAUSTED;
        const atCap = p.maxPages !== undefined && current.memory !== undefined && current.memory.buffer.byteLength >= p.maxPages * PAGE;
        await reset();
        if (exhausted) throw new WasmLimitError(FailureReason.FuelExhausted, `${name}() used up its fuel (wasm.fuelPerCall ${budget}); the instance was reset`);
        if (atCap && error instanceof WebAssembly.RuntimeError) {
          throw new WasmLimitError(FailureReason.WasmMemoryLimit, `${name}() trapped with its memory at the cap of ${(p.maxPages! * PAGE) / 2 ** 20} MiB (${String((error as Error).message)}); the instance was reset`);
        }
        throw error;
      } finally {
        usage = report(current, budget, log);
      }
    };
    Object.defineProperty(implementation, name, { value: method, enumerable: true, writable: false, configurable: false });
  }
  return implementation;
}

function report(live: Live, budget: number | undefined, log: HostCallLog | undefined): CallUsage | undefined {
  const usage: CallUsage = {};
  if (live.fuel && budget !== undefined) {
    const left = live.fuel.value as bigint;
    usage.fuel = left === FUEL_EXHAUSTED ? budget : budget - Number(left);
  }
  if (log) Object.assign(usage, log.take());
  return Object.keys(usage).length > 0 ? usage : undefined;
}

export async function loadWasmImplementation(path: string, settings: LoadSettings): Promise<{ implementation: Implementation; source: ImplementationSource }> {
  const prepared = await prepare(path, settings);
  const log = prepared.settings.auditHostCalls ? new HostCallLog() : undefined;
  const live = await instantiate(prepared, log, path);
  settleContract(prepared, live.exports, path);
  const source: ImplementationSource = { create: async () => ({ instance: await createImplementation(prepared, path) }) };
  return { implementation: await createImplementation(prepared, path, { live, log }), source };
}

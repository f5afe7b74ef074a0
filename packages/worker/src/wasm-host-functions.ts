/**
 * Host functions by capability. WebAssembly imports are synchronous, so host functions cannot be a
 * round trip to the host process: they are a JavaScript module of the host application's, loaded
 * in the worker beside the plugin but outside its sandbox (the plugin reaches only what it imports,
 * and imports only what the pool grants, by name, as `host.<name>`). An import not granted fails
 * the load naming it. Each host function runs with `this` bound to a small view of the calling
 * instance (`memory`, `readString`, `readBytes`), so it can read what the plugin passes as
 * pointer and length. When auditing, every call is recorded (name, arguments, result or error,
 * bounded) and the records travel back with the call's reply.
 */
import { pathToFileURL } from 'node:url';
import { types } from 'node:util';
import { MAX_HOST_CALL_ARGS, MAX_HOST_CALL_RECORDS, MAX_HOST_CALL_TEXT, type HostCallRecord, type WasmSettings } from '@process-sandbox/abstractions';
import { StartupFailure } from './startup-failure.js';
import type { WasmMemory } from './wasm-api.js';

type HostFunction = (this: HostContext, ...args: unknown[]) => unknown;

/** `this` inside a host function. */
export interface HostContext {
  /** The calling instance's exported memory, if it exports one. */
  readonly memory: WasmMemory | undefined;
  readString(ptr: number, len: number): string;
  readBytes(ptr: number, len: number): Uint8Array;
}

/** The granted functions of the host functions module, by name. */
export async function loadHostFunctions(settings: NonNullable<WasmSettings['hostFunctions']>): Promise<Map<string, HostFunction>> {
  let namespace: Record<string, unknown>;
  try {
    namespace = (await import(pathToFileURL(settings.module).href)) as Record<string, unknown>;
  } catch (error) {
    throw new StartupFailure(`loading wasm.hostFunctions.module ${settings.module} threw: ${(error as Error)?.message ?? String(error)}`, { cause: error });
  }
  const functions = new Map<string, HostFunction>();
  for (const name of settings.grant) {
    const fn = namespace[name] ?? (namespace.default as Record<string, unknown> | undefined)?.[name];
    if (typeof fn !== 'function') throw new StartupFailure(`wasm.hostFunctions.grant names '${name}', but ${settings.module} exports no function '${name}'`);
    functions.set(name, fn as HostFunction);
  }
  return functions;
}

/** A call's audit records, bounded: past MAX_HOST_CALL_RECORDS only a count. */
export class HostCallLog {
  records: HostCallRecord[] = [];
  dropped = 0;

  take(): { hostCalls: HostCallRecord[]; hostCallsDropped?: number } {
    const out = this.dropped > 0 ? { hostCalls: this.records, hostCallsDropped: this.dropped } : { hostCalls: this.records };
    this.records = [];
    this.dropped = 0;
    return out;
  }

  add(record: HostCallRecord): void {
    if (this.records.length < MAX_HOST_CALL_RECORDS) this.records.push(record);
    else this.dropped++;
  }
}

function wasmValue(value: unknown): number | bigint | undefined {
  return typeof value === 'number' || typeof value === 'bigint' ? value : undefined;
}

/** The `host` import object: each granted function wrapped to bind its context, refuse a Promise, and record the call. */
export function hostImports(functions: Map<string, HostFunction>, context: HostContext, log: HostCallLog | undefined): Record<string, (...args: unknown[]) => unknown> {
  const imports: Record<string, (...args: unknown[]) => unknown> = {};
  for (const [name, fn] of functions) {
    imports[name] = (...args: unknown[]) => {
      const record: HostCallRecord | undefined = log && { fn: name, args: args.slice(0, MAX_HOST_CALL_ARGS).map((a) => wasmValue(a) ?? 0) };
      if (record) log!.add(record);
      try {
        const result = fn.apply(context, args);
        if (types.isPromise(result)) {
          result.catch(() => {}); // it is refused, not awaited: its rejection is nobody's
          throw new TypeError(`host function '${name}' returned a Promise; WebAssembly imports are synchronous`);
        }
        const value = wasmValue(result);
        if (record && value !== undefined) record.result = value;
        return result;
      } catch (error) {
        if (record) record.error = String((error as Error)?.message ?? error).slice(0, MAX_HOST_CALL_TEXT);
        throw error;
      }
    };
  }
  return imports;
}

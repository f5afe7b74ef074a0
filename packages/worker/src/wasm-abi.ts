/**
 * How JavaScript values cross into a WebAssembly export and back (docs/webassembly.md, "The ABI").
 *
 * Numbers need nothing: an i32, f32 or f64 parameter takes a number, an i64 a BigInt (or a safe
 * integer, converted). Strings (UTF-8) and bytes live in the module's linear memory: for each such
 * argument the worker calls the module's `alloc(len) -> ptr`, copies the bytes there and passes
 * `ptr, len` as two i32 parameters; a string or bytes result is an i64 `(ptr << 32) | len`, copied
 * out. `dealloc(ptr, len)`, when the module exports it, is called for every buffer once the call
 * is done with it. Which parameters are strings or bytes is declared in the module's custom section
 * `process-sandbox.abi` (JSON); an export it does not declare takes and returns numbers only.
 */
import { StartupFailure } from './startup-failure.js';
import type { WasmMemory } from './wasm-api.js';

export const ABI_SECTION = 'process-sandbox.abi';
const VALUE_TYPES = ['i32', 'i64', 'f32', 'f64', 'string', 'bytes'] as const;
type ValueType = (typeof VALUE_TYPES)[number];
export type ResultType = ValueType | 'void';

export interface Signature {
  params: ValueType[];
  result: ResultType | undefined;
}

/** Module exports the ABI itself uses, never served as methods. */
export const ABI_EXPORTS: ReadonlySet<string> = new Set(['memory', 'alloc', 'dealloc', '_initialize', '_start']);

/** The declarations of the ABI section (JSON), checked against the module's function exports. */
export function readDeclarations(sections: Uint8Array[], functions: Map<string, number>): Map<string, Signature> {
  const declared = new Map<string, Signature>();
  if (sections.length === 0) return declared;
  if (sections.length > 1) throw new StartupFailure(`the module has ${sections.length} '${ABI_SECTION}' custom sections; it may have one`);
  let json: unknown;
  try {
    json = JSON.parse(Buffer.from(sections[0]!).toString('utf8'));
  } catch (error) {
    throw new StartupFailure(`the '${ABI_SECTION}' custom section is not JSON: ${(error as Error).message}`);
  }
  const entries = (json as { functions?: unknown })?.functions;
  if (typeof entries !== 'object' || entries === null || Array.isArray(entries)) throw new StartupFailure(`the '${ABI_SECTION}' section must be {"functions": {"name": {"params": [...], "result": "..."}}}`);
  for (const [name, value] of Object.entries(entries)) {
    const where = `the '${ABI_SECTION}' section declares '${name}'`;
    const length = functions.get(name);
    if (length === undefined) throw new StartupFailure(`${where}, which the module does not export as a function`);
    const { params = [], result } = (value ?? {}) as { params?: unknown; result?: unknown };
    if (!Array.isArray(params) || params.some((p) => !VALUE_TYPES.includes(p))) throw new StartupFailure(`${where} with params ${JSON.stringify(params)}; each must be one of ${VALUE_TYPES.join(', ')}`);
    if (result !== undefined && result !== 'void' && !VALUE_TYPES.includes(result as ValueType)) throw new StartupFailure(`${where} with result ${JSON.stringify(result)}; expected one of ${VALUE_TYPES.join(', ')}, void`);
    const slots = (params as ValueType[]).reduce((n, p) => n + (p === 'string' || p === 'bytes' ? 2 : 1), 0);
    if (slots !== length) throw new StartupFailure(`${where} with ${slots} WebAssembly parameters (strings and bytes take two: ptr, len), but the function has ${length}`);
    declared.set(name, { params: params as ValueType[], result: result as ResultType | undefined });
  }
  return declared;
}

export function usesMemory(signature: Signature): boolean {
  return [...signature.params, signature.result].some((t) => t === 'string' || t === 'bytes');
}

/** A call's arguments do not fit its signature: found before any plugin code ran. */
export class ArgumentError extends TypeError {
  override name = 'TypeError';
}

/** What marshalling needs of an instance. */
export interface AbiInstance {
  memory: WasmMemory | undefined;
  alloc: ((len: number) => number) | undefined;
  dealloc: ((ptr: number, len: number) => unknown) | undefined;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: true });

function inBounds(instance: AbiInstance, ptr: number, len: number, what: string): Uint8Array {
  const memory = new Uint8Array(instance.memory!.buffer);
  if (!Number.isInteger(ptr) || ptr < 0 || ptr + len > memory.length) throw new RangeError(`${what} (ptr ${ptr}, len ${len}) lies outside the module's memory of ${memory.length} bytes`);
  return memory;
}

/** The WebAssembly arguments for `args`, and the buffers to free after the call. */
export function lowerArguments(method: string, signature: Signature | undefined, arity: number, args: unknown[], instance: AbiInstance): { values: unknown[]; buffers: [number, number][] } {
  const types: ValueType[] = signature?.params ?? Array.from({ length: arity }, () => 'f64');
  if (args.length !== types.length) throw new ArgumentError(`${method}() takes ${types.length} argument${types.length === 1 ? '' : 's'}, got ${args.length}`);
  // Every argument is checked before any is copied in: a wrong one allocates nothing.
  const lowered = types.map((type, i) => {
    const arg = args[i];
    if (type === 'string' || type === 'bytes') {
      const bytes = type === 'string' ? (typeof arg === 'string' ? encoder.encode(arg) : undefined) : arg instanceof Uint8Array ? arg : undefined;
      if (bytes === undefined) throw new ArgumentError(`argument ${i + 1} of ${method}() must be ${type === 'string' ? 'a string' : 'a Uint8Array or Buffer'}`);
      return bytes;
    }
    if (type === 'i64' || (signature === undefined && typeof arg === 'bigint')) {
      if (typeof arg === 'bigint') return arg;
      if (Number.isSafeInteger(arg)) return BigInt(arg as number);
      throw new ArgumentError(`argument ${i + 1} of ${method}() is an i64: a BigInt or a safe integer`);
    }
    if (typeof arg !== 'number' && typeof arg !== 'boolean') throw new ArgumentError(`argument ${i + 1} of ${method}() must be a number${signature ? ` (${type})` : ''}`);
    return Number(arg);
  });
  const values: unknown[] = [];
  const buffers: [number, number][] = [];
  for (const value of lowered) {
    if (!(value instanceof Uint8Array)) {
      values.push(value);
      continue;
    }
    const ptr = instance.alloc!(value.length) >>> 0;
    inBounds(instance, ptr, value.length, `alloc(${value.length}) returned a buffer that`).set(value, ptr);
    buffers.push([ptr, value.length]);
    values.push(ptr, value.length);
  }
  return { values, buffers };
}

/** The JavaScript value of a WebAssembly result, per its declared type. */
export function liftResult(method: string, signature: Signature | undefined, raw: unknown, instance: AbiInstance): unknown {
  const type = signature?.result;
  if (type === 'void') return undefined;
  if (type !== 'string' && type !== 'bytes') return raw;
  if (typeof raw !== 'bigint') throw new TypeError(`${method}() is declared to return ${type}: an i64 (ptr << 32 | len), but returned ${typeof raw}`);
  const ptr = Number(BigInt.asUintN(64, raw) >> 32n);
  const len = Number(BigInt.asUintN(32, raw));
  const memory = inBounds(instance, ptr, len, `the ${type} ${method}() returned`);
  const copy = memory.slice(ptr, ptr + len);
  instance.dealloc?.(ptr, len);
  if (type === 'bytes') return copy;
  try {
    return decoder.decode(copy);
  } catch {
    throw new TypeError(`${method}() returned a string that is not valid UTF-8`);
  }
}

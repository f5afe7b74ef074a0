/**
 * The `integrity` and `wasm` options: checked up front like every option, then handed to each
 * worker in its Init settings (the worker enforces them: packages/worker/src/wasm-*.ts).
 */
import { existsSync, statSync } from 'node:fs';
import { isAbsolute } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ConfigurationError, type WasmSettings } from '@process-sandbox/abstractions';

/** How a `.wasm` workerModule runs: its budget, its memory cap, WASI, and the host functions it may import. */
export interface WasmOptions {
  /** Fuel per call: one per function entry, loop iteration and function exit; the call traps when it runs out. Default: unmetered. */
  fuelPerCall?: number;
  /** Cap on the module's linear memory, in MiB. Default: the module's own maximum. */
  maxMemoryMB?: number;
  /** WASI preview 1 through node:wasi: `true`, or its arguments, environment and preopened directories. Default: off. */
  wasi?: boolean | WasiOptions;
  /** The host functions the module may import, as `host.<name>`, each granted by name. Default: none. */
  hostFunctions?: WasmHostFunctions;
  /** Record every host function call in the call's `callSettled` event. Default false. */
  auditHostCalls?: boolean;
}

export interface WasiOptions {
  /** The module's argv. Default `[]`. */
  args?: string[];
  /** The module's environment (none of the worker's). Default `{}`. */
  env?: Record<string, string>;
  /** Guest path → host directory; nothing else of the file system is visible. Default `{}`. */
  preopens?: Record<string, string>;
}

export interface WasmHostFunctions {
  /** Absolute path or file: URL of a JavaScript module whose exported functions are the host functions. */
  module: string | URL;
  /** The names of its exports the module may import (`host.<name>`). */
  grant: string[];
}

const WASM_KEYS = ['fuelPerCall', 'maxMemoryMB', 'wasi', 'hostFunctions', 'auditHostCalls'];
const SRI = /^(sha256|sha384|sha512)-([A-Za-z0-9+/]+={0,2})$/;
const DIGEST_BYTES: Record<string, number> = { sha256: 32, sha384: 48, sha512: 64 };
const IDENTIFIER = /^[A-Za-z_$][\w$]{0,127}$/;

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  return typeof value === 'string' ? `'${value}'` : typeof value === 'object' ? 'an object' : `${typeof value} ${String(value)}`;
}

/** `integrity`: one Subresource Integrity digest of the workerModule file. */
export function resolveIntegrity(value: unknown): string | undefined {
  if (value === undefined) return undefined;
  const match = typeof value === 'string' ? SRI.exec(value) : null;
  if (!match) throw new ConfigurationError('integrity', `expected 'sha256-', 'sha384-' or 'sha512-' followed by the base64 digest, got ${describe(value)} (make one with: openssl dgst -sha384 -binary FILE | openssl base64 -A)`);
  if (Buffer.from(match[2]!, 'base64').length !== DIGEST_BYTES[match[1]!]) throw new ConfigurationError('integrity', `the ${match[1]} digest must be ${DIGEST_BYTES[match[1]!]} bytes, got ${Buffer.from(match[2]!, 'base64').length}`);
  return value as string;
}

function absolutePath(name: string, value: unknown): string {
  if (value instanceof URL || (typeof value === 'string' && value.startsWith('file:'))) {
    try {
      return fileURLToPath(value as string | URL);
    } catch (error) {
      throw new ConfigurationError(name, `not a valid file: URL (${(error as Error).message})`);
    }
  }
  if (typeof value !== 'string' || !isAbsolute(value)) throw new ConfigurationError(name, `expected an absolute path or a file: URL, got ${describe(value)}`);
  return value;
}

function count(name: string, value: unknown, max: number): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > max) throw new ConfigurationError(name, `must be a whole number from 1 to ${max}, got ${describe(value)}`);
  return value;
}

function stringRecord(name: string, value: unknown): Record<string, string> {
  if (value === undefined) return {};
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new ConfigurationError(name, `expected an object of strings, got ${describe(value)}`);
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(value)) {
    if (typeof v !== 'string') throw new ConfigurationError(name, `value of ${k} must be a string, got ${describe(v)}`);
    out[k] = v;
  }
  return out;
}

function wasi(value: unknown): WasmSettings['wasi'] {
  if (value === undefined || value === false) return undefined;
  if (value === true) return { args: [], env: {}, preopens: {} };
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new ConfigurationError('wasm.wasi', `expected true or { args?, env?, preopens? }, got ${describe(value)}`);
  const w = value as WasiOptions;
  for (const key of Object.keys(w)) if (!['args', 'env', 'preopens'].includes(key)) throw new ConfigurationError(`wasm.wasi.${key}`, 'unknown option; known are args, env, preopens');
  if (w.args !== undefined && (!Array.isArray(w.args) || w.args.some((a) => typeof a !== 'string'))) throw new ConfigurationError('wasm.wasi.args', `expected an array of strings, got ${describe(w.args)}`);
  const preopens = stringRecord('wasm.wasi.preopens', w.preopens);
  for (const [guest, host] of Object.entries(preopens)) {
    if (!isAbsolute(host) || !existsSync(host) || !statSync(host).isDirectory()) throw new ConfigurationError('wasm.wasi.preopens', `'${guest}' maps to '${host}', which is not an absolute path to a directory`);
  }
  return { args: [...(w.args ?? [])], env: stringRecord('wasm.wasi.env', w.env), preopens };
}

function hostFunctions(value: unknown): WasmSettings['hostFunctions'] {
  if (value === undefined) return undefined;
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new ConfigurationError('wasm.hostFunctions', `expected { module, grant }, got ${describe(value)}`);
  const h = value as WasmHostFunctions;
  for (const key of Object.keys(h)) if (!['module', 'grant'].includes(key)) throw new ConfigurationError(`wasm.hostFunctions.${key}`, 'unknown option; known are module, grant');
  const module = absolutePath('wasm.hostFunctions.module', h.module);
  if (!Array.isArray(h.grant) || h.grant.length === 0 || h.grant.some((g) => typeof g !== 'string' || !IDENTIFIER.test(g))) {
    throw new ConfigurationError('wasm.hostFunctions.grant', `expected a non-empty array of function names (each granted explicitly), got ${describe(h.grant)}`);
  }
  return { module, grant: [...new Set(h.grant)] };
}

/** `wasm`: only for a `.wasm` workerModule. */
export function resolveWasm(value: unknown, workerModule: string): WasmSettings | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new ConfigurationError('wasm', `expected an object, got ${describe(value)}`);
  for (const key of Object.keys(value)) if (!WASM_KEYS.includes(key)) throw new ConfigurationError(`wasm.${key}`, `unknown option; known are ${WASM_KEYS.join(', ')}`);
  if (!/\.wasm$/i.test(workerModule)) throw new ConfigurationError('wasm', `applies to a .wasm workerModule only, got '${workerModule}'`);
  const w = value as WasmOptions;
  const settings: WasmSettings = { auditHostCalls: false };
  const fuel = count('wasm.fuelPerCall', w.fuelPerCall, Number.MAX_SAFE_INTEGER);
  if (fuel !== undefined) settings.fuelPerCall = fuel;
  // wasm32 addresses 4 GiB at most: 65 536 pages of 64 KiB.
  const memory = count('wasm.maxMemoryMB', w.maxMemoryMB, 4096);
  if (memory !== undefined) settings.maxMemoryMB = memory;
  const w1 = wasi(w.wasi);
  if (w1 !== undefined) settings.wasi = w1;
  const h = hostFunctions(w.hostFunctions);
  if (h !== undefined) settings.hostFunctions = h;
  if (w.auditHostCalls !== undefined) {
    if (typeof w.auditHostCalls !== 'boolean') throw new ConfigurationError('wasm.auditHostCalls', `expected a boolean, got ${describe(w.auditHostCalls)}`);
    if (w.auditHostCalls && h === undefined) throw new ConfigurationError('wasm.auditHostCalls', 'needs wasm.hostFunctions: there are no host calls to record');
    settings.auditHostCalls = w.auditHostCalls;
  }
  return settings;
}

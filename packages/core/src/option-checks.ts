/**
 * The checks of single option values, shared by resolveOptions and reloadOptions (options.ts): each
 * takes what the user gave and returns the value the pool uses, or throws a ConfigurationError that
 * names the option and says what to fix.
 */
import { existsSync } from 'node:fs';
import { isAbsolute } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ConfigurationError, encodeValue } from '@process-sandbox/abstractions';
import { minimalEnvironment, passthroughNames } from './isolation.js';
import { checkRuntime } from './runtime-check.js';
import { forPool, silentLogger, type Logger, type PoolLogger } from './logger.js';
import type { ProcessProxyOptions } from './options.js';

export function integer(input: ProcessProxyOptions, name: keyof ProcessProxyOptions, fallback: number, min: number, max: number): number {
  const value = input[name];
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || Number.isNaN(value)) throw new ConfigurationError(name, `expected a number, got ${describe(value)}`);
  if (value !== Infinity && !Number.isInteger(value)) throw new ConfigurationError(name, `expected a whole number, got ${value}`);
  if (value === Infinity && max !== Infinity) throw new ConfigurationError(name, `must be finite (at most ${max})`);
  if (value < min || value > max) throw new ConfigurationError(name, `must be between ${min} and ${max}, got ${value}`);
  return value;
}

export function string(input: ProcessProxyOptions, name: keyof ProcessProxyOptions, fallback: string): string {
  const value = input[name];
  if (value === undefined) return fallback;
  if (typeof value !== 'string' || value === '') throw new ConfigurationError(name, `expected a non-empty string, got ${describe(value)}`);
  return value;
}

export function boolean(input: ProcessProxyOptions, name: keyof ProcessProxyOptions, fallback: boolean): boolean {
  const value = input[name];
  if (value === undefined) return fallback;
  if (typeof value !== 'boolean') throw new ConfigurationError(name, `expected a boolean, got ${describe(value)}`);
  return value;
}

export function stringArray(input: ProcessProxyOptions, name: keyof ProcessProxyOptions): string[] {
  const value = input[name];
  if (value === undefined) return [];
  if (!Array.isArray(value) || value.some((v) => typeof v !== 'string')) throw new ConfigurationError(name, `expected an array of strings, got ${describe(value)}`);
  return [...value];
}

export function modulePath(value: unknown): string {
  if (value === undefined) throw new ConfigurationError('workerModule', 'is required: the absolute path or file: URL of the module that implements the interface');
  let path: string;
  if (value instanceof URL || (typeof value === 'string' && value.startsWith('file:'))) {
    try {
      path = fileURLToPath(value as string | URL);
    } catch (error) {
      throw new ConfigurationError('workerModule', `not a valid file: URL (${(error as Error).message})`);
    }
  } else if (typeof value === 'string') {
    if (!isAbsolute(value)) throw new ConfigurationError('workerModule', `must be an absolute path or a file: URL, got '${value}' (try path.resolve() or new URL('./impl.js', import.meta.url))`);
    path = value;
  } else {
    throw new ConfigurationError('workerModule', `expected a string or URL, got ${describe(value)}`);
  }
  return path;
}

export function execPath(value: unknown): string {
  if (value === undefined) return process.execPath;
  if (typeof value !== 'string' || value === '') throw new ConfigurationError('execPath', `expected a path to a node binary, got ${describe(value)}`);
  if (!isAbsolute(value)) throw new ConfigurationError('execPath', `must be an absolute path, got '${value}'`);
  if (!existsSync(value)) throw new ConfigurationError('execPath', `no such file: ${value}`);
  checkRuntime(value);
  return value;
}

export function environment(value: unknown, passthrough: unknown): Record<string, string | undefined> {
  const names = passthroughNames(passthrough, value !== undefined);
  if (value === undefined) return process.env;
  if (value !== 'minimal') {
    if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new ConfigurationError('env', `expected an object of strings, got ${describe(value)}`);
    for (const [k, v] of Object.entries(value)) {
      if (v !== undefined && typeof v !== 'string') throw new ConfigurationError('env', `value of ${k} must be a string, got ${describe(v)}`);
    }
    if (names.length === 0) return value as Record<string, string | undefined>;
  }
  const env = value === 'minimal' ? minimalEnvironment() : { ...(value as Record<string, string | undefined>) };
  for (const name of names) if (process.env[name] !== undefined) env[name] = process.env[name];
  return env;
}

export function directory(value: unknown): string {
  if (typeof value !== 'string' || value === '') throw new ConfigurationError('cwd', `expected a directory path, got ${describe(value)}`);
  if (!existsSync(value)) throw new ConfigurationError('cwd', `no such directory: ${value}`);
  return value;
}

export function logger(value: unknown): PoolLogger {
  if (value === undefined) return silentLogger;
  const l = value as Record<string, unknown>;
  for (const level of ['debug', 'info', 'warn', 'error']) {
    if (typeof l?.[level] !== 'function') throw new ConfigurationError('logger', `must have a ${level}() method (a pino logger or console both fit)`);
  }
  if (l.trace !== undefined && typeof l.trace !== 'function') throw new ConfigurationError('logger', 'trace, when present, must be a method');
  return forPool(value as Logger);
}

/** A wrong value as an error message names it: its type and, for a scalar, the value (never a whole object). */
export function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  return typeof value === 'string' ? `'${value}'` : typeof value === 'object' ? 'an object' : `${typeof value} ${String(value)}`;
}

export function optionalInteger(input: ProcessProxyOptions, name: keyof ProcessProxyOptions, min: number, max: number): number | undefined {
  return input[name] === undefined ? undefined : integer(input, name, 0, min, max);
}

/** workerOptions travel to every worker in its Init message: they must encode now, not fail later. */
export function workerOptions(value: unknown): unknown {
  try {
    encodeValue(value);
  } catch (error) {
    throw new ConfigurationError('workerOptions', (error as Error).message);
  }
  return value;
}

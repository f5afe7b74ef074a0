// WebAssembly fixtures, built from their WAT source at test time (wabt, a devDependency), so that
// the binaries under test are always the sources next to them. `abi` becomes the module's
// `process-sandbox.abi` custom section, as the sample's build script adds it.
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import wabtInit from 'wabt';
import { expect } from 'chai';
import { ProcessProxy, WorkerStartError } from '@process-sandbox/core';
import { appendAbiSection } from '../../samples/wasm-plugin/build.mjs';
import { rejectionOf } from './pools.mjs';

const wabt = await wabtInit();
const directory = mkdtempSync(join(tmpdir(), 'ps-wasm-'));
let built = 0;

export function watToBytes(wat, abi) {
  const module = wabt.parseWat('fixture.wat', wat, { multi_value: true, mutable_globals: true });
  try {
    const { buffer } = module.toBinary({});
    return abi === undefined ? Buffer.from(buffer) : appendAbiSection(buffer, abi);
  } finally {
    module.destroy();
  }
}

/** Writes the module for `wat` to a temporary .wasm file and returns its path. */
export function wasmFile(wat, abi) {
  const path = join(directory, `m${++built}.wasm`);
  writeFileSync(path, watToBytes(wat, abi));
  return path;
}

/** The module built from test/fixtures/wasm/<name>.wat, with <name>.abi.json when there is one. */
export function wasmFixture(name) {
  const source = new URL(`../fixtures/wasm/${name}.wat`, import.meta.url);
  let abi;
  try {
    abi = JSON.parse(readFileSync(new URL(`../fixtures/wasm/${name}.abi.json`, import.meta.url), 'utf8'));
  } catch (error) {
    if (error.code !== 'ENOENT') throw error;
  }
  return wasmFile(readFileSync(source, 'utf8'), abi);
}

export function sri(path, algorithm = 'sha384') {
  return `${algorithm}-${createHash(algorithm).update(readFileSync(path)).digest('base64')}`;
}

process.on('exit', () => rmSync(directory, { recursive: true, force: true }));

/** `ProcessProxy.create(options)` fails to start for `reason`, on the failure itself (not by the start timeout). */
export async function startFailure(options, reason) {
  const error = await rejectionOf(ProcessProxy.create(options));
  expect(error, error.stack).to.be.an.instanceOf(WorkerStartError);
  expect(error.reason).to.match(reason);
  expect(error.reason, 'failed on the failure itself, not by the start timeout').to.not.match(/did not become ready within/);
  return error;
}

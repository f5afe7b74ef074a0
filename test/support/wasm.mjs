// WebAssembly fixtures, built from their WAT source at test time (wabt, a devDependency), so that
// the binaries under test are always the sources next to them. `abi` becomes the module's
// `process-sandbox.abi` custom section, as the sample's build script adds it.
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import wabtInit from 'wabt';

const wabt = await wabtInit();
const directory = mkdtempSync(join(tmpdir(), 'ps-wasm-'));
let built = 0;

/** A custom section appended to a module: id 0, size, name, payload. */
export function withCustomSection(bytes, name, payload) {
  const leb = (n) => {
    const out = [];
    do {
      let b = n & 0x7f;
      n >>>= 7;
      if (n) b |= 0x80;
      out.push(b);
    } while (n);
    return out;
  };
  const nameBytes = Buffer.from(name);
  const body = Buffer.concat([Buffer.from(leb(nameBytes.length)), nameBytes, Buffer.from(payload)]);
  return Buffer.concat([Buffer.from(bytes), Buffer.from([0, ...leb(body.length)]), body]);
}

/** Compiles WAT text to bytes (with the ABI section when `abi` is given). */
export function watToBytes(wat, abi) {
  const module = wabt.parseWat('fixture.wat', wat, { multi_value: true, mutable_globals: true });
  try {
    const { buffer } = module.toBinary({});
    return abi === undefined ? Buffer.from(buffer) : withCustomSection(buffer, 'process-sandbox.abi', JSON.stringify(abi));
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

#!/usr/bin/env node
// Builds plugin.wasm from plugin.wat (wabt, from npm) and appends plugin.abi.json as the module's
// `process-sandbox.abi` custom section (docs/webassembly.md, "The ABI"). Any toolchain works the
// same way: compile to a core module, then append the section (appendAbiSection below).
//
//   node samples/wasm-plugin/build.mjs          writes samples/wasm-plugin/plugin.wasm
//   node samples/wasm-plugin/build.mjs --check  fails if the committed plugin.wasm is not what the source builds
import { readFileSync, writeFileSync } from 'node:fs';
import wabtInit from 'wabt';

const here = (name) => new URL(name, import.meta.url);

/** A custom section (id 0: size, name, payload) appended to a module's bytes. */
export function appendAbiSection(bytes, abi) {
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
  const name = Buffer.from('process-sandbox.abi');
  const body = Buffer.concat([Buffer.from(leb(name.length)), name, Buffer.from(JSON.stringify(abi))]);
  return Buffer.concat([Buffer.from(bytes), Buffer.from([0, ...leb(body.length)]), body]);
}

export async function build() {
  const wabt = await wabtInit();
  const module = wabt.parseWat('plugin.wat', readFileSync(here('plugin.wat'), 'utf8'), { bulk_memory: true });
  try {
    module.validate();
    return appendAbiSection(module.toBinary({}).buffer, JSON.parse(readFileSync(here('plugin.abi.json'), 'utf8')));
  } finally {
    module.destroy();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const bytes = await build();
  if (process.argv.includes('--check')) {
    if (!bytes.equals(readFileSync(here('plugin.wasm')))) {
      console.error('plugin.wasm is not what plugin.wat builds: run node samples/wasm-plugin/build.mjs');
      process.exit(1);
    }
    console.log('plugin.wasm matches its source');
  } else {
    writeFileSync(here('plugin.wasm'), bytes);
    console.log(`wrote plugin.wasm (${bytes.length} bytes)`);
  }
}

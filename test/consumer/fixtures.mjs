// What test/consumer.test.mjs writes into the fresh consumer project: a consumer in TypeScript (compiled
// under four module resolutions), one in ESM JavaScript, one in CommonJS, and the context the docs'
// code blocks take from it (see the doc-test comments in docs/getting-started.md and docs/recipes.md).

/** The implementation the consumers call. */
export const IMPL = `export class Api {
  add(a, b) { return a + b; }
  twice(x) { return typeof x === 'string' ? x + x : 2 * x; }
  echo(x) { return x; }
  fail(message) { throw Object.assign(new TypeError(message), { code: 'E_CONSUMER' }); }
}
`;

export const TS_CONSUMER = `import { ProcessProxy, ConfigurationError, RemoteError, type Logger, type PoolEvents, type ProcessProxyOptions, type Remote, type RemoteStream } from '@process-sandbox/core';

interface Api {
  add(a: number, b: number): number;
  twice(x: number): number;
  twice(x: string): string;
  echo<T>(x: T): Promise<T>;
  fail(message: string): void;
  readonly version: string;
  // Streams and callbacks (issue 17): type checks only.
  process(file: string, onProgress: (pct: number) => void): AsyncIterable<{ row: number }>;
  rows(n: number): AsyncGenerator<number>;
  compute(x: number, f: (x: number) => number): number;
}

// Types that must hold for a consumer (compile-time checks: a wrong one fails tsc).
type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
const typeChecks: [
  Equal<ReturnType<Remote<Api>['add']>, Promise<number>>,
  Equal<Remote<Api>['echo'], <T>(x: T) => Promise<T>>,
  Equal<Parameters<PoolEvents['callSettled']>[0]['outcome'], string>,
  Equal<ReturnType<Remote<Api>['process']>, Promise<RemoteStream<{ row: number }>>>,
  Equal<Parameters<Remote<Api>['process']>[1], (pct: number) => void | PromiseLike<void>>,
  Equal<ReturnType<Remote<Api>['rows']>, Promise<RemoteStream<number>>>,
  Equal<Parameters<Remote<Api>['compute']>[1], (x: number) => number | PromiseLike<number>>,
  Equal<Parameters<PoolEvents['workerEvent']>[0]['pid'], number>,
] = [true, true, true, true, true, true, true, true];
// @ts-expect-error: fields are not remote methods
type NoField = Remote<Api>['version'];

const logger: Logger = { debug() {}, info() {}, warn() {}, error() {} };
const options: ProcessProxyOptions = { workerModule: new URL('../../impl.mjs', import.meta.url), workerExport: 'Api', logger, unref: false };

await using api = await ProcessProxy.create<Api>(options);
const sum: number = await api.add(1, 2);
const text: string = await api.twice('ab'); // the string overload
const count: number = await api.twice(21); // the number overload
const echoed: { n: number } = await api.echo({ n: 7 }); // the generic stays generic
let remote = '';
try {
  await api.fail('no');
} catch (error) {
  if (error instanceof RemoteError) remote = \`\${error.remoteName} \${error.code}\`;
}
const pool = ProcessProxy.poolOf(api);
pool.on('callSettled', ({ method, outcome }) => void (method + outcome));
// @ts-expect-error: no such event
pool.on('noSuchEvent', () => {});
let refused = '';
try {
  await ProcessProxy.create<Api>({ ...options, minPoolSize: -1 });
} catch (error) {
  if (error instanceof ConfigurationError) refused = error.option;
}
console.log(JSON.stringify({ sum, text, count, echoed, remote, refused, typeChecks }));
`;

/** compilerOptions by resolution; only nodenext emits (and is run). */
export const RESOLUTIONS = {
  nodenext: { module: 'nodenext', moduleResolution: 'nodenext', outDir: 'out' },
  node16: { module: 'node16', moduleResolution: 'node16', noEmit: true },
  bundler: { module: 'esnext', moduleResolution: 'bundler', noEmit: true },
  node10: { module: 'esnext', moduleResolution: 'node10', noEmit: true },
};

export function tsconfig(resolution) {
  return JSON.stringify(
    {
      compilerOptions: {
        target: 'es2022',
        lib: ['es2023', 'esnext.disposable'],
        types: ['node'],
        strict: true,
        skipLibCheck: false,
        ...RESOLUTIONS[resolution],
      },
      // nodenext also compiles a CommonJS TypeScript file that imports the ESM package (TypeScript ≥ 5.8, Node ≥ 20.19).
      files: resolution === 'nodenext' ? ['main.ts', 'cjs.cts'] : ['main.ts'],
    },
    null,
    2,
  );
}

/** CommonJS TypeScript: compiled to require(), which loads the ES module synchronously. */
export const TS_CJS_CONSUMER = `import { join } from 'node:path';
import { ProcessProxy, type Remote } from '@process-sandbox/core';

interface Api {
  add(a: number, b: number): number;
}

async function main(): Promise<void> {
  const api: Remote<Api> = await ProcessProxy.create<Api>({ workerModule: join(__dirname, '../../impl.mjs'), workerExport: 'Api' });
  try {
    console.log(JSON.stringify({ sum: await api.add(20, 22) }));
  } finally {
    await api[Symbol.asyncDispose]();
  }
}
void main();
`;

export const ESM_CONSUMER = `import { inspect } from 'node:util';
import { ProcessProxy, ConfigurationError } from '@process-sandbox/core';

const workerModule = new URL('./impl.mjs', import.meta.url);
const api = await ProcessProxy.create({ workerModule, workerExport: 'Api' });
const out = { sum: await api.add(1, 2), described: inspect(api), string: \`\${api}\`, tag: Object.prototype.toString.call(api) };
await api[Symbol.asyncDispose]();
try {
  await ProcessProxy.create({ workerModule, workerExport: 'Api', metrics: true });
  out.metrics = 'accepted';
} catch (error) {
  out.metrics = error instanceof ConfigurationError ? error.message : String(error);
}
console.log(JSON.stringify(out));
`;

export const CJS_CONSUMER = `const { join } = require('node:path');
const { ProcessProxy } = require('@process-sandbox/core');

(async () => {
  const api = await ProcessProxy.create({ workerModule: join(__dirname, 'impl.mjs'), workerExport: 'Api' });
  try {
    console.log(JSON.stringify({ sum: await api.add(2, 3) }));
  } finally {
    await api[Symbol.asyncDispose]();
  }
})();
`;

// ─── the docs' context ────────────────────────────────────────────────────────

/** What a doc-test comment's `with=` may name, as TypeScript placed before the block. */
export const PRELUDE = {
  ProcessProxy: "import { ProcessProxy } from '@process-sandbox/core';",
  SessionLostError: "import { SessionLostError } from '@process-sandbox/core';",
  calc: [
    "import { ProcessProxy as __ProcessProxy } from '@process-sandbox/core';",
    "import type { Calculator as __Calculator } from './calculator.js';",
    "await using calc = await __ProcessProxy.create<__Calculator>({ workerModule: new URL('./calculator-impl.js', import.meta.url), workerExport: 'CalculatorImpl' });",
  ].join('\n'),
  workerModule: "const workerModule = new URL('./recipe-impl.js', import.meta.url);",
  service: "const service = await ProcessProxy.create<Legacy>({ workerModule: new URL('./recipe-impl.js', import.meta.url) });",
  editor: "const editor = await ProcessProxy.create<DocumentEditor>({ workerModule: new URL('./editor.js', import.meta.url), workerExport: 'DocumentEditor' });",
  editAll: "const editAll = async (doc: __Remote<DocumentEditor>) => { await doc.open('/data/a.doc'); return doc.save(); };",
  editAgainFromScratch: "const editAgainFromScratch = () => 'again';",
  bytes: 'const bytes = new Uint8Array([1, 2, 3]);',
  doc: "const doc = 'a document';",
  pool: 'const pool = ProcessProxy.poolOf(service);',
  logger: 'const logger = { info: (...a: unknown[]) => console.log(...a), warn: (...a: unknown[]) => console.warn(...a), error: (...a: unknown[]) => console.error(...a) };',
};

/** Every recipe file starts with these: the interfaces the recipes use. */
export const RECIPE_HEADER = [
  "import type { DocumentEditor, Legacy, Codec, LegacyCodec } from './recipe-types.js';",
  "import type { Remote as __Remote } from '@process-sandbox/core';",
].join('\n');

export const RECIPE_TYPES = `export interface DocumentEditor {
  open(path: string): void;
  replace(from: string, to: string): void;
  save(): string;
}
export interface Legacy {
  convertArchive(bytes: Uint8Array): number;
  render(url: string): string;
  preview(doc: string): string;
}
export interface Codec {
  decode(data: Uint8Array): Uint8Array;
  checksum(data: Uint8Array): number;
}
export type LegacyCodec = Codec;
`;

/** The recipes' implementations, one module under the names the recipes use. */
export const RECIPE_IMPL = `export default class Legacy {
  constructor(options) { this.options = options; }
  convertArchive(bytes) { return bytes.length; }
  render(url) { return 'rendered ' + url; }
  preview(doc) { return 'preview of ' + doc; }
}
export class LegacyServiceV2 extends Legacy {}
export class DocumentEditor {
  #text = '';
  open(path) { this.#text = 'draft version of ' + path; }
  replace(from, to) { this.#text = this.#text.replace(from, to); }
  save() { return this.#text; }
}
export class Codec {
  decode(data) { return data; }
  checksum(data) { return data.length; }
}
export class LegacyCodec extends Codec {}
export class Importer {
  #context;
  constructor(_options, context) { this.#context = context; }
  async *rows(file, onProgress) {
    const total = 2000;
    try {
      for (let id = 0; id < total; id++) {
        if (id % 500 === 0) onProgress((id * 100) / total);
        yield { id, amount: id % 10 };
      }
      onProgress(100);
    } finally {
      this.#context.emit('closed', { file });
    }
  }
}
`;
export const RECIPE_IMPL_NAMES = ['recipe-impl.js', 'editor.js', 'legacy-codec.js', 'legacy-wrapper.js'];

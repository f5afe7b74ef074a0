/**
 * The WebAssembly JavaScript API, typed for what the worker uses of it. Node has it as a global;
 * @types/node 20 does not declare it (and the DOM lib would bring a browser's globals along).
 */
export interface WasmMemory {
  readonly buffer: ArrayBuffer;
  grow(pages: number): number;
}
export interface WasmGlobal {
  value: unknown;
}
export type WasmExports = Record<string, unknown>;
export type WasmImports = Record<string, Record<string, unknown>>;
export interface WasmModule {
  readonly __brand?: 'WebAssembly.Module';
}
export interface WasmInstance {
  readonly exports: WasmExports;
}
interface Descriptor {
  module?: string;
  name: string;
  kind: 'function' | 'table' | 'memory' | 'global' | 'tag';
}

interface WebAssemblyApi {
  compile(bytes: Uint8Array): Promise<WasmModule>;
  instantiate(module: WasmModule, imports?: WasmImports): Promise<WasmInstance>;
  Instance: new (module: WasmModule, imports?: WasmImports) => WasmInstance;
  Module: {
    imports(module: WasmModule): Required<Descriptor>[];
    exports(module: WasmModule): Descriptor[];
  };
  Memory: abstract new (...args: never[]) => WasmMemory;
  Global: abstract new (...args: never[]) => WasmGlobal;
  RuntimeError: abstract new (...args: never[]) => Error;
}

export const WebAssembly = (globalThis as unknown as { WebAssembly: WebAssemblyApi }).WebAssembly;

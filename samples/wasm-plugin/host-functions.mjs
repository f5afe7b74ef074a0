// The host functions the sample plugin may import, granted one by one by the pool
// (wasm.hostFunctions: { module: <this file>, grant: ['log'] }). They run in the worker, outside the
// plugin's sandbox, with `this` bound to the calling instance's memory view.
export function log(ptr, len) {
  process.stdout.write(`[plugin] ${this.readString(ptr, len)}\n`);
}

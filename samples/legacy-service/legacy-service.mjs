// The legacy service: the implementation that process-sandbox serves from its worker processes.
// Its interface is `LegacyService` in ./legacy-service.d.mts. It is a plain class over the legacy
// C++ addon (samples/legacy-addon) or, when that is not built, over the pure-JS stand-in with the
// same defects (./js-stand-in.mjs): nothing here knows that it runs in another process.
//
// The host picks the backend and passes it as `workerOptions`:
//
//   await ProcessProxy.create({
//     workerModule: new URL('./legacy-service.mjs', import.meta.url),
//     workerExport: 'LegacyService',
//     workerOptions: { backend: 'native' }, // or 'js'
//   });
import * as native from '../legacy-addon/index.mjs';
import * as standIn from './js-stand-in.mjs';

/** @typedef {'native' | 'js'} Backend */

/** Implements the `LegacyService` interface of ./legacy-service.d.mts. */
export class LegacyService {
  /** @type {Backend} */
  #backend;
  #lib;

  /** @param {{ backend?: Backend }} [options] */
  constructor(options = {}) {
    const backend = options.backend ?? 'native';
    if (backend === 'native') {
      // Throws AddonNotBuiltError with the reason: the worker fails to start, fast and saying why.
      this.#lib = native.requireAddon();
    } else if (backend === 'js') {
      this.#lib = { ...standIn, records: standIn.recordsText };
    } else {
      throw new TypeError(`LegacyService: backend must be 'native' or 'js', got ${JSON.stringify(backend)}`);
    }
    this.#backend = backend;
  }

  backend() {
    return this.#backend;
  }

  pid() {
    return process.pid;
  }

  convert(bytes, direction = 'encode') {
    return this.#lib.convert(bytes, direction);
  }

  parse(input) {
    return this.#lib.parse(input);
  }

  leakMemory(mb) {
    return this.#lib.leakMemory(mb);
  }

  leakFds(n) {
    return this.#lib.leakFds(n);
  }

  blockingSleep(ms) {
    return this.#lib.blockingSleep(ms);
  }

  appendRecord(text) {
    return this.#lib.appendRecord(text);
  }

  counter() {
    return this.#lib.counter();
  }

  records() {
    return this.#lib.records();
  }

  /** convert() with the library's progress callback: `onProgress` is a function on the host (issue 17). */
  convertWithProgress(bytes, direction, onProgress) {
    return this.#lib.convertWithProgress(bytes, direction, onProgress);
  }

  /**
   * The library's row cursor as an async generator: the host reads it with `for await`, row by row,
   * as fast as it consumes them; `break` there returns this generator, which closes the cursor.
   */
  async *rows(count, seed = 1) {
    const handle = this.#lib.cursorOpen(count, seed);
    try {
      for (let row = this.#lib.cursorNext(handle); row !== null; row = this.#lib.cursorNext(handle)) yield row;
    } finally {
      this.#lib.cursorClose(handle);
    }
  }

  openCursors() {
    return this.#lib.openCursors();
  }
}

export default LegacyService;

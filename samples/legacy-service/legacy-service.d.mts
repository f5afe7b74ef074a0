// The interface of the legacy service, as its callers see it. The demos are plain JavaScript; this
// file gives editors (and `tsc --checkJs`) the types: `ProcessProxy.create<LegacyService>(…)` returns
// a `Remote<LegacyService>`, on which every method returns a promise.

/** Which implementation the workers load: the real C++ addon, or the pure-JS stand-in. */
export type Backend = 'native' | 'js';

/** What `parse` returns: `key=value` fields as strings, bare `key` fields as `true`. */
export type Parsed = Record<string, string | true>;

export interface LegacyService {
  /** Which implementation this worker runs. */
  backend(): Backend;
  /** The id of the worker process serving the call. */
  pid(): number;
  /** The slow, reversible "legacy encoding" of a byte buffer. Returns a new Buffer. */
  convert(bytes: Uint8Array, direction?: 'encode' | 'decode'): Buffer;
  /** Parses `"key=value;key=value"`. Defect: the input `"POISON"` kills the process with SIGSEGV. */
  parse(input: string): Parsed;
  /** Defect: leaks `mb` MiB of resident memory for good. Returns the MiB leaked so far by this process. */
  leakMemory(mb: number): number;
  /** Defect: opens `n` file descriptors and never closes them. Returns how many it opened. */
  leakFds(n: number): number;
  /** Defect: blocks the process's only JS thread for `ms` ms. Returns `ms`. */
  blockingSleep(ms: number): number;
  /** Defect (global state): appends to one process-wide buffer; returns the process-wide counter. */
  appendRecord(text: string): number;
  /** The process-wide counter: records appended by this worker process. */
  counter(): number;
  /** The process-wide record buffer. */
  records(): string;
  /** convert(), calling `onProgress` (a function of the caller's) with the percentage done after each pass. */
  convertWithProgress(bytes: Uint8Array, direction: 'encode' | 'decode', onProgress: (percent: number) => void): Buffer;
  /** `count` rows of the library's cursor, streamed: `for await (const row of await service.rows(n))`. */
  rows(count: number, seed?: number): AsyncIterable<Row>;
  /** Cursors open in this worker process (a cursor that is not closed leaks). */
  openCursors(): number;
}

/** One row of the library's cursor. */
export interface Row {
  id: number;
  name: string;
  score: number;
}

/** The implementation in ./legacy-service.mjs (the interface above merges into it). */
export declare class LegacyService {
  constructor(options?: { backend?: Backend });
}
export default LegacyService;

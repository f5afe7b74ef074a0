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
}

/** The implementation in ./legacy-service.mjs (the interface above merges into it). */
export declare class LegacyService {
  constructor(options?: { backend?: Backend });
}
export default LegacyService;

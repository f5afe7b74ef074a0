// An implementation class over the legacy addon, meant to be served by process-sandbox:
//
//   const codec = await ProcessProxy.create({
//     workerModule: new URL('./legacy-codec.mjs', import.meta.url),
//     workerExport: 'LegacyCodec',
//   });
//   await codec.convert(Buffer.from('hello'));
//
// It is a plain class over plain functions: nothing here knows it runs in another process. The
// addon's defects (a crash, leaks, a blocking call, global state) hit whichever process runs it.
import * as legacy from './index.mjs';

export class LegacyCodec {
  constructor() {
    // Fail at construction, with the reason, rather than at the first call.
    legacy.requireAddon();
  }

  /** Slow reversible conversion: 'encode' (default) or 'decode'. Returns a new Buffer. */
  convert(bytes, direction = 'encode') {
    return legacy.convert(bytes, direction);
  }

  /** Parses "key=value;key=value" into an object. Crashes the process (SIGSEGV) on "POISON". */
  parse(input) {
    return legacy.parse(input);
  }

  /** Leaks `mb` MiB of touched native memory; returns the MiB leaked so far. */
  leakMemory(mb) {
    return legacy.leakMemory(mb);
  }

  /** Leaks `n` open file descriptors; returns how many were opened. */
  leakFds(n) {
    return legacy.leakFds(n);
  }

  /** Blocks the thread for `ms` milliseconds. */
  blockingSleep(ms) {
    return legacy.blockingSleep(ms);
  }

  /** Appends to the global record buffer; returns the global counter. */
  appendRecord(text) {
    return legacy.appendRecord(text);
  }

  /** The global record buffer's contents. */
  records() {
    return legacy.records();
  }

  /** The global counter. */
  counter() {
    return legacy.counter();
  }

  /** Enters the non-reentrant section for `holdMs`; reports whether anyone else was inside. */
  reentrancyProbe(holdMs = 0) {
    return legacy.reentrancyProbe(holdMs);
  }

  /** The id of the process this object lives in. */
  pid() {
    return process.pid;
  }
}

export default LegacyCodec;

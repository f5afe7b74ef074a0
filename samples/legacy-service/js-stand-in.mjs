// A pure-JS stand-in for the legacy C++ addon (samples/legacy-addon), with the same functions and,
// as far as JavaScript allows, the same defects. The demos use it when the addon is not built (no
// python3, make or C++ compiler when `npm install` ran), so that `npm install && npm run demo`
// always demonstrates isolation.
//
// | addon (C++)                              | this stand-in                                         |
// | ---------------------------------------- | ----------------------------------------------------- |
// | parse('POISON') writes through NULL      | process.kill(process.pid, 'SIGSEGV'): the same signal  |
// | leakMemory(mb): malloc, never free       | Buffers outside the V8 heap, touched, kept forever     |
// | leakFds(n): open("/dev/null"), no close  | fs.openSync('/dev/null'), never closed                 |
// | blockingSleep(ms): nanosleep             | Atomics.wait: the thread blocks, no JS or I/O runs     |
// | convert(): 32 slow byte-by-byte passes   | the same algorithm, byte for byte the same output      |
// | appendRecord()/counter(): static state   | module-level state: per process, dies with it          |
// | convertWithProgress(): C++ calls back     | the same passes, the same synchronous callback         |
// | cursorOpen/Next/Close: a global table     | a module-level table: never freed unless closed        |
//
// Like the addon, never call these in a process you care about: use them through ProcessProxy.
import { openSync } from 'node:fs';

const PASSES = 32;
const RECORD_BUFFER_SIZE = 64 * 1024;

// Global, non-reentrant state, as in the addon: one per process.
const records = Buffer.alloc(RECORD_BUFFER_SIZE);
let recordsUsed = 0;
let counterValue = 0;
const leaked = [];
let leakedMb = 0;
const leakedFds = [];

/** Appends `text` and a newline to the process-wide record buffer (wrapping when full); returns the counter. */
export function appendRecord(text) {
  if (typeof text !== 'string') throw new TypeError('appendRecord(text): text must be a string');
  let bytes = Buffer.from(text, 'utf8');
  if (bytes.length + 1 > RECORD_BUFFER_SIZE) bytes = bytes.subarray(0, RECORD_BUFFER_SIZE - 1);
  let at = recordsUsed;
  if (at + bytes.length + 1 > RECORD_BUFFER_SIZE) at = 0;
  at += bytes.copy(records, at);
  records[at++] = 0x0a;
  recordsUsed = at;
  return ++counterValue;
}

export function counter() {
  return counterValue;
}

export function recordsText() {
  return records.toString('utf8', 0, recordsUsed);
}

/** Allocates and touches `mb` MiB outside the V8 heap and never gives it back; returns MiB leaked so far. */
export function leakMemory(mb) {
  if (typeof mb !== 'number') throw new TypeError('leakMemory(mb): mb must be a number');
  if (mb < 0 || mb > 64 * 1024) throw new RangeError('leakMemory(mb): mb must be between 0 and 65536');
  const whole = Math.trunc(mb);
  if (whole > 0) {
    const block = Buffer.allocUnsafeSlow(whole * 1024 * 1024);
    block.fill(0xa5); // every page written: resident, as the addon's memset makes it
    leaked.push(block);
    leakedMb += whole;
  }
  return leakedMb;
}

/** Opens /dev/null `n` times and never closes them; returns how many were opened. */
export function leakFds(n) {
  if (typeof n !== 'number') throw new TypeError('leakFds(n): n must be a number');
  if (n < 0) throw new RangeError('leakFds(n): n must not be negative');
  let opened = 0;
  for (; opened < n; opened++) {
    try {
      leakedFds.push(openSync('/dev/null', 'r'));
    } catch {
      break; // EMFILE: out of descriptors, like the addon's open() returning -1
    }
  }
  return opened;
}

/** Parses "key=value;key=value"; a field without '=' becomes `true`. Dies of SIGSEGV on "POISON". */
export function parse(input) {
  if (typeof input !== 'string') throw new TypeError('parse(input): input must be a string');
  if (input === 'POISON') {
    process.kill(process.pid, 'SIGSEGV');
    // The signal is delivered at once on Linux and macOS; should it not be, never return normally.
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0);
  }
  const result = {};
  for (const field of input.split(';')) {
    if (field === '') continue; // strtok skips empty fields
    const eq = field.indexOf('=');
    if (eq < 0) result[field] = true;
    else result[field.slice(0, eq)] = field.slice(eq + 1);
  }
  return result;
}

/** Blocks the calling thread for `ms` ms: no timer, no I/O, no other JS runs. Returns `ms`. */
export function blockingSleep(ms) {
  if (typeof ms !== 'number') throw new TypeError('blockingSleep(ms): ms must be a number');
  if (ms > 0) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
  return Math.trunc(ms);
}

function nextKey(state, encoded, index) {
  // uint32 arithmetic, exactly as the C++: state = (state * 31 + encoded + index) ^ (state >> 7)
  const next = ((Math.imul(state, 31) + encoded + index) >>> 0) ^ (state >>> 7);
  return next >>> 0;
}

function pass(data, passIndex, decode) {
  let state = Math.imul(0x9e3779b9 | 0, passIndex + 1) >>> 0;
  let key = state & 0xff;
  for (let i = 0; i < data.length; i++) {
    const encoded = decode ? data[i] : data[i] ^ key;
    data[i] ^= key;
    state = nextKey(state, encoded, i >>> 0);
    key = (state ^ (state >>> 8) ^ (state >>> 16)) & 0xff;
  }
}

/** The addon's slow reversible "legacy encoding": same algorithm, same bytes. Returns a new Buffer. */
export function convert(bytes, direction = 'encode') {
  if (!(bytes instanceof Uint8Array)) throw new TypeError('convert(bytes, direction): bytes must be a Buffer or Uint8Array');
  if (direction !== 'encode' && direction !== 'decode') throw new TypeError("convert(bytes, direction): direction must be 'encode' or 'decode'");
  const data = Buffer.from(bytes); // a copy
  if (direction === 'decode') for (let p = PASSES - 1; p >= 0; p--) pass(data, p, true);
  else for (let p = 0; p < PASSES; p++) pass(data, p, false);
  return data;
}

/** convert(), calling `onProgress(percent)` synchronously after each pass, as the addon does. */
export function convertWithProgress(bytes, direction, onProgress) {
  if (typeof onProgress !== 'function') throw new TypeError('convertWithProgress(bytes, direction, onProgress): onProgress must be a function');
  if (!(bytes instanceof Uint8Array)) throw new TypeError('convertWithProgress(bytes, direction, onProgress): bytes must be a Buffer or Uint8Array');
  const decode = direction === 'decode';
  const data = Buffer.from(bytes);
  for (let done = 0; done < PASSES; done++) {
    pass(data, decode ? PASSES - 1 - done : done, decode);
    onProgress(Math.trunc(((done + 1) * 100) / PASSES));
  }
  return data;
}

// A C-style cursor table, as the addon's: a handle is an index; an unclosed cursor stays forever.
const cursors = [];

/** The score of row `id` of a cursor opened with `seed`: the addon's uint32 arithmetic. */
export function rowScore(seed, id) {
  return ((Math.imul(seed >>> 0, 2654435761) + Math.imul(id >>> 0, 40503)) >>> 0) % 1000;
}

export function cursorOpen(count, seed) {
  if (typeof count !== 'number' || typeof seed !== 'number') throw new TypeError('cursorOpen(count, seed): count and seed must be numbers');
  cursors.push({ next: 0, count, seed: seed >>> 0, open: true });
  return cursors.length - 1;
}

function cursorAt(handle, usage) {
  const cursor = cursors[handle];
  if (!cursor?.open) throw new Error(`${usage}: no open cursor ${handle}`);
  return cursor;
}

export function cursorNext(handle) {
  const cursor = cursorAt(handle, 'cursorNext(handle)');
  if (cursor.next >= cursor.count) return null;
  const id = cursor.next++;
  return { id, name: `row-${id}`, score: rowScore(cursor.seed, id) };
}

export function cursorClose(handle) {
  cursorAt(handle, 'cursorClose(handle)').open = false;
}

export function openCursors() {
  return cursors.filter((c) => c.open).length;
}

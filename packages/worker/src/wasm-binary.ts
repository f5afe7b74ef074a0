/**
 * The few facts about a WebAssembly binary that the JavaScript API does not give, read (and one
 * rewritten) straight from its sections: the defined memory's limits, and a custom section's
 * bytes. The walk checks every length against the buffer, so a truncated or hostile file is an
 * error with a message, never an out-of-range read. WebAssembly.compile validates the rest.
 */

const MAGIC = [0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00];
const CUSTOM = 0;
const MEMORY = 5;

interface Section {
  id: number;
  /** Offset of the section's id byte. */
  start: number;
  /** Offset of its payload, and the offset just past it. */
  payload: number;
  end: number;
}

class Reader {
  constructor(
    readonly bytes: Uint8Array,
    public at: number,
  ) {}

  u32(): number {
    let result = 0;
    for (let shift = 0; shift < 35; shift += 7) {
      const byte = this.bytes[this.at++];
      if (byte === undefined) throw new Error('truncated LEB128 number');
      result += (byte & 0x7f) * 2 ** shift;
      if ((byte & 0x80) === 0) return result;
    }
    throw new Error('LEB128 number longer than 5 bytes');
  }
}

function sections(bytes: Uint8Array): Section[] {
  if (bytes.length < 8 || MAGIC.some((b, i) => bytes[i] !== b)) throw new Error('not a WebAssembly 1.0 binary (wrong magic number or version)');
  const out: Section[] = [];
  const r = new Reader(bytes, 8);
  while (r.at < bytes.length) {
    const start = r.at;
    const id = bytes[r.at++]!;
    const size = r.u32();
    const payload = r.at;
    const end = payload + size;
    if (end > bytes.length) throw new Error(`section ${id} runs past the end of the file`);
    out.push({ id, start, payload, end });
    r.at = end;
  }
  return out;
}

function encodeU32(n: number): number[] {
  const out: number[] = [];
  do {
    let byte = n & 0x7f;
    n = Math.floor(n / 128);
    if (n !== 0) byte |= 0x80;
    out.push(byte);
  } while (n !== 0);
  return out;
}

/** The payloads of the custom sections called `name`. */
export function customSections(bytes: Uint8Array, name: string): Uint8Array[] {
  const found: Uint8Array[] = [];
  for (const s of sections(bytes)) {
    if (s.id !== CUSTOM) continue;
    const r = new Reader(bytes, s.payload);
    const length = r.u32();
    if (r.at + length > s.end) throw new Error('custom section name runs past its section');
    if (Buffer.from(bytes.subarray(r.at, r.at + length)).toString('utf8') === name) found.push(bytes.subarray(r.at + length, s.end));
  }
  return found;
}

export interface MemoryLimits {
  /** In 64 KiB pages. */
  initial: number;
  maximum: number | undefined;
  /** The limits' flag byte: 0 (no maximum) and 1 (a maximum) are the plain 32-bit memories. */
  flags: number;
}

/** The limits of each memory the module defines (not those it imports). */
export function definedMemories(bytes: Uint8Array): MemoryLimits[] {
  const section = sections(bytes).find((s) => s.id === MEMORY);
  if (section === undefined) return [];
  const r = new Reader(bytes, section.payload);
  const count = r.u32();
  const out: MemoryLimits[] = [];
  for (let i = 0; i < count; i++) {
    const flags = bytes[r.at++];
    if (flags === undefined) throw new Error('truncated memory section');
    const initial = r.u32();
    const maximum = flags & 1 ? r.u32() : undefined;
    out.push({ initial, maximum, flags });
  }
  return out;
}

/** The binary with its one defined memory's maximum set to `maxPages` (the section re-encoded, the rest as is). */
export function withMemoryMaximum(bytes: Uint8Array, maxPages: number): Uint8Array {
  const section = sections(bytes).find((s) => s.id === MEMORY)!;
  const [memory] = definedMemories(bytes);
  const payload = [1, 1, ...encodeU32(memory!.initial), ...encodeU32(maxPages)];
  const head = [MEMORY, ...encodeU32(payload.length)];
  const out = new Uint8Array(bytes.length - (section.end - section.start) + head.length + payload.length);
  out.set(bytes.subarray(0, section.start), 0);
  out.set(head, section.start);
  out.set(payload, section.start + head.length);
  out.set(bytes.subarray(section.end), section.start + head.length + payload.length);
  return out;
}

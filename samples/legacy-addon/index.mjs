// The legacy addon's functions, loaded from the .node file that build.mjs (run by `npm install`)
// built. Importing this module never throws: when the addon was not built, addonAvailable() is
// false, addonLoadError() says why, and every function throws AddonNotBuiltError.
//
// Calling these functions in your own process is exactly what process-sandbox exists to avoid:
// parse('POISON') kills the process, leakMemory() and leakFds() never give anything back.
// Use them through ProcessProxy with ./legacy-codec.mjs.
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const require = createRequire(import.meta.url);
const addonUrl = new URL('./build/Release/legacy_addon.node', import.meta.url);
const statusUrl = new URL('./build/build-status.json', import.meta.url);

export class AddonNotBuiltError extends Error {
  name = 'AddonNotBuiltError';
  code = 'ERR_LEGACY_ADDON_NOT_BUILT';
}

let addon;
let loadError;
try {
  addon = require(fileURLToPath(addonUrl));
} catch (error) {
  loadError = new AddonNotBuiltError(describeMissing(error), { cause: error });
}

function describeMissing(error) {
  const parts = [];
  if (!existsSync(addonUrl)) {
    parts.push('The legacy addon is not built (no build/Release/legacy_addon.node).');
    try {
      const status = JSON.parse(readFileSync(statusUrl, 'utf8'));
      parts.push(`Its build said: ${status.reason}`);
      if (status.missing?.length) parts.push(`Missing: ${status.missing.join('; ')}.`);
    } catch {
      parts.push('No build was recorded: was `npm install` run with --ignore-scripts?');
    }
  } else {
    parts.push(`The legacy addon is built but does not load: ${error?.message ?? error}.`);
  }
  parts.push('It needs python3, make, a C++ compiler and Node\'s headers; build it with `node samples/legacy-addon/build.mjs`.');
  return parts.join(' ');
}

/** True when the native addon is built and loaded. */
export function addonAvailable() {
  return addon !== undefined;
}

/** Why the addon is unavailable (an AddonNotBuiltError), or undefined when it is available. */
export function addonLoadError() {
  return loadError;
}

/** The loaded addon's exports; throws AddonNotBuiltError when it is not built. */
export function requireAddon() {
  if (!addon) throw loadError;
  return addon;
}

/** Appends `text` to the static record buffer; returns the static counter. Not reentrant. */
export const appendRecord = (text) => requireAddon().appendRecord(text);
/** The static record buffer's contents. */
export const records = () => requireAddon().records();
/** The static counter: records appended by this process. */
export const counter = () => requireAddon().counter();
/** Enters the non-reentrant section, holds it `holdMs`, calls `callback` inside; reports whether it was entered concurrently. */
export const reentrancyProbe = (holdMs = 0, callback = undefined) => requireAddon().reentrancyProbe(holdMs, callback);
/** Mallocs and touches `mb` MiB, never frees it; returns the MiB leaked so far. */
export const leakMemory = (mb) => requireAddon().leakMemory(mb);
/** Opens /dev/null `n` times, never closes; returns how many were opened. */
export const leakFds = (n) => requireAddon().leakFds(n);
/** Parses "k=v;k=v"; SIGSEGV on "POISON". */
export const parse = (input) => requireAddon().parse(input);
/** nanosleep()s `ms` on the calling thread. */
export const blockingSleep = (ms) => requireAddon().blockingSleep(ms);
/** Slow, reversible byte-by-byte encoding; direction 'encode' (default) or 'decode'. Returns a new Buffer. */
export const convert = (bytes, direction = 'encode') => requireAddon().convert(bytes, direction);
/** convert(), calling `onProgress(percent)` synchronously after each pass. */
export const convertWithProgress = (bytes, direction, onProgress) => requireAddon().convertWithProgress(bytes, direction, onProgress);
/** Opens a cursor over `count` rows; returns its handle (never freed unless closed). */
export const cursorOpen = (count, seed) => requireAddon().cursorOpen(count, seed);
/** The cursor's next row ({ id, name, score }), or null at the end. */
export const cursorNext = (handle) => requireAddon().cursorNext(handle);
/** Releases a cursor. */
export const cursorClose = (handle) => requireAddon().cursorClose(handle);
/** How many cursors are open in this process. */
export const openCursors = () => requireAddon().openCursors();

/**
 * Records (MessagePack maps) the decoder built with more than LARGE_RECORD_KEYS keys. Whoever walks
 * decoded values in the receive path (the copy of a remote error's properties, remote-error-view.ts)
 * skips these without enumerating them: listing the keys of a record of a million keys took ~0.3 s
 * by itself. A module of its own so that both can use it without importing each other.
 */
export const LARGE_RECORD_KEYS = 1024;

const largeRecords = new WeakSet<object>();

export function markLargeRecord(record: object): void {
  largeRecords.add(record);
}

/** Whether `value` is a record the decoder built with more than LARGE_RECORD_KEYS keys. */
export function isLargeDecodedRecord(value: object): boolean {
  return largeRecords.has(value);
}

import { checkCodecInternals } from './codec-check.js';

export * from './protocol.js';
export * from './worker-env.js';
export { loadKoffi } from './koffi.js';
export * from './errors.js';
export * from './framing.js';
export { encodeValue, decodeValue, describePath, formatPath, PathSlot, MAX_DEPTH, MAX_DECODED_CONTAINERS, MAX_BIGINT_BYTES, MAX_REGEXP_SOURCE, MAX_ARRAY_ITEMS, MAX_RECORD_ENTRIES, type EncodeOptions, type PathKey } from './codec.js';
export { MAX_CAUSE_DEPTH, MAX_ERROR_PROPS } from './wire-error.js';
export { boundText, guarded, safeText, MAX_ERROR_NAME, MAX_ERROR_TEXT } from './safe-read.js';
export { Channel, frameMessage, type ChannelHandlers } from './channel.js';
export { readRemoteError, type RemoteErrorView } from './remote-error-view.js';
export { checkHello, checkWorkerMessage, precheckFrame, callableMethods, describeValue, MAX_METHODS, MAX_METHOD_NAME_LENGTH } from './validate.js';

// Fails at import, with a clear message, if @msgpack/msgpack is not the version the codec patches.
checkCodecInternals();

export * from './protocol.js';
export * from './errors.js';
export * from './framing.js';
export { encodeValue, decodeValue } from './codec.js';
export { Channel, frameMessage, type ChannelHandlers } from './channel.js';
export { checkWorkerMessage, precheckFrame, checkHello, checkHealth, checkMethodNames, callableMethods, describeValue, MAX_METHODS, MAX_METHOD_NAME_LENGTH, MAX_TOKEN_LENGTH, RESERVED_METHOD_NAMES } from './validate.js';

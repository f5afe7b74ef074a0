export * from './protocol.js';
export * from './errors.js';
export * from './framing.js';
export { encodeValue, decodeValue } from './codec.js';
export { Channel, frameMessage, type ChannelHandlers } from './channel.js';
export { readRemoteError, REMOTE_ERROR_LIMITS, type RemoteErrorView } from './remote-error-view.js';

/** The endpoint of a worker's channel for this platform: an inherited socket (POSIX) or a named pipe (Windows). */
import type { EndpointEvents, WorkerEndpoint } from './hello.js';
import { InheritedChannel } from './inherited-channel.js';
import type { Logger } from './logger.js';
import { PipeListener } from './pipe-endpoint.js';

export type { EndpointEvents, WorkerEndpoint } from './hello.js';

export function workerEndpoint(maxMessageBytes: number, helloTimeoutMs: number, logger: Logger, events: EndpointEvents): WorkerEndpoint {
  return process.platform === 'win32' ? new PipeListener(maxMessageBytes, helloTimeoutMs, logger, events) : new InheritedChannel(maxMessageBytes, events);
}

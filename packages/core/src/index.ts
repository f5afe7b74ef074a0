export { ProcessProxy, type Remote } from './process-proxy.js';
export { ProcessPool, type PoolStats, type WorkerStats, type DisposeOptions } from './pool.js';
export type { PoolEvents, WorkerExit } from './pool-events.js';
export type { ProcessProxyOptions } from './options.js';
export type { Logger } from './logger.js';
export type { WorkerState } from './worker-handle.js';
export {
  ProcessSandboxError,
  ConfigurationError,
  RemoteError,
  WorkerCrashedError,
  CallTimeoutError,
  QueueTimeoutError,
  QueueFullError,
  PoolDisposedError,
  SerializationError,
  WorkerStartError,
  MethodNotFoundError,
  ProtocolError,
  ResourceLimitError,
  type ResourceLimit,
  type HealthSnapshot,
} from '@process-sandbox/abstractions';

export { ProcessProxy, type Remote, type RemoteMethod, type RemoteMethods, type PromisedOverloads, type RemoteArgs, type RemoteArg, type StreamItemOf } from './process-proxy.js';
export type { RemoteStream } from './remote-stream.js';
export type { CallOptions } from './call.js';
export type { PoolHandle } from './pool-handle.js';
export type { PoolStats, WorkerStats, DisposeOptions, LeaseOptions } from './pool.js';
export type { PoolEvents, WorkerExit } from './pool-events.js';
export type { ProcessProxyOptions, RetryOptions, ReloadOptions } from './options.js';
export type { WasmOptions, WasiOptions, WasmHostFunctions } from './wasm-options.js';
export type { ResourceLimits } from './resource-limits.js';
export type { CgroupLimits } from './cgroup.js';
export type { WorkerPermissions } from './permissions.js';
export type { WorkerUser } from './isolation.js';
export type { IsolationLevel } from './isolation-level.js';
export type { NamespaceOptions } from './confinement.js';
export type { RecycleReason, LimitWarning } from './recycle-policy.js';
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
  CallAbortedError,
  SessionLostError,
  CircuitOpenError,
  type ResourceLimit,
  type HealthSnapshot,
} from '@process-sandbox/abstractions';

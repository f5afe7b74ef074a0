/**
 * Every error the library raises. Each class has a stable `code` (also as a static) so callers can
 * branch on it without `instanceof` across package copies.
 */

export class ProcessSandboxError extends Error {
  static readonly code: string = 'ERR_PROCESS_SANDBOX';
  code: string;
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = new.target.name;
    this.code = (new.target as typeof ProcessSandboxError).code;
  }
}

/** An option has the wrong type or range. `option` names it. */
export class ConfigurationError extends ProcessSandboxError {
  static override readonly code = 'ERR_PS_CONFIGURATION';
  constructor(
    readonly option: string,
    message: string,
  ) {
    super(`Invalid option '${option}': ${message}`);
  }
}

/** A value cannot cross the process boundary (function, symbol, circular structure, …). */
export class SerializationError extends ProcessSandboxError {
  static override readonly code = 'ERR_PS_SERIALIZATION';
}

/** The peer broke the protocol: bad frame, oversize frame, unknown message, wrong correlation id. */
export class ProtocolError extends ProcessSandboxError {
  static override readonly code = 'ERR_PS_PROTOCOL';
}

/**
 * The implementation threw. `name`, `message`, `stack`, `cause` and own enumerable properties are
 * the remote error's; `remoteName` and `remoteStack` keep the originals, and `code` is the remote
 * error's own code when it had one (e.g. 'EMFILE'), else 'ERR_PS_REMOTE'.
 */
export class RemoteError extends ProcessSandboxError {
  static override readonly code = 'ERR_PS_REMOTE';
  readonly remoteName: string;
  readonly remoteStack: string | undefined;
  readonly method: string;
  readonly pid: number;
  constructor(remote: Error, method: string, pid: number) {
    super(remote.message, remote.cause === undefined ? undefined : { cause: remote.cause });
    for (const [key, value] of Object.entries(remote)) {
      if (!RESERVED.has(key)) (this as Record<string, unknown>)[key] = value;
    }
    this.remoteName = remote.name;
    this.remoteStack = remote.stack;
    this.method = method;
    this.pid = pid;
    const code = (remote as { code?: unknown }).code;
    if (typeof code === 'string' || typeof code === 'number') this.code = String(code);
    // The remote stack first (that is where the bug is), then where the caller awaited it.
    const local = (this.stack ?? '').split('\n').slice(1).join('\n');
    this.stack = `${remote.stack ?? `${remote.name}: ${remote.message}`}\n    --- in worker ${pid}, ${method}() awaited at ---\n${local}`;
  }
}
const RESERVED = new Set(['name', 'message', 'stack', 'cause', 'code', 'remoteName', 'remoteStack', 'method', 'pid']);

/** The worker process died while running this call (or before answering it). */
export class WorkerCrashedError extends ProcessSandboxError {
  static override readonly code = 'ERR_PS_WORKER_CRASHED';
  constructor(
    readonly pid: number,
    readonly exitCode: number | null,
    readonly signal: NodeJS.Signals | null,
    readonly method: string | undefined,
    detail?: string,
    options?: ErrorOptions,
  ) {
    const how = signal ? `signal ${signal}` : `exit code ${exitCode}`;
    super(`Worker ${pid} crashed (${how})${method ? ` while running ${method}()` : ''}${detail ? `: ${detail}` : ''}`, options);
  }
}

/** The call ran longer than its timeout; its worker was killed and replaced. */
export class CallTimeoutError extends ProcessSandboxError {
  static override readonly code = 'ERR_PS_CALL_TIMEOUT';
  constructor(
    readonly method: string,
    readonly timeoutMs: number,
    readonly pid: number,
  ) {
    super(`${method}() did not finish within ${timeoutMs} ms; worker ${pid} was killed`);
  }
}

/** The call waited in the queue longer than `queueTimeoutMs` and never reached a worker. */
export class QueueTimeoutError extends ProcessSandboxError {
  static override readonly code = 'ERR_PS_QUEUE_TIMEOUT';
  constructor(
    readonly method: string,
    readonly timeoutMs: number,
  ) {
    super(`${method}() waited ${timeoutMs} ms in the queue without reaching a worker`);
  }
}

/** The queue already holds `maxQueueSize` calls. */
export class QueueFullError extends ProcessSandboxError {
  static override readonly code = 'ERR_PS_QUEUE_FULL';
  constructor(
    readonly method: string,
    readonly maxQueueSize: number,
  ) {
    super(`Cannot queue ${method}(): the queue is full (maxQueueSize ${maxQueueSize})`);
  }
}

/** The pool was disposed before or while the call was queued. */
export class PoolDisposedError extends ProcessSandboxError {
  static override readonly code = 'ERR_PS_POOL_DISPOSED';
  constructor(
    readonly method?: string,
    detail?: string,
  ) {
    super(`${method ? `Cannot run ${method}(): the pool is disposed` : 'The pool is disposed'}${detail ? ` (${detail})` : ''}`);
  }
}

/** A worker could not start: module, export, constructor, load error or handshake timeout. */
export class WorkerStartError extends ProcessSandboxError {
  static override readonly code = 'ERR_PS_WORKER_START';
  constructor(
    readonly reason: string,
    readonly stderrTail: string,
    readonly pid: number | undefined,
    options?: ErrorOptions,
  ) {
    super(`Worker failed to start: ${reason}${stderrTail ? `\n--- worker stderr (tail) ---\n${stderrTail}` : ''}`, options);
  }
}

/** The implementation has no such method. */
export class MethodNotFoundError extends ProcessSandboxError {
  static override readonly code = 'ERR_PS_METHOD_NOT_FOUND';
  constructor(
    readonly method: string,
    readonly available: readonly string[],
  ) {
    super(`The implementation has no method '${method}'. It has: ${available.join(', ') || '(none)'}`);
  }
}

/** Which limit a worker crossed. */
export type ResourceLimit = 'hardMemory' | 'cpu' | 'addressSpace' | 'heap';

/** The worker crossed a hard resource limit while running this call, and was killed for it. */
export class ResourceLimitError extends ProcessSandboxError {
  static override readonly code = 'ERR_PS_RESOURCE_LIMIT';
  constructor(
    readonly limit: ResourceLimit,
    readonly pid: number,
    readonly method: string | undefined,
    detail: string,
  ) {
    super(`Worker ${pid} exceeded its ${limit} limit${method ? ` while running ${method}()` : ''}: ${detail}`);
  }
}

/**
 * The caller's AbortSignal fired. `name` is 'AbortError' (as for fetch and timers/promises) and
 * `cause` is the signal's reason. `running` tells whether the call had reached a worker.
 */
export class CallAbortedError extends ProcessSandboxError {
  static override readonly code = 'ABORT_ERR';
  constructor(
    readonly method: string,
    readonly running: boolean,
    reason: unknown,
  ) {
    super(`${method}() was aborted ${running ? 'while running' : 'while queued'}`, { cause: reason });
    this.name = 'AbortError';
  }
}

/** The worker a session (lease) was pinned to has gone; the session cannot go on elsewhere. */
export class SessionLostError extends ProcessSandboxError {
  static override readonly code = 'ERR_PS_SESSION_LOST';
  constructor(
    readonly method: string | undefined,
    readonly pid: number,
    options?: ErrorOptions,
  ) {
    super(`The session's worker ${pid} is gone${method ? `; ${method}() was not run` : ''}: a session is never moved to another worker`, options);
  }
}

/** Workers keep dying at start or soon after; the pool stopped starting them for a while. */
export class CircuitOpenError extends ProcessSandboxError {
  static override readonly code = 'ERR_PS_CIRCUIT_OPEN';
  constructor(
    readonly retryAt: number,
    readonly lastError: Error | undefined,
  ) {
    super(`Workers keep failing soon after they start; not starting more until ${new Date(retryAt).toISOString()}${lastError ? `. Last failure: ${lastError.message}` : ''}`, { cause: lastError });
  }
}

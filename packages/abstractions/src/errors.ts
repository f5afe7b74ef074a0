/**
 * Every error the library raises. Each class has a stable `code` (also as a static) so callers can
 * branch on it without `instanceof` across package copies.
 */

import { boundedText, PROTOCOL_KEYS, readRemoteError, REMOTE_ERROR_LIMITS } from './remote-error-view.js';

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
 * The implementation threw. Built from what the worker sent, which is untrusted: every field is
 * read as plain data without running the remote object's code, strings are bounded, and no remote
 * property can shadow a member of the error (see docs/errors.md#remoteerror).
 *
 * `message` is the remote message, `cause` the remote cause chain (rebuilt the same way);
 * `remoteName` and `remoteStack` keep the remote name and stack; `remoteProps` holds every own
 * enumerable property of the remote error as plain data, and those whose names clash with nothing
 * of the error are also copied onto it. `code` is the remote error's own code when it is a short
 * string or a finite number (e.g. 'EMFILE'), else 'ERR_PS_REMOTE'. The constructor never throws.
 */
export class RemoteError extends ProcessSandboxError {
  static override readonly code = 'ERR_PS_REMOTE';
  readonly remoteName: string;
  readonly remoteStack: string | undefined;
  readonly method: string;
  readonly pid: number;
  /** Every own enumerable property of the remote error, by name, shadowing ones included (not enumerable itself). */
  declare readonly remoteProps: Readonly<Record<string, unknown>>;
  constructor(remote: unknown, method: string, pid: number) {
    const view = readRemoteError(remote);
    super(view.message, view.hasCause ? { cause: view.cause } : undefined);
    this.remoteName = view.name;
    this.remoteStack = view.stack;
    this.method = boundedText(method, REMOTE_ERROR_LIMITS.nameChars);
    this.pid = typeof pid === 'number' ? pid : 0;
    if (view.code !== undefined) this.code = view.code;
    const props = Object.create(null) as Record<string, unknown>;
    for (const [key, value] of view.props) {
      define(props, key, value, true);
      // Own fields, the prototype chain (constructor, toString, toJSON, valueOf, __proto__, …) and
      // the keys that change how an object is treated (then, inspect) stay the error's own.
      if (!(key in this) && !PROTOCOL_KEYS.has(key)) define(this, key, value, true);
    }
    define(this, 'remoteProps', props, false);
    remoteHeads.set(this, view.stack ?? `${view.name}${view.message ? `: ${view.message}` : ''}`);
    // The remote stack first (that is where the bug is), then where the call was made or awaited.
    this.stack = composeStack(this, 'awaited at', framesHere());
  }

  /** What JSON.stringify writes: the error's fields and the remote properties, as JSON-safe data. */
  toJSON(): Record<string, unknown> {
    return {
      name: this.name,
      code: this.code,
      message: this.message,
      method: this.method,
      pid: this.pid,
      remoteName: this.remoteName,
      remoteStack: this.remoteStack,
      remoteProps: jsonSafe(this.remoteProps),
    };
  }
}

/** The head of each RemoteError's stack (the remote part), kept to recompose it with the caller's frames. */
const remoteHeads = new WeakMap<RemoteError, string>();

function composeStack(error: RemoteError, how: 'awaited at' | 'called at', frames: string): string {
  return `${remoteHeads.get(error) ?? ''}\n    --- in worker ${error.pid}, ${error.method}() ${how} ---${frames ? `\n${frames}` : ''}`;
}

/** The frames of the code running now, below RemoteError's constructor. Never throws. */
function framesHere(): string {
  try {
    const holder: { stack?: unknown } = {};
    Error.captureStackTrace(holder, RemoteError);
    return typeof holder.stack === 'string' ? holder.stack.slice(holder.stack.indexOf('\n') + 1) : '';
  } catch {
    return ''; // a throwing Error.prepareStackTrace
  }
}

function define(target: object, key: string, value: unknown, enumerable: boolean): void {
  Object.defineProperty(target, key, { value, writable: true, enumerable, configurable: true });
}

function jsonSafe(value: unknown): unknown {
  try {
    return JSON.parse(JSON.stringify(value, (_key, v: unknown) => (typeof v === 'bigint' ? `${v}n` : v)) ?? 'null') as unknown;
  } catch {
    return '[not representable as JSON]';
  }
}

const annotated = new WeakSet<Error>();

/**
 * Adds the caller's frames to an error a call failed with, once per error (the same error may fail
 * several calls). A RemoteError's local part, captured in the host's receive path and made of
 * library frames only, is replaced; other library errors get them appended. Never throws.
 * @internal used by @process-sandbox/core
 */
export function attachCallerStack(error: Error, method: string, callerFrames: string): void {
  if (!callerFrames || !(error instanceof ProcessSandboxError) || annotated.has(error)) return;
  annotated.add(error);
  try {
    if (error instanceof RemoteError && remoteHeads.has(error)) {
      error.stack = composeStack(error, 'called at', callerFrames);
      return;
    }
    const stack = Object.getOwnPropertyDescriptor(error, 'stack')?.value as unknown;
    if (typeof stack === 'string') error.stack = `${stack}\n    --- ${method}() called at ---\n${callerFrames}`;
  } catch {
    // leave the stack as it was
  }
}

/**
 * The code of an error's class (the static `code`), found through its prototype chain rather than
 * through `error.constructor`, which an own property can shadow; undefined for errors that are not
 * the library's.
 */
export function classCodeOf(error: unknown): string | undefined {
  try {
    for (let proto = Object.getPrototypeOf(error) as object | null; proto !== null; proto = Object.getPrototypeOf(proto) as object | null) {
      const ctor = Object.getOwnPropertyDescriptor(proto, 'constructor')?.value as unknown;
      if (typeof ctor !== 'function') continue;
      const code = Object.getOwnPropertyDescriptor(ctor, 'code')?.value as unknown;
      if (typeof code === 'string' && (ctor === ProcessSandboxError || ctor.prototype instanceof ProcessSandboxError)) return code;
    }
  } catch {
    // a Proxy or a revoked object: not one of ours
  }
  return undefined;
}

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
export type ResourceLimit = 'hardMemory' | 'cpu' | 'addressSpace' | 'heap' | 'fuel' | 'wasmMemory';

/**
 * The worker crossed a hard resource limit while running this call, and was killed for it; or, for
 * 'fuel' and 'wasmMemory', a WebAssembly call ran out of its budget and the worker (alive) reset
 * the instance.
 */
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

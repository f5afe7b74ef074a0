/**
 * The wire protocol between the host (core) and a worker process, in one place.
 *
 * Every message is a MessagePack array whose first element is its kind, carried in a frame
 * (see framing.ts). Arrays rather than maps keep each frame small and the decoder fast; the
 * labelled tuple types below are the documentation of each field.
 *
 * The conversation:
 *   worker → host  Hello     (first frame: protocol version and pid; on Windows also the token handed
 *                    over out of band; on POSIX the channel is an inherited socket and the token is '')
 *   host   → worker Init     (what to load; only sent to a worker whose Hello checked out)
 *   worker → host  Ready     (the implementation's method names) — or Failure with id 0 if loading failed
 *   host   → worker Invoke   (one call; the worker runs them strictly one at a time, in arrival order;
 *                    the first, in session WARM_UP_SESSION, is the host's own warm-up round trip)
 *   worker → host  Result | Failure (the reply to an Invoke, with a health snapshot)
 *   worker → host  Health    (unsolicited, while idle)
 *   worker → host  Failure with id 0 (fatal: uncaught exception or unhandled rejection, just before exit)
 *   host   → worker Shutdown (finish, dispose the implementation, exit 0)
 *   host   → worker Cancel   (drop a call sent ahead that has not started: answered by Failure
 *                    Cancelled; if it already started, nothing is answered but its own reply)
 *   host   → worker SessionOpen / SessionClose (a lease's own implementation instance; replied to
 *                    with Result or Failure like an Invoke, and served in the same one-at-a-time order)
 *
 * While a call runs (version 5):
 *   worker → host  StreamOpen   (the method returned an async iterable: its items follow)
 *   worker → host  StreamItem   (one item; at most the credit the host granted, STREAM_WINDOW at first)
 *   host   → worker StreamCredit (the consumer took items: that many more may come)
 *   host   → worker StreamCancel (the consumer stopped: return() the iterator; the call's reply ends it)
 *                    A stream ends with the call's own Result (value null) or Failure.
 *   worker → host  Callback     (call a function the host passed as an argument of the running call)
 *   host   → worker CallbackReply (its value, or the error it threw)
 *   worker → host  Event        (a named event from the implementation, at any time; bounded in size and rate)
 */

/** Bumped on any incompatible change. Host and worker refuse each other when they differ. */
export const PROTOCOL_VERSION = 5;

/**
 * The `session` of the host's warm-up Invoke, sent once between Ready and the worker's first call:
 * the worker runs it on a no-op target of its own (never the implementation, never counted as a
 * call), so that its first real call does not pay for cold code (lazy compilation of the call path
 * in a fresh V8 isolate: about 1.4 ms here, more than the call itself). A worker that knows no such
 * session answers it with a Failure, which warms the same path and is just as good an answer.
 */
export const WARM_UP_SESSION = -1;

export const MessageKind = {
  Hello: 0,
  Init: 1,
  Ready: 2,
  Invoke: 3,
  Result: 4,
  Failure: 5,
  Health: 6,
  Shutdown: 7,
  SessionOpen: 8,
  SessionClose: 9,
  Cancel: 10,
  StreamOpen: 11,
  StreamItem: 12,
  StreamCredit: 13,
  StreamCancel: 14,
  Callback: 15,
  CallbackReply: 16,
  Event: 17,
} as const;
export type MessageKind = (typeof MessageKind)[keyof typeof MessageKind];

/** Why a Failure was sent; the host maps each to a different error class. */
export const FailureReason = {
  /** The implementation threw or rejected. */
  Thrown: 0,
  /** The result (or the thrown value) could not be encoded. */
  Unserializable: 1,
  /** The method does not exist on the implementation. */
  MethodNotFound: 2,
  /** Loading the module, finding the export or constructing the implementation failed. */
  StartFailed: 3,
  /** Uncaught exception or unhandled rejection: the worker exits right after sending this. */
  Fatal: 4,
  /** Answer to Cancel: the call was still waiting in the worker and was dropped unrun. */
  Cancelled: 5,
  /** A WebAssembly call ran out of its fuel (`wasm.fuelPerCall`); the worker reset the instance. */
  FuelExhausted: 6,
  /** A WebAssembly call trapped with its memory at the cap (`wasm.maxMemoryMB`); the worker reset the instance. */
  WasmMemoryLimit: 7,
} as const;
export type FailureReason = (typeof FailureReason)[keyof typeof FailureReason];

/** A worker's view of its own resource use. Sizes in bytes, times in milliseconds. */
export interface HealthSnapshot {
  rss: number;
  heapUsed: number;
  external: number;
  arrayBuffers: number;
  /** Open file descriptors (Linux: entries of /proc/self/fd) or libuv handles elsewhere; -1 if unknown. */
  handles: number;
  cpuUserMs: number;
  cpuSystemMs: number;
  calls: number;
  uptimeMs: number;
}

/** Settings the host passes in Init that shape the worker host's own behaviour. */
export interface WorkerSettings {
  /** How often an idle worker sends Health on its own; 0 disables. */
  healthIntervalMs: number;
  /** Largest frame the worker accepts or sends. */
  maxMessageBytes: number;
  /** `integrity` option: the SRI digest (`sha384-…`) the implementation's file must have. */
  integrity?: string;
  /** `wasm` option, resolved: how a `.wasm` implementation is instrumented, capped and given imports. */
  wasm?: WasmSettings;
}

/** The resolved `wasm` option as the worker gets it (paths absolute, defaults applied). */
export interface WasmSettings {
  /** Fuel per call (one per function entry, loop iteration and function exit); absent: unmetered. */
  fuelPerCall?: number;
  /** Linear memory cap, in MiB (multiples of 64 KiB pages). */
  maxMemoryMB?: number;
  /** WASI preview 1 through node:wasi; absent: a WASI import is refused. */
  wasi?: { args: string[]; env: Record<string, string>; preopens: Record<string, string> };
  /** The JavaScript module of host functions and the names of those granted. */
  hostFunctions?: { module: string; grant: string[] };
  /** Record every host function call into the call's usage. */
  auditHostCalls: boolean;
}

/** One host function call a WebAssembly plugin made, as recorded for the audit log. */
export interface HostCallRecord {
  /** The granted function's name (its import is `host.<fn>`). */
  fn: string;
  /** Its arguments (WebAssembly values: numbers, BigInts for i64), at most MAX_HOST_CALL_ARGS. */
  args: (number | bigint)[];
  /** What it returned (absent: nothing, or it threw). */
  result?: number | bigint;
  /** It threw: the error's message, bounded. */
  error?: string;
}

/** What a call used, reported by a WebAssembly worker with its reply. */
export interface CallUsage {
  /** Fuel the call consumed (with `wasm.fuelPerCall`). */
  fuel?: number;
  /** Host function calls, in order, at most MAX_HOST_CALL_RECORDS (with `wasm.auditHostCalls`). */
  hostCalls?: HostCallRecord[];
  /** Host function calls made past MAX_HOST_CALL_RECORDS and not recorded. */
  hostCallsDropped?: number;
}

/** Most host calls recorded per call; the rest are counted in `hostCallsDropped`. */
export const MAX_HOST_CALL_RECORDS = 256;
/** Most arguments recorded per host call. */
export const MAX_HOST_CALL_ARGS = 16;
/** Longest recorded function name or error message, in UTF-16 units. */
export const MAX_HOST_CALL_TEXT = 256;

/** `token` is '' on POSIX, where the channel is inherited and nobody else can write on it. */
export type HelloMessage = [kind: typeof MessageKind.Hello, version: number, token: string, pid: number];
export type InitMessage = [
  kind: typeof MessageKind.Init,
  workerModule: string,
  workerExport: string,
  workerOptions: unknown,
  settings: WorkerSettings,
];
export type ReadyMessage = [kind: typeof MessageKind.Ready, methods: string[], health: HealthSnapshot];
/**
 * `session` 0 is the worker's shared implementation; other ids name a session's own instance.
 * `callbacks`: the indices of the arguments that were functions on the host (sent as null): the
 * worker passes a function in their place that calls back into the host (Callback).
 */
export type InvokeMessage = [kind: typeof MessageKind.Invoke, id: number, method: string, args: unknown[], session: number, callbacks: number[]];
/** `health` is null when the worker's last report is still fresh (it refreshes at most every HEALTH_REFRESH_MS). */
/** `usage`: sent only by a WebAssembly worker with fuel or an audit of host calls. */
export type ResultMessage = [kind: typeof MessageKind.Result, id: number, value: unknown, health: HealthSnapshot | null, usage?: CallUsage];
/** `id` 0 means the failure belongs to no call: start-up failure or a fatal error. */
export type FailureMessage = [
  kind: typeof MessageKind.Failure,
  id: number,
  error: Error,
  reason: FailureReason,
  health: HealthSnapshot | null,
  usage?: CallUsage,
];
export type HealthMessage = [kind: typeof MessageKind.Health, health: HealthSnapshot];
export type ShutdownMessage = [kind: typeof MessageKind.Shutdown];
/** `fresh`: build a new implementation instance for the session (else it uses the shared one). */
export type SessionOpenMessage = [kind: typeof MessageKind.SessionOpen, id: number, session: number, fresh: boolean];
/** Disposes the session's instance (dispose(), Symbol.dispose or Symbol.asyncDispose, if it has one). */
export type SessionCloseMessage = [kind: typeof MessageKind.SessionClose, id: number, session: number];

/** Drop call `id` if the worker has not started it yet. */
export type CancelMessage = [kind: typeof MessageKind.Cancel, id: number];

/** The running call `id` returned an async iterable: its items follow as StreamItem, its end as the call's reply. */
export type StreamOpenMessage = [kind: typeof MessageKind.StreamOpen, id: number];
/** One item of the stream of the running call `id`. */
export type StreamItemMessage = [kind: typeof MessageKind.StreamItem, id: number, item: unknown];
/** `credit` more items of call `id`'s stream may be sent (on top of the STREAM_WINDOW granted at the start). */
export type StreamCreditMessage = [kind: typeof MessageKind.StreamCredit, id: number, credit: number];
/** The host's consumer stopped reading call `id`'s stream: return() the iterator and reply. */
export type StreamCancelMessage = [kind: typeof MessageKind.StreamCancel, id: number];
/**
 * Calls the function the host passed as argument `slot` of the running call `id`. `callback` is
 * the worker's number for this invocation (positive, unique while it is unanswered), echoed in the reply.
 */
export type CallbackMessage = [kind: typeof MessageKind.Callback, id: number, callback: number, slot: number, args: unknown[]];
/** The answer to Callback `callback`: `error` null and its value, or the error the host function threw. */
export type CallbackReplyMessage = [kind: typeof MessageKind.CallbackReply, callback: number, error: Error | null, value: unknown];
/** A named event from the implementation (see MAX_EVENT_BYTES, EVENTS_PER_SECOND). */
export type EventMessage = [kind: typeof MessageKind.Event, name: string, payload: unknown];

export type HostToWorker =
  | InitMessage
  | InvokeMessage
  | ShutdownMessage
  | SessionOpenMessage
  | SessionCloseMessage
  | CancelMessage
  | StreamCreditMessage
  | StreamCancelMessage
  | CallbackReplyMessage;
export type WorkerToHost =
  | HelloMessage
  | ReadyMessage
  | ResultMessage
  | FailureMessage
  | HealthMessage
  | StreamOpenMessage
  | StreamItemMessage
  | CallbackMessage
  | EventMessage;
export type Message = HostToWorker | WorkerToHost;

/**
 * POSIX: the channel is a socket the worker inherits, on this descriptor (stdio index 4, after the
 * lifeline on 3); ENV_CHANNEL_FD tells the worker its number. Nothing secret: no path, no token.
 */
export const CHANNEL_FD = 4;
export const ENV_CHANNEL_FD = 'PROCESS_SANDBOX_CHANNEL_FD';
/** Windows: the named pipe the worker connects to, and the token it proves itself with (never argv). */
export const ENV_PIPE = 'PROCESS_SANDBOX_PIPE';
export const ENV_TOKEN = 'PROCESS_SANDBOX_TOKEN';

/** A worker measures itself at most this often when attaching health to replies: the measurement costs more than a trivial call. */
export const HEALTH_REFRESH_MS = 100;

/** The Hello frame is tiny; a first frame larger than this is refused before it is read. */
export const MAX_HELLO_BYTES = 1024;

/**
 * Items a worker may send on a stream before the host grants more: the credit it starts with. The
 * host re-grants as its consumer takes items, so it never holds more than this many items of one
 * stream (received and not yet consumed, plus those on the way).
 */
export const STREAM_WINDOW = 128;
/** Callbacks of one call a worker may have unanswered at once; the worker host queues the rest. */
export const MAX_CALLBACKS_IN_FLIGHT = 64;
/** Arguments of a call that may be functions (callbacks), and so the highest slot + 1. */
export const MAX_CALLBACK_SLOTS = 64;
/** An Event frame's largest size, name and payload together; a larger one is refused before decoding. */
export const MAX_EVENT_BYTES = 64 * 1024;
/** An event name's longest length. */
export const MAX_EVENT_NAME_LENGTH = 256;
/**
 * Events per second a worker's emit() sends (a burst of as many, then this rate); it drops the rest
 * and returns false. The host admits twice as many, for arrival jitter, and drops (and logs) beyond.
 */
export const EVENTS_PER_SECOND = 1000;

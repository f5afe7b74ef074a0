/**
 * The host's half of the gate (validate.ts in the protocol package is the other half): a message
 * that has the shape of its kind must also be expected — the right kind for the worker's state, a
 * Failure with id 0 only for a start failure (during the handshake) or a fatal error. What a message
 * means is WorkerHandle's; the gate hands it to one handler, or names the protocol error. Nothing
 * here acts on an unchecked field.
 */
import {
  checkWorkerMessage,
  describeValue,
  FailureReason,
  MessageKind,
  MethodNotFoundError,
  ProtocolError,
  RemoteError,
  ResourceLimitError,
  SerializationError,
  type CallUsage,
  type HealthSnapshot,
  type Message,
  type WasmSettings,
  type WorkerToHost,
} from '@process-sandbox/abstractions';
import type { Call } from './call.js';

export interface GateHandlers {
  ready(methods: string[], health: HealthSnapshot): void;
  /** A reply for call `id`: `settle` settles the call it answers, if it answers the right one. */
  reply(id: number, health: HealthSnapshot | null, cancelled: boolean, settle: (call: Call) => void): void;
  /** Its module failed to start (the process exits next). */
  startFailed(error: Error): void;
  /** A fatal error outside any call (the process exits next). */
  fatal(error: Error): void;
  health(health: HealthSnapshot): void;
  /** The running call's stream opened, one of its items, a call back into one of its function arguments (call-traffic.ts). */
  streamOpen(id: number): void;
  streamItem(id: number, item: unknown): void;
  callback(id: number, callback: number, slot: number, args: unknown[]): void;
  /** A named event from the implementation. */
  event(name: string, payload: unknown): void;
  protocolError(problem: string | ProtocolError): void;
  /** The error a call gets for a Failure. */
  failureError(call: Call, error: Error, reason: FailureReason): Error;
  /** The pool's `wasm` option: what a worker may report about a call (fuel, host calls) and fail it with. */
  wasm?(): WasmSettings | undefined;
}

/**
 * Why a well-formed `usage` or limit reason cannot be this pool's: fuel from a pool without a budget
 * or above it, host call records from a pool that audits none, a limit the pool does not set. A
 * JavaScript worker must not slip figures into the pool's events and stats.
 */
function unexpectedReport(usage: CallUsage | undefined, reason: FailureReason | undefined, wasm: WasmSettings | undefined): string | undefined {
  const budget = wasm?.fuelPerCall;
  if (usage?.fuel !== undefined && budget === undefined) return 'reports fuel, but its pool sets no wasm.fuelPerCall';
  if (usage?.fuel !== undefined && usage.fuel > budget!) return `reports ${usage.fuel} fuel used, more than wasm.fuelPerCall (${budget})`;
  if ((usage?.hostCalls !== undefined || usage?.hostCallsDropped !== undefined) && wasm?.auditHostCalls !== true) return 'reports host calls, but its pool sets no wasm.auditHostCalls';
  if (reason === FailureReason.FuelExhausted && budget === undefined) return 'fails a call for fuel, but its pool sets no wasm.fuelPerCall';
  if (reason === FailureReason.WasmMemoryLimit && wasm?.maxMemoryMB === undefined) return 'fails a call for its memory cap, but its pool sets no wasm.maxMemoryMB';
  return undefined;
}

/** Checks `raw` and hands it to its handler; `handshaking`: Init was sent and Ready not yet read. */
export function admitWorkerMessage(raw: Message, handshaking: boolean, h: GateHandlers): void {
  let message: WorkerToHost;
  try {
    message = checkWorkerMessage(raw);
  } catch (error) {
    if (error instanceof ProtocolError) return h.protocolError(error);
    throw error; // a bug of ours: the Channel turns it into a ProtocolError of this worker
  }
  switch (message[0]) {
    case MessageKind.Ready:
      if (!handshaking) return h.protocolError('Ready outside the handshake');
      return h.ready(message[1], message[2]);
    case MessageKind.Result: {
      if (handshaking) return h.protocolError('Result during the handshake');
      const unexpected = unexpectedReport(message[4], undefined, h.wasm?.());
      if (unexpected) return h.protocolError(`Result ${unexpected}`);
      return h.reply(message[1], message[3], false, (call) => {
        call.usage = message[4];
        call.resolve(message[2]);
      });
    }
    case MessageKind.Failure: {
      const [, id, error, reason, health, usage] = message;
      if (id === 0) {
        // It belongs to no call: a start failure (during the handshake only) or a fatal error.
        if (reason === FailureReason.StartFailed) return handshaking ? h.startFailed(error) : h.protocolError('a start failure after the handshake');
        if (reason !== FailureReason.Fatal) return h.protocolError(`Failure with id 0 and reason ${reason} (only StartFailed or Fatal may have no call)`);
        return h.fatal(error);
      }
      if (handshaking) return h.protocolError(`Failure for call ${id} during the handshake`);
      if (reason === FailureReason.StartFailed || reason === FailureReason.Fatal) return h.protocolError(`Failure with reason ${reason} for call ${id} (only id 0 may carry it)`);
      const unexpected = unexpectedReport(usage, reason, h.wasm?.());
      if (unexpected) return h.protocolError(`Failure ${unexpected}`);
      return h.reply(id, health, reason === FailureReason.Cancelled, (call) => {
        call.usage = usage;
        call.reject(h.failureError(call, error, reason));
      });
    }
    case MessageKind.Health:
      if (handshaking) return h.protocolError('Health during the handshake');
      return h.health(message[1]);
    case MessageKind.StreamOpen:
      return h.streamOpen(message[1]);
    case MessageKind.StreamItem:
      return h.streamItem(message[1], message[2]);
    case MessageKind.Callback:
      return h.callback(message[1], message[2], message[3], message[4]);
    case MessageKind.Event:
      // Allowed during the handshake too: a constructor may emit.
      return h.event(message[1], message[2]);
    default:
      return h.protocolError(`unexpected message kind ${describeValue(message[0])} from the worker`);
  }
}

/** What a call gets for a Failure reply from the worker running it (`methods`: what it listed, `pid`: its process). */
export function failureError(call: Call, error: Error, reason: FailureReason, methods: readonly string[], pid: number): Error {
  switch (reason) {
    case FailureReason.MethodNotFound:
      return new MethodNotFoundError(call.method, methods);
    case FailureReason.Unserializable:
      return new SerializationError(`The result of ${call.method}() cannot cross the process boundary: ${error.message}`, { cause: error });
    case FailureReason.FuelExhausted:
      return new ResourceLimitError('fuel', pid, call.method, error.message);
    case FailureReason.WasmMemoryLimit:
      return new ResourceLimitError('wasmMemory', pid, call.method, error.message);
    default:
      return new RemoteError(error, call.method, pid);
  }
}

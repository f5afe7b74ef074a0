/**
 * The first frame on a worker's channel, whatever carries it: a Hello of this protocol version,
 * with the worker's pid and (Windows' named pipe only) the token that proves who connected.
 */
import type { ChildProcess } from 'node:child_process';
import { createHash, timingSafeEqual } from 'node:crypto';
import { checkHello, MessageKind, PROTOCOL_VERSION, type Channel, type Message } from '@process-sandbox/abstractions';
import type { SpawnPlan } from './os/guard.js';

export interface AcceptedWorker {
  /** The channel, still carrying the endpoint's handlers until the owner sets its own (at once). */
  channel: Channel;
}

export interface EndpointEvents {
  /** The worker said a good Hello: the channel is the owner's from now on. Called at most once. */
  onAccepted(accepted: AcceptedWorker): void;
  /** The channel could not be established; the worker must go. Called at most once, never after onAccepted. */
  onFailed(error: Error): void;
}

/** How a worker reaches its host: set up before the spawn, attached right after it. */
export interface WorkerEndpoint {
  /** Adds what the worker needs to find its end (stdio, environment) to the spawn plan. */
  prepare(plan: SpawnPlan): void;
  /** Called synchronously right after a successful spawn. */
  attach(child: ChildProcess): void;
  /** Drops everything not yet handed over. Idempotent. */
  close(): void;
}

/** Why `message` is not an acceptable Hello, or undefined if it is. `token`: the one expected, if any. */
export function helloProblem(message: Message, token?: Buffer): string | undefined {
  if (message[0] !== MessageKind.Hello) return `first message is kind ${String(message[0])}, not Hello`;
  if (message[1] !== PROTOCOL_VERSION) return `protocol version ${String(message[1])}, expected ${PROTOCOL_VERSION}`;
  try {
    checkHello(message); // the shape, field by field, as the gate checks every other message
  } catch (error) {
    return `malformed Hello: ${(error as Error).message}`;
  }
  // Compare digests, so the comparison takes the same time whatever the length or content.
  if (token && !timingSafeEqual(digest(message[2]), token)) return 'wrong token';
  return undefined;
}

export function digest(text: string): Buffer {
  return createHash('sha256').update(text).digest();
}

#!/usr/bin/env node
/**
 * Entry point of a worker process. Spawned by @process-sandbox/core, never by hand: the pipe path
 * and the token arrive through the environment (never argv, where `ps` would show the token).
 */
import { ENV_PIPE, ENV_TOKEN } from '@process-sandbox/abstractions';
import { WorkerHost } from './worker-host.js';

const pipe = process.env[ENV_PIPE];
const token = process.env[ENV_TOKEN];
// Neither the implementation nor anything it spawns needs them.
delete process.env[ENV_PIPE];
delete process.env[ENV_TOKEN];

if (!pipe || !token) {
  process.stderr.write(`process-sandbox-worker is started by @process-sandbox/core; ${ENV_PIPE} and ${ENV_TOKEN} are not set.\n`);
  process.exit(64);
}
new WorkerHost(pipe, token);

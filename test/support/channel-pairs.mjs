// Channels over real Unix sockets in this process, for the channel tests: a server in a private
// directory, a connected pair per test (`peer` plays the worker, `channel` the host's end with
// recorded handlers), every socket destroyed after each test, and nothing allowed to escape
// (uncaught exceptions or rejections fail the test).
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { Channel } from '@process-sandbox/abstractions';
import { watchUncaught } from './forging.mjs';

/** Registers the hooks of the current describe block; returns `pair(maxMessageBytes)`. */
export function channelPairs(prefix) {
  let dir;
  let server;
  const sockets = [];
  let uncaught;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), prefix));
    server = createServer();
    await new Promise((resolve) => server.listen(join(dir, 's.sock'), resolve));
  });
  after(() => {
    server.close();
    rmSync(dir, { recursive: true, force: true });
  });
  beforeEach(() => (uncaught = watchUncaught()));
  afterEach(() => {
    uncaught.stop();
    for (const s of sockets.splice(0)) s.destroy();
    expect(uncaught.escaped, 'exceptions or rejections that escaped').to.deep.equal([]);
  });

  return async function pair(maxMessageBytes) {
    const accepted = new Promise((resolve) => server.once('connection', resolve));
    const peer = connect(server.address());
    peer.on('error', () => {}); // EPIPE or ECONNRESET once the other side is destroyed: expected
    const socket = await accepted;
    sockets.push(peer, socket);
    const seen = { messages: [], errors: [], closes: 0 };
    const channel = new Channel(socket, maxMessageBytes, {
      onMessage: (m) => seen.messages.push(m[1]),
      onError: (e) => seen.errors.push(e),
      onClose: () => seen.closes++,
    });
    return { peer, socket, channel, seen };
  };
}

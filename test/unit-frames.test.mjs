// Frames as segments: large binary data in a message is written from where it is (by reference),
// the encoded bytes around it copied; the bytes on the wire are those of a copied frame. And the
// channel's corked writes: the frames of one tick go out together, a flush() sends them at once.
import { expect } from 'chai';
import { createServer, connect } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Channel, FrameDecoder, SHARED_MIN_BYTES, decodeValue, frameMessage, frameMessageShared, SerializationError } from '@process-sandbox/abstractions';

const concat = (frame) => (Buffer.isBuffer(frame) ? frame : Buffer.concat(frame));

describe('unit: frames as segments', function () {
  it('references large Buffers, Uint8Arrays and ArrayBuffers of the value itself, and copies the rest', () => {
    const big = Buffer.alloc(SHARED_MIN_BYTES, 1);
    const bytes = new Uint8Array(SHARED_MIN_BYTES + 3).fill(2);
    const arrayBuffer = new Uint8Array(SHARED_MIN_BYTES * 2).fill(3).buffer;
    const inMap = Buffer.alloc(SHARED_MIN_BYTES, 4);
    const small = Buffer.alloc(SHARED_MIN_BYTES - 1, 5);
    const message = [3, 7, 'm', [big, { bytes, arrayBuffer, map: new Map([['k', inMap]]), small }], 0];
    const frame = frameMessageShared(message);
    expect(Array.isArray(frame)).to.equal(true);
    expect(frame.some((s) => s === big), 'the Buffer itself is a segment').to.equal(true);
    expect(frame.some((s) => s.buffer === bytes.buffer), 'the Uint8Array is shared').to.equal(true);
    expect(frame.some((s) => s.buffer === arrayBuffer), 'the ArrayBuffer is shared').to.equal(true);
    expect(frame.some((s) => s.buffer === inMap.buffer), 'inside a Map it is copied').to.equal(false);
    expect(frame.some((s) => s.buffer === small.buffer), 'a small one is copied').to.equal(false);
    // The same bytes as the frame that copies everything.
    expect(concat(frame).equals(frameMessage(message))).to.equal(true);
    const [body] = new FrameDecoder(1 << 30).push(concat(frame));
    const [, , , [b, rest]] = decodeValue(body);
    expect(b.equals(big) && Buffer.from(rest.bytes).equals(Buffer.from(bytes)) && rest.map.get('k').equals(inMap)).to.equal(true);
  });

  it('is one buffer when nothing is large, and counts shared bytes against the size limit', () => {
    expect(Buffer.isBuffer(frameMessageShared([3, 1, 'm', [Buffer.alloc(10)], 0]))).to.equal(true);
    const big = Buffer.alloc(SHARED_MIN_BYTES * 4);
    expect(() => frameMessageShared([3, 1, 'm', [big], 0], { maxBytes: SHARED_MIN_BYTES * 2, limitName: 'maxMessageBytes' })).to.throw(SerializationError, /maxMessageBytes/);
    expect(() => frameMessageShared([3, 1, 'm', [big, big], 0], { maxBytes: SHARED_MIN_BYTES * 6 })).to.throw(SerializationError);
    expect(concat(frameMessageShared([3, 1, 'm', [big, big], 0], { maxBytes: SHARED_MIN_BYTES * 9 })).length).to.be.above(SHARED_MIN_BYTES * 8);
  });

  it('the channel writes the frames of one tick and their segments in order, and flush() sends them at once', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ps-frames-'));
    const path = process.platform === 'win32' ? `\\\\.\\pipe\\ps-frames-${process.pid}-${Date.now()}` : join(dir, 's.sock');
    const server = createServer();
    await new Promise((resolve) => server.listen(path, resolve));
    const accepted = new Promise((resolve) => server.once('connection', resolve));
    const client = connect(path);
    const peer = await accepted;
    try {
      const received = [];
      const decoder = new FrameDecoder(1 << 30);
      peer.on('data', (chunk) => received.push(...decoder.push(chunk).map((f) => decodeValue(f))));
      const channel = new Channel(client, 1 << 30, { onMessage() {}, onError() {}, onClose() {} });
      const big = Buffer.alloc(SHARED_MIN_BYTES * 3, 9);
      let flushed = false;
      channel.sendFrame(frameMessageShared([3, 1, 'a', [big], 0]), () => (flushed = true));
      channel.sendFrame(frameMessageShared([3, 2, 'b', ['small'], 0]));
      channel.flush();
      expect(client.writableCorked, 'flush() uncorked the socket').to.equal(0);
      channel.sendFrame(frameMessageShared([3, 3, 'c', [big], 0]));
      for (let i = 0; i < 500 && received.length < 3; i++) await new Promise((resolve) => setTimeout(resolve, 10));
      expect(received.map((m) => m[1])).to.deep.equal([1, 2, 3]);
      expect(received[0][3][0].equals(big) && received[2][3][0].equals(big)).to.equal(true);
      expect(flushed, 'the flushed callback ran').to.equal(true);
      channel.destroy();
    } finally {
      client.destroy();
      peer.destroy();
      server.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

// A Channel whose write fails because the peer is gone (EPIPE, whether or not the peer died with bytes
// of ours unread) still hands over, in order, every frame the peer wrote before it went, then
// closes. Node destroys a socket whose write fails, and the bytes still unread in the kernel went
// with it: in the chaos test with pipelineDepth 16, a worker answered calls and then crashed on the
// next one while the host was writing it calls ahead; the answers were discarded and the crash was
// blamed on a call that had succeeded. Over real Unix sockets, in this process.
import { expect } from 'chai';
import { frameMessage } from '@process-sandbox/abstractions';
import { channelPairs } from './support/channel-pairs.mjs';
import { waitFor } from './support/processes.mjs';

const reply = (id) => frameMessage([4, id, `answer ${id}`, null]);
const written = (socket, frame) => new Promise((resolve, reject) => socket.write(frame, (error) => (error ? reject(error) : resolve())));

describe('channel: a write that fails because the peer is gone', function () {
  this.timeout(30_000);
  const connected = channelPairs('channel-write-error-');
  /** `peer` plays the worker; `channel` the host's end, not reading until the test resumes it. */
  async function pair() {
    const ends = await connected(1024 * 1024);
    // The host is busy: what the peer writes waits in the kernel.
    ends.socket.pause();
    return ends;
  }

  for (const unread of [false, true]) {
    it(`the peer answered three calls and died${unread ? ' with a call of ours unread' : ''}: all three answers are handled, in order, then the channel closes`, async () => {
      const { peer, socket, channel, seen } = await pair();
      peer.pause(); // reads nothing we send: with `unread`, it dies with our frame in its queue
      if (unread) {
        // The peer, paused from the start, reads nothing: our frame stays in its kernel queue.
        channel.send([1, 99, 'add', [1, 2], 0]);
        await waitFor(() => socket.writableLength === 0 && socket.bytesWritten > 0, 'our frame to be written');
      }
      for (const id of [1, 2, 3]) await written(peer, reply(id));
      const gone = new Promise((resolve) => peer.once('close', resolve));
      peer.destroy();
      await gone;
      // A call sent ahead to the dead peer: its write fails.
      channel.send([1, 100, 'add', [1, 2], 0]);
      channel.send([2, 100]);
      await waitFor(() => seen.errors.length > 0, 'the failed write to be reported');
      expect(seen.errors.map((e) => e.code)).to.deep.equal(['EPIPE']);
      expect(seen.messages, 'nothing read yet: the socket is paused').to.deep.equal([]);
      socket.resume();
      await waitFor(() => seen.closes === 1, 'the channel to close at EOF');
      expect(seen.messages).to.deep.equal([1, 2, 3]);
      expect(channel.closed).to.equal(true);
    });
  }
});

// The receive side of a Channel with a frame large enough to be decoded in slices (channel.ts,
// SLICED_DECODE_BYTES): the frames after it are handled after it, in order; its socket is paused
// meanwhile; another channel keeps receiving; closing or failing mid-decode handles nothing more and
// lets nothing escape. Over real Unix sockets, in this process.
import { expect } from 'chai';
import fc from 'fast-check';
import { encodeFrame, FrameDecoder, frameMessage, ProtocolError } from '@process-sandbox/abstractions';
import { SLICED_DECODE_BYTES } from '../packages/abstractions/dist/channel.js';
import { channelPairs } from './support/channel-pairs.mjs';
import { waitFor } from './support/processes.mjs';

const MAX = 64 * 1024 * 1024;
/** A Result-shaped frame of `count` small arrays: ~3 bytes each, and slow enough to take many slices. */
const bigFrame = (count, tag) => frameMessage([4, tag, Array.from({ length: count }, (_, i) => [i & 0x7f]), null]);
const smallFrame = (tag) => frameMessage([4, tag, `small ${tag}`, null]);

describe('channel: large frames decoded in slices', function () {
  this.timeout(60_000);
  const connected = channelPairs('channel-sliced-');
  /** A connected pair: `peer` writes, `channel` (with recorded handlers) reads. */
  const pair = () => connected(MAX);

  it('a large frame followed at once by small ones (one write): handled in order; its socket paused meanwhile; another channel keeps receiving', async () => {
    expect(bigFrame(400_000, 0).length).to.be.above(SLICED_DECODE_BYTES);
    const a = await pair();
    const b = await pair();
    let pausedWhileOtherReceived;
    const bHandled = [];
    b.channel.setHandlers({
      onMessage: (m) => {
        bHandled.push({ tag: m[1], aHandledBig: a.seen.messages.includes('big') });
        pausedWhileOtherReceived ??= a.socket.isPaused();
      },
      onError: (e) => b.seen.errors.push(e),
      onClose: () => {},
    });
    a.peer.write(Buffer.concat([bigFrame(1_000_000, 'big'), smallFrame('s1'), smallFrame('s2'), smallFrame('s3')]));
    // Once A is decoding its large frame (its socket is paused for that), B's peer writes.
    await waitFor(() => a.socket.isPaused() || a.seen.messages.length > 0, 'channel A to start decoding', { timeoutMs: 30_000 });
    b.peer.write(smallFrame('b1'));
    await waitFor(() => a.seen.messages.length === 4, 'the four frames of channel A', { timeoutMs: 30_000 });
    expect(a.seen.messages).to.deep.equal(['big', 's1', 's2', 's3']);
    expect(a.seen.errors).to.deep.equal([]);
    expect(bHandled[0], 'channel B received while A was still decoding').to.deep.equal({ tag: 'b1', aHandledBig: false });
    expect(pausedWhileOtherReceived, 'A\'s socket was paused while its frame was decoded').to.equal(true);
    expect(a.socket.isPaused(), 'and resumed after').to.equal(false);
    // The channel still works after: more frames, in order.
    a.peer.write(Buffer.concat([smallFrame('s4'), bigFrame(300_000, 'big2'), smallFrame('s5')]));
    await waitFor(() => a.seen.messages.length === 7, 'three more frames', { timeoutMs: 30_000 });
    expect(a.seen.messages.slice(4)).to.deep.equal(['s4', 'big2', 's5']);
  });

  it('destroyed mid-decode: the large frame and those behind it are never handled, onClose runs once, nothing escapes', async () => {
    const a = await pair();
    const b = await pair();
    b.channel.setHandlers({ onMessage: () => a.channel.destroy(), onError: () => {}, onClose: () => {} });
    a.peer.write(Buffer.concat([bigFrame(1_000_000, 'big'), smallFrame('after')]));
    // Once A is decoding (its socket paused), B's frame makes B's handler destroy A.
    await waitFor(() => a.socket.isPaused() || a.seen.messages.length > 0, 'channel A to start decoding', { timeoutMs: 30_000 });
    b.peer.write(smallFrame('b1'));
    await waitFor(() => a.seen.closes === 1, 'channel A to close', { timeoutMs: 30_000 });
    // Let any decoding step still scheduled run (each is one setImmediate).
    for (let i = 0; i < 50; i++) await new Promise((resolve) => setImmediate(resolve));
    expect(a.seen.messages, 'nothing handled after the close').to.deep.equal([]);
    expect(a.seen.errors).to.deep.equal([]);
    expect(a.seen.closes).to.equal(1);
  });

  it('malformed midway: one ProtocolError ("Undecodable frame"), the frames behind it never handled, the channel destroyed', async () => {
    const a = await pair();
    // A large frame whose last value is a reserved type byte (0xc1): found only after many slices.
    const body = frameMessage([4, 'bad', Array.from({ length: 400_000 }, (_, i) => [i & 0x7f]), null]).subarray(4);
    const broken = Buffer.from(body);
    broken[broken.length - 1] = 0xc1;
    a.peer.write(Buffer.concat([encodeFrame(broken), smallFrame('after')]));
    await waitFor(() => a.seen.closes === 1, 'channel A to close', { timeoutMs: 30_000 });
    expect(a.seen.messages).to.deep.equal([]);
    expect(a.seen.errors).to.have.length(1);
    expect(a.seen.errors[0]).to.be.an.instanceOf(ProtocolError);
    expect(a.seen.errors[0].message).to.match(/^Undecodable frame: Cannot decode value: Unrecognized type byte: 0xc1/);
    expect(a.socket.destroyed).to.equal(true);
  });

  it('frame decoder: a large frame is assembled as it arrives (from an eighth of it on), whatever the chunking, and the frames around it are kept', () => {
    const large = Buffer.alloc(3 * 1024 * 1024 + 17);
    for (let i = 0; i < large.length; i += 4096) large[i] = i & 0xff;
    const stream = Buffer.concat([encodeFrame(Buffer.from('before')), encodeFrame(large), encodeFrame(Buffer.from('after')), encodeFrame(Buffer.alloc(0))]);
    const eighth = 4 + 10 + 4 + Math.ceil(large.length / 8);
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 1, max: 600_000 }), { minLength: 1, maxLength: 40 }), fc.integer({ min: -3, max: 3 }), (sizes, nudge) => {
        const decoder = new FrameDecoder(MAX);
        const frames = [];
        // A cut right around the point where assembly starts, then the given chunk sizes, cycled.
        const cuts = [eighth + nudge];
        for (let at = cuts[0], i = 0; at < stream.length; i++) cuts.push((at += sizes[i % sizes.length]));
        let from = 0;
        for (const cut of cuts) {
          const to = Math.min(cut, stream.length);
          if (to > from) frames.push(...decoder.push(stream.subarray(from, to)));
          from = Math.max(from, to);
          expect(decoder.bufferedBytes).to.be.at.most(stream.length);
        }
        expect(frames.map((f) => f.length)).to.deep.equal([6, large.length, 5, 0]);
        expect(frames[1].equals(large)).to.equal(true);
        expect(frames[0].toString() + frames[2].toString()).to.equal('beforeafter');
        expect(decoder.bufferedBytes).to.equal(0);
      }),
      { numRuns: 60 },
    );
  });
});

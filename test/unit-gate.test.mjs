// The host's half of the gate (core/worker-gate.ts) on its own: which message is legal in which
// state, with no process. The same gate with real forging workers: hostile-messages and
// fuzz-worker-messages tests.
import { expect } from 'chai';
import { FailureReason, MessageKind, ProtocolError } from '@process-sandbox/abstractions';

const { admitWorkerMessage } = await import(new URL('../packages/core/dist/worker-gate.js', import.meta.url).href);

const health = { rss: 1, heapUsed: 0, external: 0, arrayBuffers: 0, handles: 0, cpuUserMs: 0, cpuSystemMs: 0, calls: 0, uptimeMs: 0 };
const remote = () => Object.assign(new Error('boom'), { name: 'Error' });

/** Runs one message through the gate; returns which handler it reached, with its arguments. */
function admit(message, handshaking) {
  const seen = [];
  const record = (name) => (...args) => seen.push([name, ...args]);
  admitWorkerMessage(message, handshaking, {
    ready: record('ready'),
    reply: record('reply'),
    startFailed: record('startFailed'),
    fatal: record('fatal'),
    health: record('health'),
    protocolError: (problem) => seen.push(['protocolError', problem instanceof ProtocolError ? problem.message : String(problem)]),
    failureError: () => new Error('mapped'),
  });
  expect(seen, `exactly one handler for ${JSON.stringify(message)}`).to.have.length(1);
  return seen[0];
}

describe('unit: the host half of the gate', function () {
  it('takes Ready only during the handshake', () => {
    expect(admit([MessageKind.Ready, ['add'], health], true)[0]).to.equal('ready');
    expect(admit([MessageKind.Ready, ['add'], health], false)).to.deep.equal(['protocolError', 'Ready outside the handshake']);
  });

  it('takes replies and Health only after it', () => {
    expect(admit([MessageKind.Result, 7, 'v', health], false).slice(0, 4)).to.deep.equal(['reply', 7, health, false]);
    expect(admit([MessageKind.Result, 7, 'v', health], true)[0]).to.equal('protocolError');
    expect(admit([MessageKind.Health, health], false)).to.deep.equal(['health', health]);
    expect(admit([MessageKind.Health, health], true)[0]).to.equal('protocolError');
  });

  it('a Failure with id 0: a start failure in the handshake, a fatal error after; anything else is a protocol error', () => {
    expect(admit([MessageKind.Failure, 0, remote(), FailureReason.StartFailed, health], true)[0]).to.equal('startFailed');
    expect(admit([MessageKind.Failure, 0, remote(), FailureReason.StartFailed, health], false)).to.deep.equal(['protocolError', 'a start failure after the handshake']);
    expect(admit([MessageKind.Failure, 0, remote(), FailureReason.Fatal, health], false)[0]).to.equal('fatal');
    expect(admit([MessageKind.Failure, 0, remote(), FailureReason.Thrown, health], false)[0]).to.equal('protocolError');
  });

  it('a Failure for a call: a reply, marked cancelled for Cancelled; StartFailed or Fatal with an id is a protocol error', () => {
    const [kind, id, , cancelled, settle] = admit([MessageKind.Failure, 3, remote(), FailureReason.Cancelled, health], false);
    expect([kind, id, cancelled]).to.deep.equal(['reply', 3, true]);
    let rejected;
    settle({ reject: (e) => (rejected = e) });
    expect(rejected.message).to.equal('mapped');
    expect(admit([MessageKind.Failure, 3, remote(), FailureReason.Fatal, health], false)[0]).to.equal('protocolError');
    expect(admit([MessageKind.Failure, 3, remote(), FailureReason.Thrown, health], true)[0]).to.equal('protocolError');
  });

  it('a malformed message or an unknown kind is a protocol error, never a throw', () => {
    expect(admit([MessageKind.Result, 'x'], false)[0]).to.equal('protocolError');
    expect(admit([99, 1], false)[0]).to.equal('protocolError');
    expect(admit('not an array', false)[0]).to.equal('protocolError');
  });
});

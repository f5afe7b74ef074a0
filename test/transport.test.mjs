import { expect } from 'chai';
import { readFileSync, statSync } from 'node:fs';
import { connect } from 'node:net';
import { dirname } from 'node:path';
import { encodeFrame, encodeValue, MessageKind, PROTOCOL_VERSION } from '@process-sandbox/abstractions';
import { ProcessProxy } from '@process-sandbox/core';
import { disposeProxies, fixture, memoryLogger } from './support/pools.mjs';
import { environOf, markedProcesses, waitFor } from './support/processes.mjs';

/** Connects, sends `bytes`, and resolves with what came back before the host hung up. */
function strangerSends(path, bytes) {
  return new Promise((resolve, reject) => {
    const received = [];
    const socket = connect(path, () => socket.write(bytes));
    socket.on('data', (d) => received.push(d));
    socket.on('error', reject);
    socket.on('close', () => resolve(Buffer.concat(received)));
  });
}

describe('the pipe between host and worker', function () {
  afterEach(disposeProxies);

  it('lives in a private 0700 directory, the token never in argv, and a stranger with a wrong token is dropped unanswered', async () => {
    const logger = memoryLogger();
    const before = new Set(markedProcesses());
    // The worker waits 1.5 s before connecting, which leaves the listening pipe open to strangers.
    const creating = ProcessProxy.create({
      workerModule: fixture('torture.mjs'),
      workerExport: 'Torture',
      execArgv: ['--import', 'data:text/javascript,await new Promise((r) => setTimeout(r, 1500))'],
      logger,
    });
    const workerPid = await waitFor(() => markedProcesses().find((p) => !before.has(p)), 'the worker process to appear');
    expect(workerPid, 'the worker process appeared').to.be.a('number');
    const env = environOf(workerPid);
    const pipe = env.PROCESS_SANDBOX_PIPE;
    const token = env.PROCESS_SANDBOX_TOKEN;
    expect(pipe).to.be.a('string');
    expect(token).to.be.a('string').with.length.above(30);
    expect(statSync(dirname(pipe)).mode & 0o777).to.equal(0o700);
    expect(readFileSync(`/proc/${workerPid}/cmdline`, 'latin1')).to.not.include(token);

    const wrongToken = encodeFrame(encodeValue([MessageKind.Hello, PROTOCOL_VERSION, 'x'.repeat(token.length), 4242]));
    expect((await strangerSends(pipe, wrongToken)).length, 'no byte answered to a wrong token').to.equal(0);
    const garbage = Buffer.from([0, 0, 0, 3, 0xc1, 0xc1, 0xc1]);
    expect((await strangerSends(pipe, garbage)).length, 'no byte answered to garbage').to.equal(0);
    const oversized = Buffer.from([0x7f, 0xff, 0xff, 0xff, 1, 2, 3]);
    expect((await strangerSends(pipe, oversized)).length, 'no byte answered to a 2 GiB length prefix').to.equal(0);

    const proxy = await creating;
    try {
      expect(await proxy.pid()).to.equal(workerPid);
      expect(logger.lines.filter((l) => /dropped a connection/.test(l.msg))).to.have.length(3);
    } finally {
      await ProcessProxy.poolOf(proxy).dispose();
    }
    // The socket was unlinked once the real worker connected, and the directory is gone after dispose.
    expect(() => statSync(dirname(pipe))).to.throw(/ENOENT/);
  });
});

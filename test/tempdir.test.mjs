// Nothing left in the temp dir, however the host ends: the channel is an inherited socket, so no
// pool creates anything there (it used to be a private directory for the sockets, removed only by
// dispose()). Each host runs with its own TMPDIR, which must hold no `process-sandbox-*` entry while
// it runs, nor after it threw, called process.exit, or was killed by SIGTERM or SIGKILL.
import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { fixture } from './support/pools.mjs';
import { isAlive, waitFor, waitForExit } from './support/processes.mjs';

const hostScript = fileURLToPath(fixture('tmpdir-host.mjs'));
const ours = (dir) => readdirSync(dir).filter((name) => name.startsWith('process-sandbox-'));

describe('the temp dir', function () {
  this.timeout(30_000);
  const dirs = [];
  const hosts = [];
  afterEach(() => {
    for (const host of hosts.splice(0)) if (host.exitCode === null && host.signalCode === null) host.kill('SIGKILL');
    for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
  });

  for (const [ending, mode, signal, expected] of [
    ['throws', 'throw', undefined, { code: 1, signal: null }],
    ['calls process.exit', 'exit', undefined, { code: 3, signal: null }],
    ['is killed by SIGTERM', 'wait', 'SIGTERM', { code: null, signal: 'SIGTERM' }],
    ['is killed by SIGKILL', 'wait', 'SIGKILL', { code: null, signal: 'SIGKILL' }],
  ]) {
    it(`a host that ${ending} leaves no process-sandbox-* entry in its TMPDIR, and no worker`, async () => {
      const dir = mkdtempSync(join(tmpdir(), 'ps-tmpdir-'));
      dirs.push(dir);
      const host = spawn(process.execPath, [hostScript, mode], { env: { ...process.env, TMPDIR: dir }, stdio: ['ignore', 'pipe', 'pipe'] });
      hosts.push(host);
      let stderr = '';
      host.stderr.on('data', (d) => (stderr += d));
      const exited = new Promise((resolve) => host.once('exit', (code, sig) => resolve({ code, signal: sig })));
      const report = await new Promise((resolve, reject) => {
        let out = '';
        host.stdout.on('data', (d) => {
          out += d;
          if (out.includes('\n')) resolve(JSON.parse(out.split('\n')[0]));
        });
        exited.then(() => reject(new Error(`the host exited before reporting:\n${stderr}`)));
      });
      expect(report.workers).to.have.length(2);
      expect(ours(dir), 'while the pool runs').to.deep.equal([]);
      if (signal) host.kill(signal);
      expect(await exited).to.deep.equal(expected);
      if (mode === 'throw') expect(stderr).to.include('the host application crashed');
      await waitForExit(report.workers, 5000);
      expect(report.workers.filter(isAlive)).to.deep.equal([]);
      expect(ours(dir), `after the host ${ending}`).to.deep.equal([]);
      await waitFor(() => ours(dir).length === 0, 'still no process-sandbox-* entry a moment later');
    });
  }
});

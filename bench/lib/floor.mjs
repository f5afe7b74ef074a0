/**
 * The floor of a worker's start: `node -e` with a one-line script that connects to a Unix socket
 * and echoes back what it reads. Nothing is loaded but Node itself, so create() → first result is
 * a process start, Node's own bootstrap, a connect and one round trip: what no Node process pool can
 * beat. One child per create(); echo(x) is a line of JSON there and back.
 */
import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { join } from 'node:path';

const SCRIPT = "const s = require('net').connect(process.argv[1]); s.on('data', (d) => s.write(d)); s.on('end', () => s.end())";

export async function startFloor(dir) {
  const path = join(dir, `floor-${Math.random().toString(36).slice(2)}.sock`);
  const server = createServer();
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(path, resolve);
  });
  // execArgv of the bench (--cpu-prof) must not reach it: spawn, not fork.
  const child = spawn(process.execPath, ['-e', SCRIPT, path], { stdio: 'ignore' });
  const exited = new Promise((resolve) => child.once('exit', resolve));
  const socket = await new Promise((resolve, reject) => {
    server.once('connection', resolve);
    child.once('error', reject);
    exited.then(() => reject(new Error(`the floor child exited before it connected (${child.exitCode ?? child.signalCode})`)));
  });
  server.close();
  let buffered = '';
  const waiting = [];
  socket.setEncoding('utf8');
  socket.on('data', (text) => {
    buffered += text;
    for (let nl = buffered.indexOf('\n'); nl >= 0; nl = buffered.indexOf('\n')) {
      const line = buffered.slice(0, nl);
      buffered = buffered.slice(nl + 1);
      waiting.shift()?.resolve(JSON.parse(line));
    }
  });
  socket.on('close', () => {
    for (const w of waiting.splice(0)) w.reject(new Error('the floor child closed its socket'));
  });
  return {
    call(method, x) {
      if (method !== 'echo') return Promise.reject(new Error(`the floor answers echo only, not ${method}`));
      return new Promise((resolve, reject) => {
        waiting.push({ resolve, reject });
        socket.write(`${JSON.stringify(x)}\n`);
      });
    },
    async close() {
      socket.end();
      const timer = setTimeout(() => child.kill('SIGKILL'), 2000);
      await exited;
      clearTimeout(timer);
    },
    pid: child.pid,
  };
}

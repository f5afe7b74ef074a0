/**
 * A raw baseline child (see raw-pool.mjs): answers add(a, b), echo(x) and tagged(x) → [x, pid],
 * one request at a time, over a Unix socket (argv: socket PATH) or fork's IPC channel (argv: ipc).
 */
import { connect } from 'node:net';
import { COUNT, FrameReader, INVOKE, RESULT, decodeFrame, frame } from './framing.mjs';

const methods = {
  add: (a, b) => a + b,
  echo: (x) => x,
  tagged: (x) => [x, process.pid],
};

let answered = 0;

function answer([kind, id, method, args]) {
  if (kind === INVOKE) {
    const fn = methods[method];
    if (fn === undefined) throw new Error(`baseline child: unknown method ${method}`);
    answered++;
    return [RESULT, id, fn(...args)];
  }
  if (kind === COUNT) return [COUNT, id, answered];
  throw new Error(`baseline child: unexpected message kind ${kind}`);
}

if (process.argv[2] === 'socket') {
  const socket = connect(process.argv[3]);
  const reader = new FrameReader((bytes) => socket.write(frame(answer(decodeFrame(bytes)))));
  socket.on('data', (chunk) => reader.push(chunk));
  // The parent closed the pipe or went away: nothing more to do.
  socket.on('close', () => process.exit(0));
  socket.on('error', () => process.exit(1));
} else if (process.argv[2] === 'ipc') {
  process.on('message', (message) => process.send(answer(message)));
  process.on('disconnect', () => process.exit(0));
  process.send('ready');
} else {
  throw new Error('usage: raw-child.mjs socket PATH | ipc');
}

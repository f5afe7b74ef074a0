/**
 * Preloaded (`-r`) into a worker by worker-start.mjs --marks: records, as seconds since the worker's
 * exec (process.uptime()), the stages of its start, to the file named by START_MARKS, without any
 * change to the worker runtime. Stages: the preload itself (Node's bootstrap done); the watchdog
 * thread created, online and ready (its first message); the channel's first write (the Hello, so the
 * runtime is loaded), its first data (the Init) and its second write (Ready).
 */
const { appendFileSync } = require('node:fs');
const net = require('node:net');
const threads = require('node:worker_threads');

const file = process.env.START_MARKS;
delete process.env.START_MARKS;
const mark = (name) => appendFileSync(file, `${name}\t${(process.uptime() * 1000).toFixed(2)}\n`);
mark('preload (Node bootstrap done)');

const { Worker } = threads;
threads.Worker = class extends Worker {
  constructor(...args) {
    super(...args);
    mark('watchdog thread created');
    this.once('online', () => mark('watchdog thread online'));
    this.once('message', () => mark('watchdog thread ready'));
  }
};

let writes = 0;
const write = net.Socket.prototype.write;
net.Socket.prototype.write = function (...args) {
  writes++;
  if (writes === 1) mark('Hello written (runtime loaded)');
  if (writes === 2) mark('Ready written');
  return write.apply(this, args);
};
let data = false;
const emit = net.Socket.prototype.emit;
net.Socket.prototype.emit = function (event, ...args) {
  if (event === 'data' && !data) {
    data = true;
    mark('Init arrived');
  }
  return emit.call(this, event, ...args);
};

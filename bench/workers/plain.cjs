// The echo service as plain exported functions: jest-worker, worker-nodes and tinypool load this.
exports.echo = (x) => x;
exports.tagged = (x) => [x, process.pid];

// The echo service in worker-farm's shape: every function takes a callback last.
exports.echo = (x, callback) => callback(null, x);
exports.tagged = (x, callback) => callback(null, [x, process.pid]);

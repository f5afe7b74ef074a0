// The echo service registered with workerpool's worker API.
const workerpool = require('workerpool');
workerpool.worker({
  echo: (x) => x,
  tagged: (x) => [x, process.pid],
});

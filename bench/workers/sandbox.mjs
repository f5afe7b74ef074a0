// The echo service as process-sandbox loads it: a class, instantiated once per worker.
export class Echo {
  echo(x) {
    return x;
  }
  tagged(x) {
    return [x, process.pid];
  }
}

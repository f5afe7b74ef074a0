// The stream and callback service of bench/lib/streams.mjs: small items from an async generator,
// a method that calls back into the host, and an echo for the plain-call reference.
export class Streams {
  async *items(n) {
    for (let i = 0; i < n; i++) yield i;
  }
  /** Calls `fn` n times, awaiting each answer, and returns the sum of the answers. */
  async callBack(n, fn) {
    let sum = 0;
    for (let i = 0; i < n; i++) sum += await fn(i);
    return sum;
  }
  echo(x) {
    return x;
  }
}

/**
 * One call, from `proxy.method(...)` to its settlement. The promise handed to the caller is made
 * here and settled only through `resolve`/`reject`, which act once: whichever path ends a call
 * first (reply, crash, timeout, dispose) wins, and a late second attempt is reported, not applied.
 */
export class Call {
  readonly promise: Promise<unknown>;
  readonly enqueuedAt = performance.now();
  startedAt: number | undefined;
  #settled = false;
  #resolve!: (value: unknown) => void;
  #reject!: (error: Error) => void;

  constructor(
    readonly id: number,
    readonly method: string,
    /** The encoded Invoke frame, ready to write: arguments are encoded once, before queueing. */
    readonly frame: Buffer,
    readonly timeoutMs: number,
  ) {
    this.promise = new Promise((resolve, reject) => {
      this.#resolve = resolve;
      this.#reject = reject;
    });
  }

  get settled(): boolean {
    return this.#settled;
  }

  /** Returns false if the call had already settled. */
  resolve(value: unknown): boolean {
    if (this.#settled) return false;
    this.#settled = true;
    this.#resolve(value);
    return true;
  }

  reject(error: Error): boolean {
    if (this.#settled) return false;
    this.#settled = true;
    this.#reject(error);
    return true;
  }
}

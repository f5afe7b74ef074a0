import { Console } from 'node:console';

/**
 * The shape of logger the pool writes to: pino's, and console's near enough.
 *
 * Levels, from chattiest: `trace` for what happens on every call (a worker going busy and back to
 * idle), `debug` for a worker's life (started, ready, stopping, killed and why), `info` for what a
 * worker prints on stdout and for recycling, `warn` and `error` for problems. A logger at pino's
 * default level (`info`) therefore prints nothing per call.
 */
export interface Logger {
  /** Optional: loggers without it (and `console`, see `forPool`) get no per-call lines. */
  trace?(obj: object, msg?: string): void;
  debug(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

/** A logger whose `trace` is always there (a no-op when the given logger has none). */
export type PoolLogger = Logger & { trace(obj: object, msg?: string): void };

const noop = (): void => {};
export const silentLogger: PoolLogger = { trace: noop, debug: noop, info: noop, warn: noop, error: noop };

/** Whether `level` goes nowhere: then the pool does not even build the message. */
export function discards(logger: PoolLogger, level: keyof PoolLogger): boolean {
  return logger[level] === noop;
}

/**
 * The logger as the pool uses it. `console.trace` is not a log level but a stack dump to stderr:
 * `logger: console` (or any `new Console(…)`) gets no per-call lines (pass `{ ...console, trace: console.debug }` to see
 * them). A logger without `trace` gets none either. The logger's own methods are called on the
 * logger itself, so pino's `this` stays right.
 */
export function forPool(logger: Logger): PoolLogger {
  if (logger === silentLogger) return silentLogger;
  if (typeof logger.trace === 'function' && !(logger instanceof Console)) return logger as PoolLogger;
  return {
    trace: noop,
    debug: (obj, msg) => logger.debug(obj, msg),
    info: (obj, msg) => logger.info(obj, msg),
    warn: (obj, msg) => logger.warn(obj, msg),
    error: (obj, msg) => logger.error(obj, msg),
  };
}

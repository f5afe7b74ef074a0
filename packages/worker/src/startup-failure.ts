/** Loading the implementation failed; its message says what to fix. The worker reports it as a start failure. */
export class StartupFailure extends Error {
  override name = 'StartupFailure';
}

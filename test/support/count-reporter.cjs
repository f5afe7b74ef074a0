// The spec reporter, plus one closing line CI reads: "N passed, N failed[, N skipped]", taken from
// mocha's own statistics (hook failures count as failures).
'use strict';
const Mocha = require('mocha');
const { EVENT_RUN_END } = Mocha.Runner.constants;

class CountReporter extends Mocha.reporters.Spec {
  constructor(runner, options) {
    super(runner, options);
    runner.once(EVENT_RUN_END, () => {
      const { passes, failures, pending } = runner.stats;
      // After the spec epilogue, which is also printed on 'end'.
      setImmediate(() => process.stdout.write(`\n${passes} passed, ${failures} failed${pending ? `, ${pending} skipped` : ''}\n`));
    });
  }
}
module.exports = CountReporter;

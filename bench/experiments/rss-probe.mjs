#!/usr/bin/env node
/**
 * Experiment behind docs/benchmarks.md's RSS analysis: bench/compare.mjs's RSS probe (a host process
 * of its own, a pool of 2, 64 callers) with more checkpoints and any extra Node flags, printing the
 * V8 heap spaces at each.
 *
 * Usage: node bench/experiments/rss-probe.mjs ['process-sandbox' | 'raw socket ping-pong'] [node flags…]
 *   e.g. node bench/experiments/rss-probe.mjs process-sandbox --max-semi-space-size=1
 */
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const [id = 'process-sandbox', ...flags] = process.argv.slice(2);
const mib = (bytes) => (bytes / 2 ** 20).toFixed(1);
const child = fork(fileURLToPath(new URL('../compare.mjs', import.meta.url)), ['--rss-probe', id, '10000,100000,300000,1000000', '64'], { execArgv: ['--expose-gc', ...flags] });
child.on('message', ({ points, failures }) => {
  console.log(`${id} ${flags.join(' ')}`);
  console.log('calls      time(s)  RSS    heapTotal  new space  old space  code  | after gc(): RSS  heap used   (MiB)');
  for (const p of points) {
    console.log(
      `${String(p.calls).padEnd(10)} ${p.seconds.toFixed(1).padStart(6)}  ${mib(p.rss).padStart(6)} ${mib(p.heapTotal).padStart(9)} ${mib(p.newSpace).padStart(10)} ${mib(p.oldSpace).padStart(10)} ${mib(p.codeSpace).padStart(5)}  | ${mib(p.afterGc.rss).padStart(15)} ${mib(p.afterGc.heapUsed).padStart(10)}`,
    );
  }
  if (failures.length) console.log('failures:', failures);
});
child.on('exit', (code) => (process.exitCode = code ?? 1));

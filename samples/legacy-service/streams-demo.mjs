// The part of the main demo that shows callbacks and streams (issue 17): the legacy library's
// progress callback drives a progress bar in the host, and its row cursor is streamed to the host
// row by row, with backpressure, and closed when the reader stops early.
import { randomBytes } from 'node:crypto';
import { ProcessProxy } from '@process-sandbox/core';
import { convert as referenceConvert, rowScore } from './js-stand-in.mjs';

const BAR_WIDTH = 32;
const ROWS = 50_000;
const SEED = 7;

const bar = (percent) => `[${'█'.repeat(Math.round((percent * BAR_WIDTH) / 100)).padEnd(BAR_WIDTH, '░')}] ${String(percent).padStart(3)}%`;

/** Runs both; `log` writes a line. Returns the facts the summary checks. */
export async function showCallbacksAndStreams(service, log) {
  const facts = {};

  // A progress callback: the C++ code calls it after each of its 32 passes; each call crosses to the host.
  const bytes = randomBytes(512 * 1024);
  const seen = [];
  let mark = 25;
  log(`  convertWithProgress(${bytes.length / 1024} KiB, 'encode', onProgress): the library reports its progress to a function of the host`);
  const encoded = await service.convertWithProgress(bytes, 'encode', (percent) => {
    seen.push(percent);
    if (percent >= mark) {
      log(`  ${bar(percent)}`);
      while (mark <= percent) mark += 25;
    }
  });
  facts.progress = {
    calls: seen.length,
    ordered: seen.every((p, i) => i === 0 || p >= seen[i - 1]),
    last: seen.at(-1),
    correct: Buffer.isBuffer(encoded) && encoded.equals(referenceConvert(bytes)),
  };

  // A row cursor, streamed: every row checked against the host's reference, the buffer never past its window.
  log(`  rows(${ROWS}): the library's cursor, streamed row by row (for await … of await service.rows(n))`);
  const started = performance.now();
  let count = 0;
  let wrong = 0;
  let maxBuffered = 0;
  const stream = await service.rows(ROWS, SEED);
  for await (const row of stream) {
    if (row.id !== count || row.score !== rowScore(SEED, row.id) || row.name !== `row-${row.id}`) wrong++;
    count++;
    maxBuffered = Math.max(maxBuffered, stream.buffered);
    if (count % 10_000 === 0) log(`  … ${count.toLocaleString('en')} rows`);
  }
  const seconds = (performance.now() - started) / 1000;
  facts.rows = { count, wrong, maxBuffered, perSecond: Math.round(count / seconds) };

  // Stopping early: `break` returns the worker's generator, whose finally closes the cursor.
  facts.early = await ProcessProxy.session(service, async (session) => {
    let read = 0;
    for await (const row of await session.rows(1_000_000, SEED)) if (++read === 100 || row.id < 0) break;
    return { read, openAfter: await session.openCursors() };
  });
  log(`  read 100 of a million rows, then break: the worker closed its cursor (${facts.early.openAfter} open)`);
  return facts;
}

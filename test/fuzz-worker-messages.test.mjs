// Property tests of the gate every worker → host message passes (packages/abstractions/src/validate.ts
// and the worker handle's receive path), with well-formed MessagePack of the wrong shape: wrong types,
// missing and extra fields, unknown kinds and reasons, unknown, duplicate and unsafe ids, oversize
// lists and objects, Errors with hostile fields.
//
//   1. In process, the bulk (GATE_FUZZ_RUNS, default 3000): each message is framed and encoded as a
//      worker would, then goes through the host's receive path up to the gate (pre-decode check,
//      decoder, checkWorkerMessage). The gate never throws anything but ProtocolError, and it accepts
//      exactly the messages an independent reading of protocol.ts accepts.
//   2. Through real fake-worker processes (GATE_FUZZ_PROCESS_RUNS, default 150): a forged script of
//      such messages answers a call. The host never throws, the call settles exactly once with its
//      value or a typed error, every call settles once, and the pool keeps serving.
// `npm run soak` runs both with more cases.
import { expect } from 'chai';
import fc from 'fast-check';
import { decodeValue, encodeFrame, encodeValue, MAX_EVENT_BYTES, MAX_METHOD_NAME_LENGTH, MAX_METHODS, checkWorkerMessage, precheckFrame, ProtocolError, SerializationError } from '@process-sandbox/abstractions';
import { MethodNotFoundError, RemoteError, WorkerCrashedError } from '@process-sandbox/core';
import { disposeProxies } from './support/pools.mjs';
import { counted, expectServing, forgingPool, forbidEscapes, warmWorker } from './support/forging.mjs';
import { probeEventLoopStalls } from './support/stall-probe.mjs';
import { waitForExit } from './support/processes.mjs';

const RUNS = Number(process.env.GATE_FUZZ_RUNS ?? 3000);
const PROCESS_RUNS = Number(process.env.GATE_FUZZ_PROCESS_RUNS ?? 150);
const SEED = process.env.GATE_FUZZ_SEED === undefined ? undefined : Number(process.env.GATE_FUZZ_SEED);

// ─── what a worker might send ───────────────────────────────────────────────

const HEALTH_FIELDS = ['rss', 'heapUsed', 'external', 'arrayBuffers', 'handles', 'cpuUserMs', 'cpuSystemMs', 'calls', 'uptimeMs'];
const junk = fc.oneof(
  fc.string({ maxLength: 6 }),
  fc.constantFrom(NaN, Infinity, -Infinity, -1, -2, -0.5, 2 ** 53, null, undefined, true),
  fc.bigInt({ min: -(2n ** 70n), max: 2n ** 70n }),
  fc.array(fc.nat(), { maxLength: 3 }),
  fc.double(),
);
const validHealth = fc.record(Object.fromEntries(HEALTH_FIELDS.map((f) => [f, f === 'handles' ? fc.integer({ min: -1, max: 1e6 }) : fc.oneof(fc.nat(), fc.double({ min: 0, max: 1e12, noNaN: true }))])));
const health = fc.oneof(
  { weight: 4, arbitrary: validHealth },
  { weight: 3, arbitrary: fc.tuple(validHealth, fc.constantFrom(...HEALTH_FIELDS), junk).map(([h, k, v]) => ({ ...h, [k]: v })) },
  { weight: 1, arbitrary: fc.tuple(validHealth, fc.constantFrom(...HEALTH_FIELDS)).map(([h, k]) => Object.fromEntries(Object.entries(h).filter(([key]) => key !== k))) },
  { weight: 1, arbitrary: fc.tuple(validHealth, fc.dictionary(fc.string({ maxLength: 8 }), fc.nat(), { minKeys: 1, maxKeys: 40 })).map(([h, extra]) => ({ ...h, ...extra })) },
  { weight: 1, arbitrary: fc.integer({ min: 9, max: 5000 }).map((n) => Object.fromEntries(Array.from({ length: n }, (_, i) => [`k${i}`, i]))) },
  { weight: 1, arbitrary: fc.constant(null) },
  { weight: 1, arbitrary: fc.anything({ maxDepth: 2 }) },
);
const id = fc.oneof(fc.integer({ min: -5, max: 50 }), fc.integer(), fc.constant(0), fc.constant(2 ** 53), fc.double(), fc.string({ maxLength: 3 }), fc.constant(null), fc.bigInt({ min: -10n, max: 10n }));
const reason = fc.oneof({ weight: 4, arbitrary: fc.constantFrom(0, 1, 2, 3, 4, 5) }, { weight: 1, arbitrary: fc.oneof(fc.integer(), fc.double(), fc.string({ maxLength: 3 }), fc.constant(null)) });
const errorValue = fc.oneof(
  { weight: 3, arbitrary: fc.tuple(fc.constantFrom(Error, TypeError, RangeError), fc.string({ maxLength: 20 })).map(([E, m]) => new E(m)) },
  {
    weight: 3,
    arbitrary: fc
      .record({ name: fc.oneof(fc.string({ maxLength: 10 }), junk), stack: fc.oneof(fc.string({ maxLength: 30 }), junk), props: fc.dictionary(fc.string({ maxLength: 8 }), fc.oneof(fc.string({ maxLength: 5 }), junk), { maxKeys: 4 }) }, { requiredKeys: [] })
      .map(({ name, stack, props }) => {
        const e = new Error('forged');
        if (props) Object.assign(e, props);
        if (name !== undefined) e.name = name;
        if (stack !== undefined) e.stack = stack;
        return e;
      }),
  },
  { weight: 2, arbitrary: fc.oneof(fc.constant(null), fc.string({ maxLength: 10 }), fc.record({ name: fc.string(), message: fc.string() }), fc.anything({ maxDepth: 1 })) },
);
const name = fc.oneof({ weight: 6, arbitrary: fc.string({ minLength: 1, maxLength: 12 }) }, { weight: 1, arbitrary: fc.constantFrom('then', 'echo', '', 'x'.repeat(MAX_METHOD_NAME_LENGTH), 'y'.repeat(MAX_METHOD_NAME_LENGTH + 1)) }, { weight: 1, arbitrary: junk });
const methods = fc.oneof(
  { weight: 5, arbitrary: fc.array(name, { maxLength: 12 }) },
  { weight: 1, arbitrary: fc.integer({ min: MAX_METHODS - 2, max: MAX_METHODS + 2 }).map((n) => Array.from({ length: n }, (_, i) => `m${i}`)) },
  { weight: 1, arbitrary: fc.anything({ maxDepth: 1 }) },
);
const kind = fc.oneof(fc.integer({ min: -2, max: 19 }), fc.integer(), fc.double(), fc.string({ maxLength: 2 }), fc.constant(null));

/** A message, often with one field too many or too few. */
const shaped = fc.oneof(
  fc.tuple(fc.constant(2), methods, health),
  fc.tuple(fc.constant(4), id, fc.anything({ maxDepth: 2 }), health),
  fc.tuple(fc.constant(5), id, errorValue, reason, health),
  fc.tuple(fc.constant(6), health),
  // Streams, callbacks, events (protocol 5).
  fc.tuple(fc.constant(11), id),
  fc.tuple(fc.constant(12), id, fc.anything({ maxDepth: 2 })),
  fc.tuple(fc.constant(15), id, fc.oneof(id, fc.integer({ min: 1, max: 1e6 })), fc.oneof(fc.integer({ min: -2, max: 70 }), fc.double(), junk), fc.oneof({ weight: 3, arbitrary: fc.array(fc.anything({ maxDepth: 1 }), { maxLength: 3 }) }, { weight: 1, arbitrary: junk })),
  fc.tuple(fc.constant(17), fc.oneof({ weight: 4, arbitrary: name }, { weight: 1, arbitrary: fc.string({ minLength: 250, maxLength: 260 }) }), fc.anything({ maxDepth: 2 })),
  fc.tuple(kind, fc.array(fc.anything({ maxDepth: 2 }), { maxLength: 5 })).map(([k, rest]) => [k, ...rest]),
);
const message = fc.oneof(
  { weight: 8, arbitrary: fc.tuple(shaped, fc.constantFrom('as is', 'as is', 'as is', 'drop last', 'extra field')).map(([m, how]) => (how === 'drop last' ? m.slice(0, -1) : how === 'extra field' ? [...m, 0] : m)) },
  { weight: 1, arbitrary: fc.anything({ maxDepth: 3 }) },
);

// ─── an independent reading of protocol.ts ──────────────────────────────────

const isPlain = (v) => typeof v === 'object' && v !== null && !Array.isArray(v) && [Object.prototype, null].includes(Object.getPrototypeOf(v));
function healthOk(h) {
  if (!isPlain(h) || Object.keys(h).length !== 9) return false;
  return HEALTH_FIELDS.every((f) => Object.hasOwn(h, f) && typeof h[f] === 'number' && Number.isFinite(h[f]) && (h[f] >= 0 || (f === 'handles' && h[f] === -1)));
}
const safeId = (v) => typeof v === 'number' && Number.isSafeInteger(v);
function errorOk(e) {
  if (!(e instanceof Error)) return false;
  const d = (k) => Object.getOwnPropertyDescriptor(e, k);
  if ([d('name'), d('message'), d('stack')].some((x) => x && !('value' in x))) return false;
  return typeof e.name === 'string' && typeof e.message === 'string' && (e.stack === undefined || typeof e.stack === 'string');
}
function acceptable(m) {
  if (!Array.isArray(m)) return false;
  switch (m[0]) {
    case 2:
      return m.length === 3 && Array.isArray(m[1]) && m[1].length >= 1 && m[1].length <= MAX_METHODS && new Set(m[1]).size === m[1].length && m[1].every((n) => typeof n === 'string' && n.length >= 1 && n.length <= MAX_METHOD_NAME_LENGTH) && healthOk(m[2]);
    case 4:
      return m.length === 4 && safeId(m[1]) && m[1] !== 0 && (m[3] === null || healthOk(m[3]));
    case 5:
      return m.length === 5 && safeId(m[1]) && errorOk(m[2]) && [0, 1, 2, 3, 4, 5].includes(m[3]) && (m[4] === null || healthOk(m[4]));
    case 6:
      return m.length === 2 && healthOk(m[1]);
    case 11:
      return m.length === 2 && safeId(m[1]) && m[1] > 0;
    case 12:
      return m.length === 3 && safeId(m[1]) && m[1] > 0;
    case 15:
      return m.length === 5 && safeId(m[1]) && m[1] > 0 && safeId(m[2]) && m[2] > 0 && Number.isInteger(m[3]) && m[3] >= 0 && m[3] < 64 && Array.isArray(m[4]);
    case 17:
      return m.length === 3 && typeof m[1] === 'string' && m[1].length >= 1 && m[1].length <= 256 && encodeValue(m).length <= MAX_EVENT_BYTES;
    default:
      return false;
  }
}

/** The host's receive path up to the gate, on one frame body: what Channel and WorkerHandle do before acting. */
function receive(body) {
  precheckFrame(body);
  let decoded;
  try {
    decoded = decodeValue(body);
  } catch (error) {
    throw new ProtocolError(`Undecodable frame: ${error.message}`, { cause: error });
  }
  return { decoded, checked: checkWorkerMessage(decoded) };
}

describe('fuzz: what a worker sends goes through one gate', function () {
  this.timeout(Math.max(300_000, PROCESS_RUNS * 1000));

  it(`in process: ${RUNS} arbitrary messages; the gate throws only ProtocolError and accepts exactly what the protocol allows`, () => {
    const tally = { accepted: 0, refused: 0, unencodable: 0, undecodable: 0 };
    fc.assert(
      fc.property(message, (m) => {
        let frame;
        try {
          frame = encodeFrame(encodeValue(m));
        } catch (error) {
          expect(error).to.be.an.instanceOf(SerializationError); // a value the worker could not send either
          tally.unencodable++;
          return;
        }
        const body = frame.subarray(4);
        let decoded;
        try {
          decoded = decodeValue(body);
        } catch {
          tally.undecodable++; // e.g. an Error whose forged message cannot become a string: the Channel refuses the frame
        }
        let outcome;
        try {
          outcome = receive(body);
        } catch (error) {
          expect(error, `what the gate threw for ${show(m)}`).to.be.an.instanceOf(ProtocolError);
          expect(error.message).to.be.a('string').and.not.equal('');
          if (decoded !== undefined) expect(acceptable(decoded), `refused but acceptable: ${show(m)}: ${error.message}`).to.equal(false);
          tally.refused++;
          return;
        }
        expect(acceptable(outcome.decoded), `accepted but malformed: ${show(m)}`).to.equal(true);
        expect(outcome.checked).to.equal(outcome.decoded);
        tally.accepted++;
      }),
      { numRuns: RUNS, seed: SEED },
    );
    console.log(`      ${RUNS} messages: ${tally.accepted} accepted, ${tally.refused} refused with ProtocolError (${tally.undecodable} of them undecodable), ${tally.unencodable} not encodable at all`);
    expect(tally.accepted, 'some messages were well-formed').to.be.above(RUNS / 20);
    expect(tally.refused, 'most were not').to.be.above(RUNS / 3);
  });

  describe('through real fake-worker processes', function () {
    // Around the host under hostile workers only: the in-process part above is one synchronous loop of its own.
    probeEventLoopStalls('the forged replies of fake workers');
    forbidEscapes(disposeProxies);

    it(`${PROCESS_RUNS} forged replies: the host never throws, each call settles exactly once with its value or a typed error, the pool keeps serving`, async () => {
      const ctx = await forgingPool();
      const outcomes = {};
      // A step may answer with the call's own id (and ids next to it), not only with ids out of nowhere.
      const step = fc.oneof(
        { weight: 3, arbitrary: message.filter(encodable) },
        { weight: 2, arbitrary: fc.tuple(shaped, fc.constantFrom('$id', '$id+1', '$id-1')).map(([m, i]) => (typeof m[0] === 'number' && m.length > 1 && [4, 5, 11, 12, 15].includes(m[0]) ? [m[0], i, ...m.slice(2)] : m)).filter(encodable) },
      );
      await fc.assert(
        fc.asyncProperty(fc.array(step, { minLength: 1, maxLength: 3 }), async (script) => {
          const pid = await warmWorker(ctx);
          // Every script ends with a proper reply, so that a call whose forgery was accepted ends too.
          // The fake worker sends an array step as a message, and anything else wrapped as { value }.
          const steps = script.map((m) => (Array.isArray(m) ? m : { value: m }));
          const entry = counted(ctx.proxy.forge([...steps, [4, '$id', 'end', null]]));
          ctx.calls++;
          await entry.done;
          // A forged StreamOpen that was believed: the call's value is the stream; read it to its end.
          if (entry.value?.[Symbol.asyncIterator]) {
            try {
              for await (const item of entry.value); // eslint-disable-line no-unused-vars
              entry.value = 'end';
            } catch (error) {
              entry.value = undefined;
              entry.error = error;
            }
          }
          const outcome = entry.error === undefined ? 'value' : entry.error.constructor.name;
          outcomes[outcome] = (outcomes[outcome] ?? 0) + 1;
          if (entry.error !== undefined) {
            expect([WorkerCrashedError, RemoteError, SerializationError, MethodNotFoundError].some((E) => entry.error instanceof E), `a typed error, got ${entry.error?.stack}`).to.equal(true);
            if (entry.error instanceof WorkerCrashedError) expect(entry.error.cause, entry.error.message).to.be.an.instanceOf(ProtocolError);
          }
          // Unless the closing reply settled the call, something forged settled it first and the
          // closing reply is a duplicate: the worker must die for it (before it could fail a next call).
          if (entry.value !== 'end') await waitForExit([pid]);
          await expectServing(ctx);
          expect(entry.settlements).to.equal(1);
        }),
        { numRuns: PROCESS_RUNS, seed: SEED },
      );
      console.log(`      ${PROCESS_RUNS} forged replies through fake workers: ${JSON.stringify(outcomes)}`);
      expect(Object.values(outcomes).reduce((a, b) => a + b, 0)).to.equal(PROCESS_RUNS);
      expect(outcomes.WorkerCrashedError, 'most forgeries killed their worker').to.be.above(PROCESS_RUNS / 3);
    });
  });
});

function encodable(value) {
  try {
    encodeValue(value);
    return true;
  } catch {
    return false;
  }
}

function show(m) {
  try {
    return JSON.stringify(m, (_, v) => (typeof v === 'bigint' ? `${v}n` : v instanceof Error ? { error: v.name, message: v.message } : v))?.slice(0, 300);
  } catch {
    return String(typeof m);
  }
}

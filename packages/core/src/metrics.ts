/**
 * OpenTelemetry metrics of a pool, through `@opentelemetry/api` only: the application chooses the
 * SDK and the exporter. Without a registered MeterProvider the API hands out a no-op meter; we
 * notice that and subscribe to nothing, so an uninstrumented application pays for no listener and
 * the pool keeps skipping its callSettled work.
 *
 * The meter is obtained once per pool, when the pool is created (the metrics API has no proxy
 * provider: a meter obtained before the SDK is registered stays a no-op). Everything is driven by
 * the pool's own events and `stats()`; nothing here reaches into the pool.
 *
 *   process_sandbox.calls              counter    {call}     pool, method, outcome
 *   process_sandbox.call.duration      histogram  ms         pool, method, outcome
 *   process_sandbox.call.queue_wait    histogram  ms         pool, method
 *   process_sandbox.call.timeouts      counter    {timeout}  pool, method
 *   process_sandbox.workers            gauge      {worker}   pool, state
 *   process_sandbox.worker.recycles    counter    {worker}   pool, reason
 *   process_sandbox.worker.crashes     counter    {worker}   pool
 *
 * `@opentelemetry/api` is an optional peer dependency, imported on the first `create()` that wants
 * metrics and never before: an application that installs without it (--legacy-peer-deps, Yarn 1,
 * pnpm without auto peers) loads and runs without it. Only types are imported statically.
 */
import type { Attributes, Counter, Histogram, Meter, ObservableCallback, ObservableGauge } from '@opentelemetry/api';
import { ConfigurationError } from '@process-sandbox/abstractions';
import type { PoolEvents } from './pool-events.js';
import type { ProcessPool } from './pool.js';
import type { WorkerState } from './worker-handle.js';

const METER_NAME = 'process-sandbox';

/** Trivial calls take well under a millisecond; the SDK's default buckets start at 5 ms. */
const DURATION_BUCKETS_MS = [0.1, 0.25, 0.5, 1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 30_000, 60_000];

/** Reported on every collection, zero included, so that a state that empties shows as 0, not as stale. */
const POOL_STATES = ['spawning', 'handshaking', 'idle', 'busy', 'draining', 'stopping'] as const satisfies readonly WorkerState[];

interface Instruments {
  calls: Counter;
  duration: Histogram;
  queueWait: Histogram;
  timeouts: Counter;
  recycles: Counter;
  crashes: Counter;
  workers: ObservableGauge;
  fuel: Counter;
}

type OpenTelemetryApi = typeof import('@opentelemetry/api');

/** The API, once loaded, and the class of its no-op meter (what `getMeter` returns while no SDK is registered). */
export interface MetricsApi {
  api: OpenTelemetryApi;
  NoopMeter: abstract new (...args: never[]) => unknown;
}

let loading: Promise<MetricsApi | undefined> | undefined;

/**
 * The metrics API for a pool with `metrics: setting`: undefined when metrics are off (`false`), or
 * when they are left to the default and `@opentelemetry/api` is not installed; a ConfigurationError
 * when they were asked for (`true`) and it is not installed. Loaded once per process.
 */
export async function loadMetricsApi(setting: boolean | undefined): Promise<MetricsApi | undefined> {
  if (setting === false) return undefined;
  loading ??= import('@opentelemetry/api').then(
    (api: OpenTelemetryApi) => ({ api, NoopMeter: api.createNoopMeter().constructor as MetricsApi['NoopMeter'] }),
    (error: NodeJS.ErrnoException) => {
      if (error?.code === 'ERR_MODULE_NOT_FOUND' && String(error.message).includes('@opentelemetry/api')) return undefined;
      throw error;
    },
  );
  const loaded = await loading;
  if (!loaded && setting === true) {
    throw new ConfigurationError('metrics', "is true, but the optional peer dependency '@opentelemetry/api' is not installed: npm install @opentelemetry/api (and an OpenTelemetry SDK), or leave metrics unset");
  }
  return loaded;
}

/** One set of instruments per meter; pools share them and tell themselves apart by the `pool` attribute. */
const instrumentsByMeter = new WeakMap<Meter, Instruments>();

let nextPoolId = 1;

function instrumentsOf(meter: Meter, ValueType: OpenTelemetryApi['ValueType']): Instruments {
  let instruments = instrumentsByMeter.get(meter);
  if (instruments) return instruments;
  const ms = { unit: 'ms', valueType: ValueType.DOUBLE, advice: { explicitBucketBoundaries: DURATION_BUCKETS_MS } };
  instruments = {
    calls: meter.createCounter('process_sandbox.calls', { description: 'Calls settled, by method and outcome (success, or the error class code)', unit: '{call}', valueType: ValueType.INT }),
    duration: meter.createHistogram('process_sandbox.call.duration', { description: 'Time from a call being made to its settling, queue wait included', ...ms }),
    queueWait: meter.createHistogram('process_sandbox.call.queue_wait', { description: 'Time a call waited for a worker (calls that reached one)', ...ms }),
    timeouts: meter.createCounter('process_sandbox.call.timeouts', { description: 'Calls that ran past methodCallTimeoutMs (their worker was killed)', unit: '{timeout}', valueType: ValueType.INT }),
    recycles: meter.createCounter('process_sandbox.worker.recycles', { description: 'Workers retired by the recycle policy, by reason', unit: '{worker}', valueType: ValueType.INT }),
    crashes: meter.createCounter('process_sandbox.worker.crashes', { description: 'Workers that died unexpectedly (timeouts and start failures excluded)', unit: '{worker}', valueType: ValueType.INT }),
    workers: meter.createObservableGauge('process_sandbox.workers', { description: 'Workers in the pool, by state', unit: '{worker}', valueType: ValueType.INT }),
    fuel: meter.createCounter('process_sandbox.wasm.fuel', { description: 'Fuel used by WebAssembly calls (wasm.fuelPerCall), by method', unit: '{fuel}', valueType: ValueType.INT }),
  };
  instrumentsByMeter.set(meter, instruments);
  return instruments;
}

/**
 * Reports a pool's calls and workers to the meter (by default `process-sandbox` from the global
 * MeterProvider). Detaches itself when the pool is disposed (the returned function detaches early):
 * its listeners go at once; its workers gauge reports zeros at the next collection and is then
 * removed. With a no-op meter (no SDK registered) it does nothing at all.
 */
export function instrumentPool(pool: ProcessPool, otel: MetricsApi | undefined, meter: Meter | undefined = otel?.api.metrics.getMeter(METER_NAME)): () => void {
  const poolId = String(nextPoolId++);
  if (!otel || !meter || meter instanceof otel.NoopMeter) return () => {};
  const { ValueType } = otel.api;
  const { calls, duration, queueWait, timeouts, recycles, crashes, workers, fuel: fuelUsed } = instrumentsOf(meter, ValueType);

  // Attribute objects are built once per distinct value and reused: a call records without allocating.
  const poolAttributes: Attributes = { pool: poolId };
  const byMethod = new Map<string, { attributes: Attributes; byOutcome: Map<string, Attributes> }>();
  const methodEntry = (method: string) => {
    let entry = byMethod.get(method);
    if (!entry) byMethod.set(method, (entry = { attributes: { pool: poolId, method }, byOutcome: new Map() }));
    return entry;
  };
  const callAttributes = (method: string, outcome: string): Attributes => {
    const { byOutcome } = methodEntry(method);
    let attributes = byOutcome.get(outcome);
    if (!attributes) byOutcome.set(outcome, (attributes = { pool: poolId, method, outcome }));
    return attributes;
  };
  const keyed = new Map<string, Attributes>();
  const attributesFor = (key: string, value: string): Attributes => {
    const id = `${key}\0${value}`;
    let attributes = keyed.get(id);
    if (!attributes) keyed.set(id, (attributes = { pool: poolId, [key]: value }));
    return attributes;
  };

  const onCallSettled: PoolEvents['callSettled'] = ({ method, outcome, durationMs, queueWaitMs, fuel }) => {
    const attributes = callAttributes(method, outcome);
    calls.add(1, attributes);
    duration.record(durationMs, attributes);
    if (queueWaitMs !== undefined) queueWait.record(queueWaitMs, methodEntry(method).attributes);
    if (fuel !== undefined) fuelUsed.add(fuel, methodEntry(method).attributes);
  };
  const onCallTimedOut: PoolEvents['callTimedOut'] = ({ method }) => timeouts.add(1, methodEntry(method).attributes);
  const onWorkerRecycled: PoolEvents['workerRecycled'] = ({ reason }) => recycles.add(1, attributesFor('reason', reason));
  const onWorkerCrashed: PoolEvents['workerCrashed'] = () => crashes.add(1, poolAttributes);
  let live = true;
  const observeWorkers: ObservableCallback = (result) => {
    const counts = new Map<string, number>(POOL_STATES.map((state) => [state, 0]));
    if (live) for (const worker of pool.stats().workers) counts.set(worker.state, (counts.get(worker.state) ?? 0) + 1);
    for (const [state, count] of counts) result.observe(count, attributesFor('state', state));
    // A disposed pool reports zeros once, then stops: with cumulative temporality the SDK goes on
    // exporting a series' last value after its callback is gone, and a pool's last word should not
    // be "1 idle worker". Until then the callback keeps the disposed pool reachable. Removed once this
    // collection has run every callback (removing one while the SDK iterates them would skip the next).
    if (!live) queueMicrotask(() => workers.removeCallback(observeWorkers));
  };

  pool.on('callSettled', onCallSettled);
  pool.on('callTimedOut', onCallTimedOut);
  pool.on('workerRecycled', onWorkerRecycled);
  pool.on('workerCrashed', onWorkerCrashed);
  workers.addCallback(observeWorkers);

  const detach = (): void => {
    if (!live) return;
    live = false;
    pool.off('callSettled', onCallSettled);
    pool.off('callTimedOut', onCallTimedOut);
    pool.off('workerRecycled', onWorkerRecycled);
    pool.off('workerCrashed', onWorkerCrashed);
    pool.off('disposed', detach);
  };
  pool.once('disposed', detach);
  return detach;
}

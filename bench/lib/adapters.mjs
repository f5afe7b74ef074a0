/**
 * Every library and baseline that bench/compare.mjs measures, behind one shape:
 *
 *   create({ workers, recycle }) → { call(method, x): Promise, close(): Promise, verify?(): string[] }
 *
 * `method` is 'echo' (returns x) or 'tagged' (returns [x, worker pid]); each takes one argument
 * (tinypool's run() passes one). Pools are created with exactly `workers` processes where the
 * library allows (min = max), and with each library's defaults otherwise. Children get
 * `execArgv: []` where the library lets us say so, so that flags given to the bench (--cpu-prof)
 * do not reach them.
 *
 * Fields:
 *   group        'library' | 'peer' | 'baseline'
 *   oneAtATime   the pool runs one call at a time per worker (true for every pool here except
 *                worker-farm's default of 10 calls in flight per worker); the throughput target
 *                compares with the best peer that does
 *   dispatch     how calls reach a worker, for the notes
 *   buffers      how a Buffer argument and result cross, for the notes
 *   json         Buffers cross as JSON ({ type: 'Buffer', data: [...] }) and are rebuilt on the host
 *   recycle      how to retire a worker after 100 calls, or undefined (`noRecycle` says why)
 *   workloads    which workloads apply (all when undefined)
 */
import { fileURLToPath } from 'node:url';

const here = (path) => fileURLToPath(new URL(path, import.meta.url));
const WORKERS = {
  sandbox: new URL('../workers/sandbox.mjs', import.meta.url),
  plain: here('../workers/plain.cjs'),
  workerpool: here('../workers/workerpool.cjs'),
  workerFarm: here('../workers/worker-farm.cjs'),
};
const METHODS = ['echo', 'tagged'];

/**
 * A Buffer that crossed as JSON back to a Buffer: Buffer.toJSON's { type: 'Buffer', data: [...] },
 * or a byte array's { '0': b0, '1': b1, … } (tinypool's JSON path); anything else as is.
 */
export function fromJson(value) {
  if (value === null || typeof value !== 'object' || ArrayBuffer.isView(value)) return value;
  if (value.type === 'Buffer' && Array.isArray(value.data)) return Buffer.from(value.data);
  if (Object.getPrototypeOf(value) === Object.prototype) return Buffer.from(Object.values(value));
  return value;
}

export function adapters({ dir, onError }) {
  return [
    {
      id: 'process-sandbox',
      group: 'library',
      oneAtATime: true,
      dispatch: 'one call at a time per worker, the next one sent ahead (one-call lookahead); Unix socket, MessagePack',
      buffers: 'MessagePack extension: Buffer in, Buffer out, bytes as they are',
      recycle: 'processRecycleThreshold: 100 (warm spare on by default with a recycling limit)',
      async create({ workers, recycle }) {
        const { ProcessProxy } = await import('@process-sandbox/core');
        const proxy = await ProcessProxy.create({
          workerModule: WORKERS.sandbox,
          workerExport: 'Echo',
          minPoolSize: workers,
          maxPoolSize: workers,
          ...(recycle ? { processRecycleThreshold: recycle } : {}),
        });
        const pool = ProcessProxy.poolOf(proxy);
        const echo = proxy.echo;
        const tagged = proxy.tagged;
        return {
          call: (method, x) => (method === 'echo' ? echo(x) : tagged(x)),
          close: () => pool.dispose(),
          verify: () => {
            const t = pool.stats().totals;
            return t.failed !== 0 || t.crashes !== 0 ? [`process-sandbox: ${t.failed} call(s) failed, ${t.crashes} crash(es)`] : [];
          },
        };
      },
    },
    {
      id: 'workerpool',
      group: 'peer',
      oneAtATime: true,
      dispatch: "one call at a time per worker; fork IPC (workerType: 'process')",
      buffers: 'fork IPC, JSON: a Buffer crosses as { type, data: [numbers] } and comes back as that object (rebuilt with Buffer.from on the host, timed)',
      json: true,
      advanced: true,
      noRecycle: 'no per-worker call limit (terminate and re-create the pool by hand)',
      async create({ workers, serialization }) {
        const { default: workerpool } = await import('workerpool');
        const pool = workerpool.pool(WORKERS.workerpool, {
          workerType: 'process',
          minWorkers: workers,
          maxWorkers: workers,
          forkOpts: { execArgv: [], ...(serialization ? { serialization } : {}) },
        });
        return { call: (method, x) => pool.exec(method, [x]), close: () => pool.terminate() };
      },
    },
    {
      id: 'jest-worker',
      group: 'peer',
      oneAtATime: true,
      dispatch: 'one call at a time per worker; fork IPC (enableWorkerThreads: false)',
      buffers: "fork IPC, serialization: 'advanced' (its default): Buffer in, Buffer out",
      noRecycle: 'idleMemoryLimit retires a worker by memory, not by call count',
      async create({ workers }) {
        const { Worker } = await import('jest-worker');
        const worker = new Worker(WORKERS.plain, {
          enableWorkerThreads: false,
          numWorkers: workers,
          exposedMethods: METHODS,
          maxRetries: 0,
          forkOptions: { execArgv: [] },
        });
        return { call: (method, x) => worker[method](x), close: () => worker.end() };
      },
    },
    {
      id: 'worker-farm',
      group: 'peer',
      oneAtATime: false,
      dispatch: 'up to 10 calls in flight per worker (maxConcurrentCallsPerWorker default); fork IPC',
      buffers: 'fork IPC, JSON: a Buffer crosses as { type, data: [numbers] } (rebuilt with Buffer.from on the host, timed)',
      json: true,
      advanced: true,
      recycle: 'maxCallsPerWorker: 100',
      create: (options) => workerFarm(options, {}),
    },
    {
      id: 'worker-farm (1 per worker)',
      group: 'peer',
      variantOf: 'worker-farm',
      oneAtATime: true,
      dispatch: 'maxConcurrentCallsPerWorker: 1; fork IPC',
      workloads: ['tput1', 'tput2'],
      create: (options) => workerFarm(options, { maxConcurrentCallsPerWorker: 1 }),
    },
    {
      id: 'worker-nodes',
      group: 'peer',
      oneAtATime: true,
      dispatch: "one call at a time per worker (maxTasksPerWorker default 1); workerType: 'process', calls over a Unix socket with msgpack-lite",
      buffers: 'msgpack-lite over a Unix socket: Buffer in, Buffer out',
      recycle: 'workerEndurance: 100',
      async create({ workers, recycle }) {
        const { default: WorkerNodes } = await import('worker-nodes');
        const nodes = new WorkerNodes(WORKERS.plain, {
          workerType: 'process',
          minWorkers: workers,
          maxWorkers: workers,
          autoStart: true,
          taskMaxRetries: 0,
          ...(recycle ? { workerEndurance: recycle } : {}),
        });
        await nodes.ready();
        return { call: (method, x) => nodes.call[method](x), close: () => nodes.terminate() };
      },
    },
    {
      id: 'tinypool',
      group: 'peer',
      oneAtATime: true,
      dispatch: "one call at a time per worker (concurrentTasksPerWorker default 1); runtime: 'child_process', fork IPC",
      buffers: "fork IPC, JSON (its default for child_process): a Buffer reaches the worker as an object with one key per byte ({ '0': 104, '1': 105, … }) and comes back so (rebuilt with Buffer.from on the host, timed)",
      json: true,
      advanced: true,
      noRecycle: 'isolateWorkers (a fresh worker for every call) or maxMemoryLimitBeforeRecycle (by heap size); nothing by call count',
      async create({ workers, serialization }) {
        const { default: Tinypool } = await import('tinypool');
        const pool = new Tinypool({
          runtime: 'child_process',
          filename: WORKERS.plain,
          minThreads: workers,
          maxThreads: workers,
          execArgv: [],
          ...(serialization ? { serialization } : {}),
        });
        return { call: (method, x) => pool.run(x, { name: method }), close: () => pool.destroy() };
      },
    },
    {
      id: 'raw fork IPC',
      group: 'baseline',
      oneAtATime: true,
      dispatch: 'child_process.fork, process.send (JSON), one request in flight per child, FIFO queue on the host',
      buffers: 'fork IPC, JSON: a Buffer crosses as { type, data: [numbers] } (rebuilt with Buffer.from on the host, timed)',
      json: true,
      advanced: true,
      noRecycle: 'baseline',
      create: ({ workers, serialization }) => rawAdapter(workers, { transport: 'ipc', serialization: serialization ?? 'json', onError }),
    },
    {
      id: 'raw socket ping-pong',
      group: 'baseline',
      floor: true,
      oneAtATime: true,
      dispatch: 'Unix socket, 4-byte length prefix + MessagePack (the library framing), one request in flight per child, FIFO queue on the host',
      buffers: 'MessagePack bin: Buffer in, Uint8Array view of the frame out',
      noRecycle: 'baseline',
      create: ({ workers }) => rawAdapter(workers, { transport: 'socket', dir, onError }),
    },
    {
      id: 'raw socket (detached)',
      group: 'baseline',
      oneAtATime: true,
      dispatch: 'the raw socket ping-pong with each child started detached (its own session, so on Linux its own scheduling autogroup), as process-sandbox starts its workers; not in the Buffer workload',
      buffers: 'as the raw socket ping-pong',
      noRecycle: 'baseline',
      workloads: ['seq', 'tput1', 'tput2', 'cold'],
      create: ({ workers }) => rawAdapter(workers, { transport: 'socket', dir, detached: true, onError }),
    },
    {
      id: 'node -e + connect (floor)',
      group: 'baseline',
      oneAtATime: true,
      dispatch: '`node -e` with a one-line script that connects to a Unix socket and echoes lines back: nothing loaded but Node itself (bench/lib/floor.mjs); cold start only',
      buffers: 'n/a',
      noRecycle: 'baseline',
      workloads: ['cold'],
      async create() {
        const { startFloor } = await import('./floor.mjs');
        return startFloor(dir);
      },
    },
    {
      id: 'in-process call',
      group: 'baseline',
      inProcess: true,
      oneAtATime: false,
      dispatch: 'a direct call of the same function in this process, awaited',
      buffers: 'n/a: passes a reference',
      noRecycle: 'no process',
      workloads: ['seq', 'tput1', 'tput2'],
      async create() {
        const { Echo } = await import(WORKERS.sandbox.href);
        const impl = new Echo();
        const call = async (method, x) => (method === 'echo' ? impl.echo(x) : impl.tagged(x));
        return { call, close: async () => {} };
      },
    },
  ];
}

async function workerFarm({ workers, recycle, serialization }, extra) {
  const { default: farm } = await import('worker-farm');
  const api = farm(
    {
      maxConcurrentWorkers: workers,
      maxCallsPerWorker: recycle ?? Infinity,
      maxRetries: 0,
      autoStart: true,
      workerOptions: { execArgv: [], ...(serialization ? { serialization } : {}) },
      ...extra,
    },
    WORKERS.workerFarm,
    METHODS,
  );
  const call = (method, x) => new Promise((resolve, reject) => api[method](x, (error, value) => (error ? reject(error) : resolve(value))));
  return { call, close: () => new Promise((resolve) => farm.end(api, resolve)) };
}

async function rawAdapter(workers, options) {
  const { RawPool } = await import('./raw-pool.mjs');
  const pool = await RawPool.start(workers, options);
  return {
    call: (method, x) => pool.invoke(method, [x]),
    close: () => pool.close(),
    kill: () => pool.killAll(),
    verify: async () => {
      const answered = await pool.answeredByChild();
      const sent = pool.sentByChild;
      const replies = pool.repliesByChild;
      return answered.some((n, i) => n !== sent[i] || n !== replies[i])
        ? [`raw ${options.transport}: children answered ${answered}, host sent ${sent}, host received ${replies}`]
        : [];
    },
    completed: () => pool.completed,
  };
}


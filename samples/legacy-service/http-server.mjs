// The legacy service over HTTP (node:http only): concurrent clients call the legacy library, whose
// defects crash, hang and leak worker processes underneath, and the server stays up.
//
//   POST /convert?direction=encode|decode   body: bytes (application/octet-stream) → the converted bytes
//   GET  /parse?input=a%3D1%3Bb%3D2         → 200 { input, result }  ("POISON" crashes a worker: 502)
//   GET  /sleep?ms=5000                     → blocks a worker; past the call timeout: 504
//   GET  /stats                             → the server's counters and the pool's stats()
//   GET  /health                            → 200 { ok: true, pid }
//
// Failures of the legacy code come back as JSON, with the status saying whose fault it was:
//   502 WorkerCrashedError (the worker died: { error, code, message, pid, signal, exitCode })
//   504 CallTimeoutError (the worker hung and was killed)
//   503 queue full or timed out, circuit open, pool disposed (try again later)
//   422 the legacy code rejected the input (a RemoteError wrapping its TypeError/RangeError)
//   500 anything else
//
// Run it on its own:   node samples/legacy-service/http-server.mjs [port]     (default 8080, 127.0.0.1)
// or use startLegacyServer() as http-demo.mjs does.
import { createServer } from 'node:http';
import { pathToFileURL } from 'node:url';
import { CallTimeoutError, PoolDisposedError, QueueFullError, QueueTimeoutError, RemoteError, WorkerCrashedError } from '@process-sandbox/core';
import { chooseBackend, describeBackend, fallbackNotice, openLegacyService } from './service-host.mjs';

/** The pool behind the server, unless the caller passes its own options. */
export const DEFAULT_POOL = {
  minPoolSize: 2,
  maxPoolSize: 4,
  maxQueueSize: 200,
  queueTimeoutMs: 10_000,
  methodCallTimeoutMs: 2_000,
  maxMemoryMB: 256,
  maxHandles: 256,
  healthIntervalMs: 500,
  shutdownGraceMs: 2_000,
};

const MAX_BODY_BYTES = 8 * 1024 * 1024;
const MAX_SLEEP_MS = 60_000;

class HttpError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

/** The HTTP status and JSON body for an error from the service. */
export function errorResponse(error) {
  const name = error?.constructor?.name ?? 'Error';
  const body = { error: name, code: error?.code, message: error?.message ?? String(error) };
  if (error instanceof HttpError) return { status: error.status, body: { error: error.status === 404 ? 'NotFound' : error.status === 413 ? 'PayloadTooLarge' : 'BadRequest', message: error.message } };
  if (error instanceof WorkerCrashedError) {
    return { status: 502, body: { ...body, pid: error.pid, signal: error.signal, exitCode: error.exitCode, method: error.method } };
  }
  if (error instanceof CallTimeoutError) return { status: 504, body: { ...body, pid: error.pid, timeoutMs: error.timeoutMs, method: error.method } };
  if (error instanceof QueueFullError || error instanceof QueueTimeoutError || error instanceof PoolDisposedError || error?.code === 'ERR_PS_CIRCUIT_OPEN') {
    return { status: 503, body };
  }
  if (error instanceof RemoteError) {
    const badInput = error.remoteName === 'TypeError' || error.remoteName === 'RangeError';
    return { status: badInput ? 422 : 500, body: { ...body, remoteName: error.remoteName } };
  }
  return { status: 500, body };
}

function sendJson(res, status, value) {
  const body = JSON.stringify(value);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

async function readBody(req) {
  const chunks = [];
  let size = 0;
  for await (const chunk of req) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) throw new HttpError(413, `the body exceeds ${MAX_BODY_BYTES} bytes`);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

/**
 * Starts the pool and the HTTP server. Resolves once the server listens.
 * @param {{ port?: number, host?: string, backend?: 'native' | 'js', pool?: object, logger?: object }} [options]
 */
export async function startLegacyServer(options = {}) {
  const backend = options.backend ?? chooseBackend().backend;
  const svc = await openLegacyService({ backend, ...DEFAULT_POOL, ...options.pool, ...(options.logger ? { logger: options.logger } : {}) });
  const { service, pool } = svc;
  const counters = { requests: 0, byStatus: {} };
  const startedAt = Date.now();

  async function route(req, res, url) {
    const path = url.pathname;
    if (req.method === 'POST' && path === '/convert') {
      const direction = url.searchParams.get('direction') ?? 'encode';
      if (direction !== 'encode' && direction !== 'decode') throw new HttpError(400, "direction must be 'encode' or 'decode'");
      const bytes = await readBody(req);
      const converted = await service.convert(bytes, direction);
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': converted.length });
      return res.end(converted);
    }
    if (req.method === 'GET' && path === '/parse') {
      const input = url.searchParams.get('input');
      if (input === null) throw new HttpError(400, 'the input query parameter is required');
      return sendJson(res, 200, { input, result: await service.parse(input) });
    }
    if (req.method === 'GET' && path === '/sleep') {
      const ms = Number(url.searchParams.get('ms') ?? 1000);
      if (!Number.isInteger(ms) || ms < 0 || ms > MAX_SLEEP_MS) throw new HttpError(400, `ms must be a whole number from 0 to ${MAX_SLEEP_MS}`);
      return sendJson(res, 200, { slept: await service.blockingSleep(ms) });
    }
    if (req.method === 'GET' && path === '/stats') {
      return sendJson(res, 200, { server: { pid: process.pid, backend, uptimeMs: Date.now() - startedAt, ...counters }, pool: pool.stats() });
    }
    if (req.method === 'GET' && path === '/health') return sendJson(res, 200, { ok: true, pid: process.pid });
    throw new HttpError(404, `no route for ${req.method} ${path}`);
  }

  const server = createServer((req, res) => {
    counters.requests++;
    res.on('finish', () => (counters.byStatus[res.statusCode] = (counters.byStatus[res.statusCode] ?? 0) + 1));
    const url = new URL(req.url ?? '/', 'http://localhost');
    route(req, res, url).catch((error) => {
      const { status, body } = errorResponse(error);
      if (res.headersSent) return res.destroy(error);
      sendJson(res, status, body);
    });
  });
  // A slow or vanished client must not hold a socket forever.
  server.requestTimeout = 30_000;
  server.headersTimeout = 10_000;

  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, options.host ?? '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = /** @type {import('node:net').AddressInfo} */ (server.address());
  const url = `http://${address.family === 'IPv6' ? `[${address.address}]` : address.address}:${address.port}`;

  let closing;
  return {
    server,
    url,
    backend,
    service,
    pool,
    startedPids: svc.startedPids,
    counters,
    /** Stops accepting requests, closes connections, disposes the pool (every worker exits). */
    close() {
      closing ??= (async () => {
        const closed = new Promise((resolve) => server.close(resolve));
        server.closeIdleConnections();
        await Promise.race([closed, new Promise((resolve) => setTimeout(resolve, 2_000).unref())]);
        server.closeAllConnections();
        await svc.close();
      })();
      return closing;
    },
  };
}

// ─── Run on its own ───────────────────────────────────────────────────────────────────────────────

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const choice = chooseBackend();
  if (choice.error) {
    console.error(`ERROR: ${choice.error}`);
    process.exit(1);
  }
  if (choice.fallback) console.log(fallbackNotice(choice.reason).join('\n'));
  const port = Number(process.argv[2] ?? process.env.PORT ?? 8080);
  const app = await startLegacyServer({ port, backend: choice.backend });
  console.log(`Legacy service listening on ${app.url} (workers run ${describeBackend(choice.backend)})`);
  console.log('Try:');
  console.log(`  curl -s '${app.url}/parse?input=a%3D1%3Bb%3Dtwo'`);
  console.log(`  curl -s '${app.url}/parse?input=POISON'            # a worker segfaults: 502, the server stays up`);
  console.log(`  curl -s '${app.url}/sleep?ms=5000'                 # a worker hangs: 504 after ${DEFAULT_POOL.methodCallTimeoutMs} ms`);
  console.log(`  curl -s --data-binary @README.md '${app.url}/convert' | curl -s --data-binary @- '${app.url}/convert?direction=decode'`);
  console.log(`  curl -s '${app.url}/stats'`);
  console.log('Ctrl+C stops it.');
  const stop = (signal) => {
    console.log(`\n${signal}: closing the server and disposing the pool…`);
    app.close().then(() => process.exit(0), () => process.exit(1));
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

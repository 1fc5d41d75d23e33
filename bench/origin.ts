/**
 * The benchmark's WWW server, the same for every setup (run as its own process so that the
 * load generator and the proxies never share its event loop). Built on the e2e helper's
 * startOrigin. Prints one JSON line {"port":N} when listening.
 *
 *   GET /1k               1 KiB text/plain (the small-request test)
 *   GET /bulk?bytes=N     N octets streamed in 64 KiB writes with backpressure, Content-Length N
 *   POST|PUT /upload      counts the request body, answers {"bytes":N}
 */
import { randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { startOrigin, type Origin } from '../test/helpers/e2e.ts';

const SMALL = Buffer.alloc(1024, 'x');
const CHUNK = randomBytes(64 * 1024);
let origin: Origin | undefined;

function handle(req: IncomingMessage, res: ServerResponse): void {
  // startOrigin records every request; keep that record short during long runs.
  if (origin && origin.requests.length > 1000) origin.requests.length = 0;
  const url = req.url ?? '/';
  const q = url.indexOf('?');
  const path = q < 0 ? url : url.slice(0, q);
  if (path === '/1k') {
    req.resume();
    res.writeHead(200, { 'content-type': 'text/plain', 'content-length': SMALL.length });
    res.end(SMALL);
    return;
  }
  if (path === '/bulk') {
    req.resume();
    const n = Number(new URLSearchParams(url.slice(q + 1)).get('bytes') ?? 0);
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': n });
    let sent = 0;
    const more = (): void => {
      while (sent < n) {
        const c = n - sent >= CHUNK.length ? CHUNK : CHUNK.subarray(0, n - sent);
        sent += c.length;
        if (!res.write(c)) {
          res.once('drain', more);
          return;
        }
      }
      res.end();
    };
    res.on('close', () => (sent = n + 1));
    more();
    return;
  }
  if (path === '/upload' && (req.method === 'POST' || req.method === 'PUT')) {
    let bytes = 0;
    req.on('data', (c: Buffer) => (bytes += c.length));
    req.on('end', () => {
      const body = JSON.stringify({ bytes });
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
      res.end(body);
    });
    return;
  }
  req.resume();
  res.writeHead(404, { 'content-type': 'text/plain', 'content-length': 10 });
  res.end('not found\n');
}

origin = await startOrigin(handle);
origin.server.keepAliveTimeout = 65_000;
origin.server.requestTimeout = 0;
process.stdout.write(`${JSON.stringify({ port: origin.port })}\n`);
const stop = () => void origin!.close().then(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);

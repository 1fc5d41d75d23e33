/**
 * One hop of the minimal Node two-hop forwarder (the floor for any Node proxy pair): a
 * node:http server that forwards each request with an undici keep-alive Pool, streaming both
 * bodies, no crypto, no logging. Two of these in a row make the pair.
 *
 *   node dist/ID/forwarder.mjs --upstream http://127.0.0.1:PORT      (npm run build; what the benchmark runs)
 *   node --import tsx bench/forwarder.ts --upstream http://127.0.0.1:PORT
 *
 * The benchmark runs it precompiled by scripts/build.mjs, as the sidecars run (harness.ts
 * nodeScript), so neither side pays for tsx; SWS_BUILD=never runs both through tsx.
 * Accepts origin-form and absolute-form targets. Prints {"port":N} when listening.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { Pool, type Dispatcher } from 'undici';

const i = process.argv.indexOf('--upstream');
const upstream = i > 0 ? process.argv[i + 1] : undefined;
if (!upstream) throw new Error('usage: forwarder.ts --upstream http://HOST:PORT');

const HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'proxy-authorization', 'proxy-authenticate', 'te', 'trailer', 'transfer-encoding', 'upgrade']);
const pool = new Pool(upstream, { connections: 128, pipelining: 1, keepAliveTimeout: 30_000, headersTimeout: 0, bodyTimeout: 0 });

function requestHeaders(raw: readonly string[]): string[] {
  const out: string[] = [];
  for (let j = 0; j < raw.length; j += 2) if (!HOP.has(raw[j]!.toLowerCase())) out.push(raw[j]!, raw[j + 1]!);
  return out;
}

function responseHeaders(h: Record<string, string | string[] | undefined>): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const k in h) if (!HOP.has(k) && h[k] !== undefined) out[k] = h[k]!;
  return out;
}

async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
  let path = req.url ?? '/';
  if (!path.startsWith('/')) {
    const u = new URL(path);
    path = u.pathname + u.search;
  }
  const hasBody = req.headers['content-length'] !== undefined || req.headers['transfer-encoding'] !== undefined;
  const r = await pool.request({ method: req.method as Dispatcher.HttpMethod, path, headers: requestHeaders(req.rawHeaders), body: hasBody ? req : null });
  res.writeHead(r.statusCode, responseHeaders(r.headers));
  // pipe(), not stream.pipeline(): pipeline costs an AbortController and a DOMException per call.
  r.body.once('error', () => res.destroy());
  res.once('close', () => {
    if (!res.writableFinished) r.body.destroy();
  });
  r.body.pipe(res);
}

const server = createServer({ keepAliveTimeout: 65_000, requestTimeout: 0 }, (req, res) => {
  handle(req, res).catch(() => {
    if (!res.headersSent) {
      res.writeHead(502);
      res.end();
    } else res.destroy();
  });
});
server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`${JSON.stringify({ port: (server.address() as { port: number }).port })}\n`);
});
const stop = () => {
  server.closeAllConnections();
  server.close(() => void pool.close().finally(() => process.exit(0)));
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);

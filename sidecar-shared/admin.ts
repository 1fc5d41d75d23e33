/**
 * The admin endpoint of both sidecars (contract): GET /healthz (process up), GET /readyz
 * (database open, keys loaded, listening), GET /metrics (Prometheus text format).
 */
import { createServer, type Server } from 'node:http';
import type { SidecarMetrics } from './metrics.ts';

export interface AdminOptions {
  readonly metrics: SidecarMetrics;
  /** Returns undefined when ready, or why not. */
  readonly notReadyReason: () => string | undefined;
}

export function createAdminServer(opts: AdminOptions): Server {
  return createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain' }).end('method not allowed\n');
      return;
    }
    if (path === '/healthz') {
      res.writeHead(200, { 'content-type': 'text/plain', 'cache-control': 'no-store' }).end('ok\n');
    } else if (path === '/readyz') {
      const why = opts.notReadyReason();
      res.writeHead(why ? 503 : 200, { 'content-type': 'text/plain', 'cache-control': 'no-store' }).end(why ? `not ready: ${why}\n` : 'ready\n');
    } else if (path === '/metrics') {
      opts.metrics.registry.metrics().then(
        (text) => res.writeHead(200, { 'content-type': opts.metrics.registry.contentType, 'cache-control': 'no-store' }).end(text),
        () => res.writeHead(500, { 'content-type': 'text/plain' }).end('metrics unavailable\n'),
      );
    } else {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found: try /healthz, /readyz or /metrics\n');
    }
  });
}

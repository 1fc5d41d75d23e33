/**
 * Forwarding to the unchanged WWW server (patent 29/claim 6) with undici: one keep-alive
 * Pool per upstream origin, verified TLS with an optional private CA, timeouts that become
 * 502/504 in words, and request bodies streamed through without buffering.
 */
import { Readable } from 'node:stream';
import { Pool, type Dispatcher } from 'undici';
import type { FieldLine } from '../core/bhttp.ts';
import { SwsError } from '../core/errors.ts';
import type { Site } from '../store/index.ts';
import { flatFields } from '../sidecar-shared/headers.ts';
import type { CanonicalRequest } from './request.ts';

export interface UpstreamTimeouts {
  readonly connectTimeoutMs: number;
  readonly upstreamHeadersTimeoutMs: number;
  readonly upstreamBodyTimeoutMs: number;
}

/** Why the upstream could not answer; `status` is what the client is told (sealed). */
export class UpstreamError extends SwsError {
  readonly status: 502 | 504;
  constructor(code: string, status: 502 | 504, message: string, cause?: unknown) {
    super(code, message, { cause });
    this.status = status;
  }
}

export function classifyUpstreamError(err: unknown): UpstreamError {
  const code = (err as { code?: string })?.code ?? '';
  if (code === 'UND_ERR_HEADERS_TIMEOUT') return new UpstreamError('SWS_ERR_UPSTREAM_TIMEOUT', 504, 'the web server did not answer in time', err);
  if (code === 'UND_ERR_CONNECT_TIMEOUT') return new UpstreamError('SWS_ERR_UPSTREAM_UNREACHABLE', 502, 'the web server could not be reached (connect timeout)', err);
  if (/CERT|SSL|TLS|SELF_SIGNED|UNABLE_TO_VERIFY|ERR_TLS/i.test(code) || /certificate/i.test((err as Error)?.message ?? '')) {
    return new UpstreamError('SWS_ERR_UPSTREAM_TLS', 502, 'the web server TLS certificate did not verify', err);
  }
  if (code === 'ECONNREFUSED' || code === 'ENOTFOUND' || code === 'EHOSTUNREACH' || code === 'ECONNRESET' || code === 'UND_ERR_SOCKET' || code === 'EAI_AGAIN') {
    return new UpstreamError('SWS_ERR_UPSTREAM_UNREACHABLE', 502, 'the web server could not be reached', err);
  }
  return new UpstreamError('SWS_ERR_UPSTREAM', 502, 'the web server request failed', err);
}

export class Upstreams {
  readonly #pools = new Map<string, Pool>();
  readonly #timeouts: UpstreamTimeouts;

  constructor(timeouts: UpstreamTimeouts) {
    this.#timeouts = timeouts;
  }

  #poolFor(site: Site): { pool: Pool; origin: string } {
    const url = new URL(site.upstream);
    const origin = url.origin;
    const key = `${origin}\n${site.caPem ?? ''}`;
    let pool = this.#pools.get(key);
    if (!pool) {
      pool = new Pool(origin, {
        connections: 128,
        pipelining: 1,
        keepAliveTimeout: 30_000,
        headersTimeout: this.#timeouts.upstreamHeadersTimeoutMs,
        bodyTimeout: this.#timeouts.upstreamBodyTimeoutMs,
        connect: {
          timeout: this.#timeouts.connectTimeoutMs,
          // Verified TLS always; a private CA replaces the public roots for this site only.
          rejectUnauthorized: true,
          ...(site.caPem ? { ca: site.caPem } : {}),
        },
      });
      this.#pools.set(key, pool);
    }
    return { pool, origin };
  }

  /** Sends the canonical request upstream; rejects with UpstreamError for 502/504 cases. */
  async forward(
    site: Site,
    req: CanonicalRequest,
    identity: FieldLine,
    body: AsyncIterable<Uint8Array> | null,
    signal: AbortSignal,
  ): Promise<Dispatcher.ResponseData> {
    const { pool } = this.#poolFor(site);
    const headers = flatFields([['host', req.authority], ...req.headers, identity]);
    try {
      return await pool.request({
        method: req.method as Dispatcher.HttpMethod,
        path: req.target.forwardPath + req.target.query,
        headers,
        body: body ? Readable.from(body, { objectMode: false }) : null,
        signal,
      });
    } catch (err) {
      if (signal.aborted) throw err;
      throw classifyUpstreamError(err);
    }
  }

  /** Closes pools whose site no longer exists (after a store change). */
  async retain(live: readonly Site[]): Promise<void> {
    const keep = new Set(live.map((s) => `${new URL(s.upstream).origin}\n${s.caPem ?? ''}`));
    for (const [k, p] of this.#pools) if (!keep.has(k)) (this.#pools.delete(k), void p.close().catch(() => undefined));
  }

  async close(): Promise<void> {
    await Promise.all([...this.#pools.values()].map((p) => p.close().catch(() => undefined)));
    this.#pools.clear();
  }
}

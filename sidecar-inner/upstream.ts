/**
 * Forwarding to the unchanged WWW server (patent 29/claim 6) with undici: one keep-alive
 * Pool per upstream origin, verified TLS (always: a certificate that does not verify is a
 * 502 that says why, never a retry without verification) with an optional private CA and an
 * optional TLS client certificate whose key is sealed at rest, timeouts that become 502/504
 * in words, and request bodies streamed through without buffering.
 */
import { Readable } from 'node:stream';
import { isIP } from 'node:net';
import { buildConnector, Pool, type Dispatcher } from 'undici';
import type { FieldLine } from '../core/bhttp.ts';
import { SwsError } from '../core/errors.ts';
import type { Site } from '../store/index.ts';
import { flatFields } from '../sidecar-shared/headers.ts';
import type { Cancellation } from '../sidecar-shared/cancel.ts';
import { requestAnswer, type Answer } from '../sidecar-shared/answer.ts';
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

/** TLS failures by the code Node gives them: what the client is told, and the stable code (default SWS_ERR_UPSTREAM_TLS; the log keeps Node's). */
const TLS_REASONS: readonly [RegExp, string, string?][] = [
  [/^CERT_HAS_EXPIRED$/, "the web server's TLS certificate has expired", 'SWS_ERR_UPSTREAM_CERT_EXPIRED'],
  [/^CERT_NOT_YET_VALID$/, "the web server's TLS certificate is not valid yet", 'SWS_ERR_UPSTREAM_CERT_NOT_YET_VALID'],
  [/^ERR_TLS_CERT_ALTNAME_INVALID$/, "the web server's TLS certificate is not for this host name", 'SWS_ERR_UPSTREAM_CERT_NAME'],
  [
    /^(UNABLE_TO_VERIFY_LEAF_SIGNATURE|SELF_SIGNED_CERT_IN_CHAIN|DEPTH_ZERO_SELF_SIGNED_CERT|UNABLE_TO_GET_ISSUER_CERT(_LOCALLY)?|CERT_SIGNATURE_FAILURE|CERT_UNTRUSTED)$/,
    "the web server's TLS certificate is not signed by a CA this inner trusts for the site (check the site's --ca)",
    'SWS_ERR_UPSTREAM_CERT_UNTRUSTED',
  ],
  [/^CERT_REVOKED$/, "the web server's TLS certificate is revoked", 'SWS_ERR_UPSTREAM_CERT_REVOKED'],
  [
    /ALERT_(CERTIFICATE_REQUIRED|BAD_CERTIFICATE|UNKNOWN_CA|CERTIFICATE_UNKNOWN|ACCESS_DENIED|HANDSHAKE_FAILURE|CERTIFICATE_EXPIRED|CERTIFICATE_REVOKED)/,
    "the web server refused the inner's TLS client certificate, or requires one (check the site's --client-cert)",
  ],
];

export function classifyUpstreamError(err: unknown): UpstreamError {
  const code = (err as { code?: string })?.code ?? '';
  if (code === 'UND_ERR_HEADERS_TIMEOUT') return new UpstreamError('SWS_ERR_UPSTREAM_TIMEOUT', 504, 'the web server did not answer in time', err);
  if (code === 'UND_ERR_CONNECT_TIMEOUT') return new UpstreamError('SWS_ERR_UPSTREAM_UNREACHABLE', 502, 'the web server could not be reached (connect timeout)', err);
  for (const [re, why, sws] of TLS_REASONS) if (re.test(code)) return new UpstreamError(sws ?? 'SWS_ERR_UPSTREAM_TLS', 502, `${why}; nothing was sent to it`, err);
  if (/CERT|SSL|TLS|SELF_SIGNED|UNABLE_TO_VERIFY|ERR_TLS/i.test(code) || /certificate/i.test((err as Error)?.message ?? '')) {
    return new UpstreamError('SWS_ERR_UPSTREAM_TLS', 502, "the web server's TLS certificate did not verify; nothing was sent to it", err);
  }
  if (code === 'ECONNREFUSED' || code === 'ENOTFOUND' || code === 'EHOSTUNREACH' || code === 'ECONNRESET' || code === 'UND_ERR_SOCKET' || code === 'EAI_AGAIN') {
    return new UpstreamError('SWS_ERR_UPSTREAM_UNREACHABLE', 502, 'the web server could not be reached', err);
  }
  return new UpstreamError('SWS_ERR_UPSTREAM', 502, 'the web server request failed', err);
}

/** Where the sealed TLS client keys of sites come from (the store, unsealed with the master key). */
export interface ClientKeySource {
  clientKeyPem(host: string): Promise<string | undefined>;
}

/** Pools are per origin and TLS identity: a change of CA or client certificate is a new pool. */
function poolKey(site: Site): string {
  return `${new URL(site.upstream).origin}\n${site.caPem ?? ''}\n${site.clientCertPem ?? ''}`;
}

/**
 * TLS alerts a web server sent on the inner's connections, by local port. Under TLS 1.3 a
 * server that refuses the client certificate alerts after the handshake; undici then reports
 * only "other side closed", so the connector records the alert for the error to be explained.
 */
const tlsAlerts = new Map<number, string>();

function tlsAlertOf(err: unknown): unknown {
  const info = (err as { code?: string; socket?: { localPort?: number } }) ?? {};
  if (info.code !== 'UND_ERR_SOCKET' || info.socket?.localPort === undefined) return err;
  const code = tlsAlerts.get(info.socket.localPort);
  if (code === undefined) return err;
  tlsAlerts.delete(info.socket.localPort);
  return Object.assign(new Error(`TLS alert from the web server: ${code}`, { cause: err }), { code });
}

export class Upstreams {
  readonly #pools = new Map<string, Promise<Pool>>();
  readonly #timeouts: UpstreamTimeouts;
  readonly #keys: ClientKeySource | undefined;

  constructor(timeouts: UpstreamTimeouts, keys?: ClientKeySource) {
    this.#timeouts = timeouts;
    this.#keys = keys;
  }

  #poolFor(site: Site): Promise<Pool> {
    const key = poolKey(site);
    let pool = this.#pools.get(key);
    if (!pool) {
      pool = this.#newPool(site);
      pool.catch(() => this.#pools.get(key) === pool && this.#pools.delete(key));
      this.#pools.set(key, pool);
    }
    return pool;
  }

  async #newPool(site: Site): Promise<Pool> {
    const origin = new URL(site.upstream).origin;
    let clientKey: string | undefined;
    if (site.clientCertPem !== undefined) {
      clientKey = await this.#keys?.clientKeyPem(site.host);
      // Never connect without the identity the operator configured: the web server would refuse, or worse, serve less.
      if (clientKey === undefined) throw new UpstreamError('SWS_ERR_UPSTREAM_TLS', 502, 'the TLS client key of this site is missing at the inner; nothing was sent');
    }
    // The TLS identity checked is the upstream's own name, as the operator configured it
    // (nginx's proxy_ssl_name default), not the Host the client asked for: undici would
    // otherwise derive SNI and the certificate check from the forwarded Host header.
    const url = new URL(site.upstream);
    const upstreamName = isIP(url.hostname.replace(/^\[|\]$/g, '')) ? undefined : url.hostname;
    const tlsConnect = buildConnector({
      timeout: this.#timeouts.connectTimeoutMs,
      // Verified TLS always; a private CA replaces the public roots for this site only.
      rejectUnauthorized: true,
      ...(site.caPem ? { ca: site.caPem } : {}),
      ...(site.clientCertPem !== undefined && clientKey !== undefined ? { cert: site.clientCertPem, key: clientKey } : {}),
    });
    return new Pool(origin, {
      connections: 128,
      pipelining: 1,
      keepAliveTimeout: 30_000,
      headersTimeout: this.#timeouts.upstreamHeadersTimeoutMs,
      bodyTimeout: this.#timeouts.upstreamBodyTimeoutMs,
      connect:
        url.protocol === 'https:'
          ? (opts, cb) =>
              tlsConnect({ ...opts, servername: upstreamName }, (err, socket) => {
                socket?.prependListener('error', (e: NodeJS.ErrnoException) => {
                  if (e.code?.startsWith('ERR_SSL_') && socket.localPort !== undefined) {
                    if (tlsAlerts.size > 1024) tlsAlerts.clear();
                    tlsAlerts.set(socket.localPort, e.code);
                  }
                });
                cb(err, socket as never);
              })
          : { timeout: this.#timeouts.connectTimeoutMs },
    });
  }

  /** Sends the canonical request upstream; rejects with UpstreamError for 502/504 cases. */
  async forward(
    site: Site,
    req: CanonicalRequest,
    identity: FieldLine,
    body: AsyncIterable<Uint8Array> | Uint8Array | null,
    signal: Cancellation,
    atHandLimit: number,
  ): Promise<Answer> {
    let pool: Pool;
    try {
      pool = await this.#poolFor(site);
    } catch (err) {
      throw err instanceof UpstreamError ? err : classifyUpstreamError(err);
    }
    const headers = flatFields([['host', req.authority], ...req.headers, identity]);
    try {
      // A small answer with a Content-Length comes back whole; anything else streams (sidecar-shared/answer.ts).
      return await requestAnswer(
        pool,
        {
          method: req.method as Dispatcher.HttpMethod,
          path: req.target.forwardPath + req.target.query,
          headers,
          body: body instanceof Uint8Array || body === null ? body : Readable.from(body, { objectMode: false }),
        },
        atHandLimit,
        signal,
      );
    } catch (err) {
      if (signal.aborted) throw err;
      throw classifyUpstreamError(tlsAlertOf(err));
    }
  }

  /** Closes pools whose site no longer exists (after a store change). */
  async retain(live: readonly Site[]): Promise<void> {
    const keep = new Set(live.map(poolKey));
    for (const [k, p] of this.#pools) if (!keep.has(k)) (this.#pools.delete(k), void p.then((pool) => pool.close()).catch(() => undefined));
  }

  async close(): Promise<void> {
    await Promise.all([...this.#pools.values()].map((p) => p.then((pool) => pool.close()).catch(() => undefined)));
    this.#pools.clear();
  }
}

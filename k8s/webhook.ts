/**
 * The admission webhook's HTTPS server (node:https): `POST /mutate` answers AdmissionReviews
 * (admission.ts); `GET /healthz` and `/readyz` serve the Deployment's probes on the same port.
 * The API server only talks TLS to webhooks; the certificate can be replaced while running
 * (`setTls`, e.g. when cert-manager rotates the mounted Secret).
 */
import { createServer, type Server } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import { SwsError } from '../core/errors.ts';
import { admit } from './admission.ts';
import type { InjectSettings } from './settings.ts';

/** AdmissionReviews carry the object (and for updates the old one); etcd caps objects at 1.5 MiB. */
export const MAX_REVIEW_BYTES = 4 * 1024 * 1024;
export const MUTATE_PATH = '/mutate';

export interface WebhookOptions {
  readonly host: string;
  readonly port: number;
  readonly cert: string | Buffer;
  readonly key: string | Buffer;
  readonly settings: InjectSettings;
  readonly log: Logger;
}

export class WebhookServer {
  readonly #server: Server;
  readonly #log: Logger;
  #address: AddressInfo | undefined;

  private constructor(opts: WebhookOptions) {
    this.#log = opts.log;
    this.#server = createServer({ cert: opts.cert, key: opts.key, minVersion: 'TLSv1.2', requestTimeout: 30_000 }, (req, res) => this.#handle(req, res, opts.settings));
  }

  static async start(opts: WebhookOptions): Promise<WebhookServer> {
    const w = new WebhookServer(opts);
    await new Promise<void>((resolve, reject) => {
      const onError = (err: NodeJS.ErrnoException) => reject(new SwsError('SWS_ERR_LISTEN', `cannot listen on ${opts.host}:${opts.port}: ${err.code ?? err.message}`));
      w.#server.once('error', onError);
      w.#server.listen(opts.port, opts.host, () => {
        w.#server.off('error', onError);
        resolve();
      });
    });
    w.#address = w.#server.address() as AddressInfo;
    w.#log.info({ listen: `${w.#address.address}:${w.#address.port}`, path: MUTATE_PATH }, 'webhook listening');
    return w;
  }

  get port(): number {
    if (!this.#address) throw new Error('not listening');
    return this.#address.port;
  }

  /** Replaces the certificate and key for new connections. */
  setTls(cert: string | Buffer, key: string | Buffer): void {
    this.#server.setSecureContext({ cert, key });
  }

  /** Stops accepting, lets requests in flight finish, closes idle connections. */
  stop(): Promise<void> {
    return new Promise((resolve) => {
      this.#server.close(() => resolve());
      this.#server.closeIdleConnections();
    });
  }

  #handle(req: IncomingMessage, res: ServerResponse, settings: InjectSettings): void {
    const path = (req.url ?? '/').split('?')[0];
    const text = (status: number, body: string, headers: Record<string, string> = {}) =>
      void res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store', ...headers }).end(body);
    if (path === '/healthz' || path === '/readyz') {
      if (req.method !== 'GET' && req.method !== 'HEAD') return text(405, 'method not allowed\n', { allow: 'GET, HEAD' });
      return text(200, 'ok\n');
    }
    if (path !== MUTATE_PATH) return text(404, `not found: AdmissionReviews go to POST ${MUTATE_PATH}\n`);
    if (req.method !== 'POST') return text(405, `method not allowed: use POST ${MUTATE_PATH}\n`, { allow: 'POST' });
    const type = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
    if (type !== 'application/json') return text(415, 'unsupported media type: an AdmissionReview is application/json\n');
    const declared = Number(req.headers['content-length'] ?? 0);
    if (declared > MAX_REVIEW_BYTES) return text(413, `AdmissionReview larger than ${MAX_REVIEW_BYTES} bytes\n`, { connection: 'close' });

    const chunks: Buffer[] = [];
    let size = 0;
    let tooBig = false;
    req.on('data', (c: Buffer) => {
      if (tooBig) return;
      size += c.length;
      if (size > MAX_REVIEW_BYTES) {
        tooBig = true;
        chunks.length = 0;
        text(413, `AdmissionReview larger than ${MAX_REVIEW_BYTES} bytes\n`, { connection: 'close' });
        return;
      }
      chunks.push(c);
    });
    req.on('error', () => res.destroy());
    req.on('end', () => {
      if (tooBig) return;
      let a;
      try {
        a = admit(Buffer.concat(chunks).toString('utf8'), settings);
      } catch (e) {
        this.#log.error({ err: e instanceof Error ? e.message : String(e) }, 'admission failed');
        return text(500, 'internal error while reviewing; see the webhook log\n');
      }
      const level = a.log.outcome === 'malformed' || a.log.outcome === 'denied' ? 'warn' : 'info';
      this.#log[level](a.log, 'admission review');
      res.writeHead(a.status, { 'content-type': a.contentType, 'cache-control': 'no-store' }).end(a.body);
    });
  }
}

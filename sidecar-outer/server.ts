/**
 * The outer sidecar (patent: outer management server 6). Forward-proxy mode: authenticate
 * the user (407), find the inner that fronts the host (destination changer 20 over the
 * inner-server list 19), seal and sign the request (S101–S105 decide the key), send it as a
 * plain HTTP POST (claim 2), open the answer and stream it back.
 *
 * Stages per request: target → authenticate → resolve inner → channel → seal → send → open.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import { Readable } from 'node:stream';
import { Pool, ProxyAgent, type Dispatcher } from 'undici';
import type { FieldLine, RequestHead, ResponseHead } from '../core/bhttp.ts';
import { importPrivateKey, importPublicKey, type PrivateKeyHandle, type PublicKeyHandle } from '../core/crypto.ts';
import { SwsError } from '../core/errors.ts';
import { isIdempotent, OuterChannel, type OuterCall } from '../core/outer.ts';
import { ENVELOPE_PATH, HeaderNames, KeyStates, MEDIA_TYPE, PROTOCOL_VERSION } from '../core/wire.ts';
import { innerServers, openStore, outerUsers, type InnerServer, type Store } from '../store/index.ts';
import { createAdminServer } from '../sidecar-shared/admin.ts';
import { drainAndClose, flushLog } from '../sidecar-shared/lifecycle.ts';
import { AT_HAND_ENVELOPE, collect, endWith, isAtHand, ResponseClosedError, writeBody } from '../sidecar-shared/write.ts';
import { nodeAead } from '../sidecar-shared/node-aead.ts';
import { nodeKdf } from '../sidecar-shared/node-kdf.ts';
import { nodeRsa } from '../sidecar-shared/node-rsa.ts';
import { declaredLength, endToEndFields, fieldValue, flatFields } from '../sidecar-shared/headers.ts';
import { formatAddress, listen } from '../sidecar-shared/listen.ts';
import { createLogger, type Logger } from '../sidecar-shared/logger.ts';
import { AccessLog } from '../sidecar-shared/accesslog.ts';
import { Cancellation } from '../sidecar-shared/cancel.ts';
import { answerSource, requestAnswer, statusWithoutBody, type Answer } from '../sidecar-shared/answer.ts';
import { createMetrics, type SidecarMetrics } from '../sidecar-shared/metrics.ts';
import { Authenticator } from './auth.ts';
import { AuthRateLimitedError, FailureLimiter } from './auth-limit.ts';
import { defaultPasswordChecks, type OuterSidecarConfig } from './config.ts';
import { TargetCache, type ProxyTarget } from './target.ts';
import { OuterCache, type OpenedBody, type OuterAnswer, type OuterPlan } from './cache.ts';
import type { CachedAnswer } from '../sidecar-shared/cache.ts';
import { UserSwitchTracker } from './clearsite.ts';
import { Portal } from './portal.ts';

/** Request bodies up to this size are read whole: one record, and safe to retry. */
const SMALL_BODY = 60 * 1024;
/** Largest refusal document read from the inner. */
const MAX_PROBLEM = 16 * 1024;

class ClientError extends SwsError {
  readonly status: number;
  readonly headers: Record<string, string>;
  constructor(status: number, code: string, message: string, headers: Record<string, string> = {}) {
    super(code, message);
    this.status = status;
    this.headers = headers;
  }
}

/** The client closed its connection before the answer was complete: not a rejection, nothing left to answer. */
const CLIENT_GONE = 'SWS_ERR_CLIENT_GONE';

/** How a request ended, for the access log and sws_requests_total. */
type Outcome = 'ok' | 'denied' | 'unauthenticated' | 'truncated' | 'aborted' | 'error';
/** The access decision behind it: the inner's (allow or deny, from the answer it sealed) or the outer's. */
type Decision = 'allow' | 'deny' | 'unauthenticated' | 'none' | 'error';

/** An answer that reached the client whole: a 403 is the inner's ACL (or the web server) refusing access. */
function answered(status: number): { outcome: Outcome; decision: Decision } {
  return status === 403 ? { outcome: 'denied', decision: 'deny' } : { outcome: 'ok', decision: 'allow' };
}

interface Upstream {
  readonly server: InnerServer;
  readonly key: Promise<PublicKeyHandle>;
  readonly dispatcher: Dispatcher;
  readonly origin: string;
  readonly path: string;
}

export interface OuterSidecarDeps {
  readonly logger?: Logger;
}

export class OuterSidecar {
  readonly config: OuterSidecarConfig;
  readonly metrics: SidecarMetrics;
  readonly log: Logger;
  /** One line per request, batched into the log's destination (sidecar-shared/accesslog.ts). */
  readonly #access: AccessLog;
  readonly #store: Store;
  readonly #auth: Authenticator;
  readonly #server: Server;
  readonly #admin: Server | undefined;
  readonly #userKeys = new Map<string, Promise<PrivateKeyHandle>>();
  readonly #upstreams = new Map<string, Upstream>();
  readonly #channels = new Map<string, OuterChannel>();
  readonly #cache: OuterCache;
  readonly #portal: Portal | undefined;
  readonly #switches: UserSwitchTracker | undefined;
  /** host → inner server, so the hot path (cache hits above all) does no SQL; cleared on any store change. */
  readonly #serverByHost = new Map<string, InnerServer | null>();
  /** Absolute-form targets parsed lately: hits ask for the same few URLs over and over. */
  readonly #targets = new TargetCache();
  /** Requests that sent `Expect: 100-continue` and have not been told to go on yet. */
  readonly #awaitingContinue = new WeakSet<IncomingMessage>();
  #stopWatch: () => void = () => undefined;
  #address: AddressInfo | undefined;
  #adminAddress: AddressInfo | undefined;
  #stopping = false;

  private constructor(config: OuterSidecarConfig, store: Store, deps: OuterSidecarDeps) {
    this.config = config;
    this.#store = store;
    this.metrics = createMetrics('outer');
    this.log = deps.logger ?? createLogger({ role: 'outer', level: config.logLevel });
    this.#access = AccessLog.of(this.log);
    this.#auth = new Authenticator(outerUsers(store), config.passwordChecks ?? defaultPasswordChecks(), new FailureLimiter(config.authFailureLimit));
    this.#cache = new OuterCache(config.cache ?? { maxBytes: 0, maxObjectBytes: 0, recheckMs: 0 }, this.metrics);
    this.#switches = config.clearOnUserSwitch === false ? undefined : new UserSwitchTracker();
    this.#portal = config.portal
      ? new Portal(config.portal, {
          authenticate: (user, password, client) => this.#auth.authenticate({ user, password }, client),
          refused: (code, user, client) => {
            this.metrics.rejections.inc({ code });
            this.log.warn({ code, user, remote: client }, 'portal login refused');
          },
          hasSite: (host) => this.#findServer(host) !== undefined,
          forward: (req, res, user, target, fields, portalHost) => this.#portalForward(req, res, user, target, fields, portalHost),
        })
      : undefined;
    const onRequest = (req: IncomingMessage, res: ServerResponse) => {
      this.#handle(req, res).catch((err: unknown) => {
        this.log.error({ err: (err as Error)?.message, stack: (err as Error)?.stack }, 'unexpected failure handling a request');
        this.metrics.rejections.inc({ code: 'SWS_ERR_INTERNAL' });
        res.destroy();
      });
    };
    const httpOptions = { maxHeaderSize: 16 * 1024, requestTimeout: 0, keepAliveTimeout: 65_000 };
    // Claim 7: the client ↔ outer link over TLS (proxy and portal alike) when a certificate is configured.
    this.#server = config.tls
      ? createHttpsServer({ ...httpOptions, cert: config.tls.certPem, key: config.tls.keyPem, minVersion: 'TLSv1.2' }, onRequest)
      : createServer(httpOptions, onRequest);
    // Expect: 100-continue is answered here, to this hop's client, never carried to the inner (RFC 9110
    // §10.1.1). "100 Continue" goes out only once the request is known to need its body (authenticated,
    // routed), so a refused upload is refused before the client sends it.
    this.#server.on('checkContinue', (req: IncomingMessage, res: ServerResponse) => {
      if (this.#portal && (req.url ?? '').startsWith('/')) res.writeContinue();
      else this.#awaitingContinue.add(req);
      onRequest(req, res);
    });
    this.#server.on('connect', (req: IncomingMessage, socket: Socket) => {
      this.metrics.rejections.inc({ code: 'SWS_ERR_CONNECT' });
      socket.end('HTTP/1.1 405 Method Not Allowed\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\nsws does not tunnel CONNECT: request http:// URLs through this proxy; the inner reaches https web servers itself.\n');
      void req;
    });
    this.#server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => {
      this.metrics.rejections.inc({ code: 'SWS_ERR_BAD_HTTP' });
      const status = err.code === 'HPE_HEADER_OVERFLOW' ? '431 Request Header Fields Too Large' : '400 Bad Request';
      if (socket.writable) socket.end(`HTTP/1.1 ${status}\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\nsws: malformed HTTP request\n`);
      else socket.destroy();
    });
    this.#admin = config.adminListen ? createAdminServer({ metrics: this.metrics, notReadyReason: () => this.#notReady() }) : undefined;
  }

  static async start(config: OuterSidecarConfig, deps: OuterSidecarDeps = {}): Promise<OuterSidecar> {
    const store = openStore(config.dataDir, { expectRole: 'outer' });
    try {
      await store.masterKey();
      const sidecar = new OuterSidecar(config, store, deps);
      sidecar.#address = await listen(sidecar.#server, config.listen);
      if (sidecar.#admin && config.adminListen) sidecar.#adminAddress = await listen(sidecar.#admin, config.adminListen);
      sidecar.#stopWatch = store.watch(() => sidecar.#onStoreChange());
      sidecar.log.info({ listen: formatAddress(sidecar.#address), admin: sidecar.#adminAddress ? formatAddress(sidecar.#adminAddress) : undefined, tls: sidecar.tls }, 'outer sidecar listening');
      return sidecar;
    } catch (err) {
      store.close();
      throw err;
    }
  }

  /** Whether clients reach this outer over HTTPS (claim 7): the portal's cookies are then `Secure`. */
  get tls(): boolean {
    return this.config.tls !== undefined;
  }

  get address(): AddressInfo {
    if (!this.#address) throw new Error('not listening');
    return this.#address;
  }

  get adminAddress(): AddressInfo | undefined {
    return this.#adminAddress;
  }

  #notReady(): string | undefined {
    if (this.#stopping) return 'shutting down';
    if (!this.#address) return 'not listening';
    if (!this.#store.db.open) return 'database closed';
    return undefined;
  }

  /** Users, passwords, keys or inner servers changed: drop everything derived from them. */
  #onStoreChange(): void {
    this.#auth.forgetAll();
    this.#serverByHost.clear();
    const users = outerUsers(this.#store);
    for (const [name, p] of this.#userKeys) {
      const row = users.get(name);
      void p.then(
        (k) => {
          if (!row || Buffer.from(k.keyId).toString('hex') !== row.keyId) this.#forgetUser(name);
        },
        () => this.#forgetUser(name),
      );
      if (!row) this.#forgetUser(name);
    }
    const servers = new Map(innerServers(this.#store).list().map((s) => [s.name, s]));
    for (const [name, up] of this.#upstreams) {
      const now = servers.get(name);
      if (!now || now.url !== up.server.url || now.keyId !== up.server.keyId || now.hosts.join(',') !== up.server.hosts.join(',')) {
        this.#upstreams.delete(name);
        for (const k of [...this.#channels.keys()]) if (k.endsWith(`\n${name}`)) this.#channels.delete(k);
        void up.dispatcher.close().catch(() => undefined);
      }
    }
  }

  #forgetUser(name: string): void {
    this.#cache.dropUser(name);
    this.#portal?.forgetUser(name);
    this.#userKeys.delete(name);
    for (const k of [...this.#channels.keys()]) if (k.startsWith(`${name}\n`)) this.#channels.delete(k);
  }

  #userKey(user: string): Promise<PrivateKeyHandle> {
    let p = this.#userKeys.get(user);
    if (!p) {
      // Unwrapped and imported once per user; the raw PKCS #8 is dropped right after import.
      p = outerUsers(this.#store)
        .privateKeyPkcs8(user)
        .then(async (pkcs8) => {
          try {
            return await importPrivateKey(pkcs8);
          } finally {
            pkcs8.fill(0);
          }
        });
      p.catch(() => this.#userKeys.delete(user));
      this.#userKeys.set(user, p);
    }
    return p;
  }

  #upstream(server: InnerServer): Upstream {
    let up = this.#upstreams.get(server.name);
    if (!up) {
      const url = new URL(server.url);
      const opts = {
        connections: 64,
        keepAliveTimeout: 30_000,
        headersTimeout: this.config.innerHeadersTimeoutMs,
        bodyTimeout: this.config.innerBodyTimeoutMs,
        connect: { timeout: this.config.connectTimeoutMs },
      };
      // proxyTunnel false: envelopes go to the proxy as ordinary absolute-form POSTs (claim 2), not through CONNECT.
      const dispatcher: Dispatcher = this.config.innerProxy ? new ProxyAgent({ uri: this.config.innerProxy, ...opts, proxyTunnel: false }) : new Pool(url.origin, opts);
      up = { server, key: importPublicKey(server.publicKeyPem), dispatcher, origin: url.origin, path: `${url.pathname.replace(/\/+$/, '')}${ENVELOPE_PATH}` };
      this.#upstreams.set(server.name, up);
    }
    return up;
  }

  async #channel(user: string, up: Upstream): Promise<OuterChannel> {
    const k = `${user}\n${up.server.name}`;
    let ch = this.#channels.get(k);
    if (!ch) {
      const [key, inner] = await Promise.all([this.#userKey(user), up.key]);
      ch = this.#channels.get(k);
      if (!ch) {
        ch = new OuterChannel({ user: { name: user, key }, inner, policy: this.config.rekey, aead: nodeAead, kdf: nodeKdf, rsa: nodeRsa });
        this.#channels.set(k, ch);
      }
    }
    return ch;
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (this.#portal && (req.url ?? '').startsWith('/')) return this.#portal.handle(req, res);
    const started = process.hrtime.bigint();
    // Every key of the access line, in its order (undefined ones are left out of it), #accessLog's
    // included: filling them in later keeps the record's shape, so no request grows it key by key.
    const access: Record<string, unknown> = {
      method: req.method,
      remote: req.socket?.remoteAddress,
      host: undefined,
      path: undefined,
      user: undefined,
      inner: undefined,
      cache: undefined,
      keyState: undefined,
      rekey: undefined,
      decision: undefined,
      status: undefined,
      ms: undefined,
      outcome: undefined,
      code: undefined,
    };
    try {
      const target = this.#target(req);
      access.host = target.host;
      access.path = target.path;
      const header = req.headers['proxy-authorization'];
      // A keep-alive connection that already proved this exact value costs one constant-time compare.
      const address = req.socket?.remoteAddress ?? '';
      const user = this.#auth.remembered(req.socket, header) ?? (await this.#authenticate(req.socket, header, address));
      if (!user) throw new ClientError(407, 'SWS_ERR_PROXY_AUTH', 'sws: proxy authentication required: give your sws user name and password', { 'proxy-authenticate': 'Basic realm="sws", charset="UTF-8"' });
      this.#switches?.seen(address, user);
      const decorate = this.#switches ? this.#switches.decorator(address, target.origin) : asIs;
      const pending = this.#forward(req, res, user, target, endToEndFields(req.rawHeaders, isHost), access, started, decorate);
      if (pending !== undefined) await pending;
    } catch (err) {
      this.#fail(req, res, err, access, started);
    }
  }

  /** A password check for this request; an address over its allowance of wrong passwords is told when to come back (429). */
  async #authenticate(connection: Socket, header: string | undefined, address: string): Promise<string | undefined> {
    try {
      return await this.#auth.authenticateHeader(connection, header, address);
    } catch (err) {
      if (!(err instanceof AuthRateLimitedError)) throw err;
      throw new ClientError(429, err.code, `sws: too many wrong passwords from this address; try again in ${err.retryAfterSeconds} s`, { 'retry-after': String(err.retryAfterSeconds) });
    }
  }

  #findServer(host: string): InnerServer | undefined {
    let s = this.#serverByHost.get(host);
    if (s === undefined) {
      s = innerServers(this.#store).findByHost(host) ?? null;
      if (this.#serverByHost.size >= 10_000) this.#serverByHost.clear();
      this.#serverByHost.set(host, s);
    }
    return s ?? undefined;
  }

  /** Portal mode: the portal authenticated the session; the rest is the forward-proxy path. */
  async #portalForward(req: IncomingMessage, res: ServerResponse, user: string, target: ProxyTarget, fields: FieldLine[], portalHost: string): Promise<void> {
    const started = process.hrtime.bigint();
    const access: Record<string, unknown> = { method: req.method, remote: req.socket?.remoteAddress, host: target.host, path: target.path, portal: true };
    const secure = (req.socket as { encrypted?: boolean }).encrypted === true;
    const decorate = (a: OuterAnswer): OuterAnswer => ({ head: { ...a.head, headers: this.#portal!.rewriteLocation(a.head.headers, target.host, portalHost, secure) }, body: a.body });
    try {
      await this.#forward(req, res, user, target, fields, access, started, decorate);
    } catch (err) {
      this.#fail(req, res, err, access, started);
    }
  }

  /**
   * An authenticated request: resolve the inner, answer from the user's cache or exchange with
   * the inner. A cache hit whose body is at hand is answered synchronously (undefined is
   * returned: nothing left to wait for, no promise made); anything else returns its work.
   */
  #forward(
    req: IncomingMessage,
    res: ServerResponse,
    user: string,
    target: ProxyTarget,
    fields: FieldLine[],
    access: Record<string, unknown>,
    started: bigint,
    decorate: (a: OuterAnswer) => OuterAnswer,
  ): Promise<void> | undefined {
    access.user = user;
    const server = this.#findServer(target.host);
    if (!server) throw new ClientError(502, 'SWS_ERR_NO_INNER', `sws: no inner server is configured for ${target.host}; nothing was sent`);
    access.inner = server.name;
    const head: RequestHead = { method: req.method!, scheme: 'http', authority: target.host, path: target.pathAndQuery, headers: fields };
    if (!bodyless(req)) return this.#forwardWithBody(req, res, user, server, target, head, access, started, decorate);
    const plan = this.#cache.plan(user, server.name, target, head, true);
    if (plan.kind === 'hit') return this.#answerFromCache(res, plan.answer, access, started, decorate);
    return this.#exchange(req, res, user, server, target, plan, null, access, started, decorate);
  }

  async #forwardWithBody(
    req: IncomingMessage,
    res: ServerResponse,
    user: string,
    server: InnerServer,
    target: ProxyTarget,
    head: RequestHead,
    access: Record<string, unknown>,
    started: bigint,
    decorate: (a: OuterAnswer) => OuterAnswer,
  ): Promise<void> {
    const body = await this.#requestBody(req, res);
    const plan = this.#cache.plan(user, server.name, target, head, false);
    if (plan.kind === 'hit') return this.#answerFromCache(res, plan.answer, access, started, decorate);
    return this.#exchange(req, res, user, server, target, plan, body, access, started, decorate);
  }

  /** Claim 4: answered from this user's cache; neither the inner nor the WWW server is contacted. */
  #answerFromCache(res: ServerResponse, answer: CachedAnswer, access: Record<string, unknown>, started: bigint, decorate: (a: OuterAnswer) => OuterAnswer): Promise<void> | undefined {
    access.cache = 'hit';
    const out = decorate({ head: { status: answer.status, headers: answer.fields }, body: answer.body });
    const fields = flatFields(out.head.headers);
    // A stored body's length is known: declared, it leaves without chunked framing, and an HTTP/1.0 client keeps its connection.
    const length = out.body instanceof Uint8Array ? out.body.length : out.body === answer.body ? answer.bodyBytes : undefined;
    if (length !== undefined && mayDeclareLength(out.head.status, out.head.headers)) fields.push('content-length', String(length));
    res.writeHead(out.head.status, fields);
    if (!isAtHand(out.body)) return writeBody(res, out.body).then(() => this.#logHit(access, out.head.status, started));
    // Whole in memory: one write. The access line does not wait for the socket to take it
    // (the outcome is the same either way: a client gone now was answered all the same).
    if (res.destroyed) throw new ResponseClosedError();
    res.end(out.body ?? EMPTY);
    this.#logHit(access, out.head.status, started);
    return undefined;
  }

  #logHit(access: Record<string, unknown>, status: number, started: bigint): void {
    const hit = answered(status);
    this.#accessLog(access, status, started, hit.outcome, hit.decision);
  }

  async #exchange(
    req: IncomingMessage,
    res: ServerResponse,
    user: string,
    server: InnerServer,
    target: ProxyTarget,
    plan: Extract<OuterPlan, { kind: 'forward' }>,
    body: Uint8Array | AsyncIterable<Uint8Array> | null,
    access: Record<string, unknown>,
    started: bigint,
    decorate: (a: OuterAnswer) => OuterAnswer,
  ): Promise<void> {
    const up = this.#upstream(server);
    const channel = await this.#channel(user, up);
    await this.#exchangeAndServe(req, res, channel, up, target, plan.head, body, access, started, (h, b) => decorate(plan.complete(h, b)));
  }

  #target(req: IncomingMessage): ProxyTarget {
    const url = req.url ?? '';
    if (url.startsWith('/')) throw new ClientError(400, 'SWS_ERR_NOT_PROXY_REQUEST', 'sws: this address is an HTTP proxy; configure it as your proxy (for example curl -x) and request http:// URLs');
    try {
      return this.#targets.parse(url);
    } catch (err) {
      throw new ClientError(400, (err as SwsError).code ?? 'SWS_ERR_BAD_TARGET', `sws: ${(err as Error).message}`);
    }
  }

  /** The body of a request that has one (see `bodyless`): small ones whole (one record, retryable), large or unknown ones streamed. */
  async #requestBody(req: IncomingMessage, res: ServerResponse): Promise<Uint8Array | AsyncIterable<Uint8Array> | null> {
    const te = req.headers['transfer-encoding'];
    const cl = req.headers['content-length'];
    if (this.#awaitingContinue.delete(req) && !res.headersSent) res.writeContinue();
    if (te === undefined && Number(cl) <= SMALL_BODY) {
      const parts: Buffer[] = [];
      for await (const c of req) parts.push(c as Buffer);
      return Buffer.concat(parts);
    }
    return req;
  }

  /** One envelope to the inner; a small answer with a Content-Length comes back whole (sidecar-shared/answer.ts), anything else streams. */
  async #send(call: OuterCall, up: Upstream, head: RequestHead, body: Uint8Array | AsyncIterable<Uint8Array> | null, signal: Cancellation, exchangeOnly = false): Promise<Answer> {
    const headers = {
      'content-type': MEDIA_TYPE,
      'cache-control': 'no-store',
      [HeaderNames.version]: String(PROTOCOL_VERSION),
      [HeaderNames.keyState]: call.keyState,
    };
    try {
      return await requestAnswer(
        up.dispatcher,
        {
          origin: up.origin,
          method: 'POST',
          path: up.path,
          headers,
          headersTimeout: this.config.innerHeadersTimeoutMs,
          bodyTimeout: this.config.innerBodyTimeoutMs,
          // A body at hand seals to a few hundred octets: one buffer with a Content-Length, one write.
          body: exchangeOnly ? call.sealExchangeOnly() : isAtHand(body) ? ((await call.sealAtHand(head, body)) ?? (await collect(call.seal(head, body)))) : Readable.from(call.seal(head, body)),
        },
        AT_HAND_ENVELOPE,
        signal,
      );
    } catch (err) {
      call.abandon(err);
      if (signal.aborted) throw new ClientError(499, CLIENT_GONE, 'sws: the client closed the connection before the answer arrived');
      const code = (err as { code?: string }).code;
      if (code === 'UND_ERR_HEADERS_TIMEOUT') throw new ClientError(504, 'SWS_ERR_INNER_TIMEOUT', 'sws: the inner server did not answer in time');
      throw new ClientError(502, 'SWS_ERR_INNER_UNREACHABLE', 'sws: the inner server could not be reached');
    }
  }

  async #exchangeAndServe(
    req: IncomingMessage,
    res: ServerResponse,
    channel: OuterChannel,
    up: Upstream,
    target: ProxyTarget,
    head: RequestHead,
    body: Uint8Array | AsyncIterable<Uint8Array> | null,
    access: Record<string, unknown>,
    started: bigint,
    complete: (head: ResponseHead, body: OpenedBody) => OuterAnswer,
  ): Promise<void> {
    // A client that leaves before its answer is complete cancels the envelope, and with it the inner's
    // request to the web server (the inner aborts upstream when the outer's connection closes).
    const gone = new Cancellation();
    const onClose = () => {
      if (!res.writableFinished) gone.abort(new ResponseClosedError());
    };
    res.once('close', onClose);
    try {
      await this.#exchangeLoop(res, channel, up, target, head, body, access, started, complete, gone);
    } finally {
      res.off('close', onClose);
    }
  }

  async #exchangeLoop(
    res: ServerResponse,
    channel: OuterChannel,
    up: Upstream,
    target: ProxyTarget,
    head: RequestHead,
    body: Uint8Array | AsyncIterable<Uint8Array> | null,
    access: Record<string, unknown>,
    started: bigint,
    complete: (head: ResponseHead, body: OpenedBody) => OuterAnswer,
    signal: Cancellation,
  ): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      const call = await channel.prepare(target.origin).catch((err) => {
        throw new ClientError(502, (err as SwsError).code ?? 'SWS_ERR_EXCHANGE_FAILED', 'sws: the key exchange with the inner server failed');
      });
      access.keyState = call.keyState;
      if (call.exchange) access.rekey = call.decision.kind === 'exchange' ? call.decision.reason : undefined;
      const answer = await this.#send(call, up, head, body, signal);
      const keyState = headerValue(answer.headers[HeaderNames.keyState]);
      if (answer.statusCode === 200) {
        let opened: { head: ResponseHead; body: OpenedBody };
        try {
          // A small answer on an established session is read whole and opened in memory: no stream plumbing.
          opened = !call.exchange && answer.bytes !== null ? await call.openAtHand(keyState, answer.bytes) : await call.open(keyState, answerSource(answer));
        } catch (err) {
          if (call.exchange) this.metrics.keyExchanges.inc({ reason: reasonOf(call), result: 'failed' });
          // Counted once, by #fail, under the code the client is told.
          answer.body?.destroy();
          throw new ClientError(502, (err as SwsError).code ?? 'SWS_ERR_DECRYPT', 'sws: the answer from the inner server failed verification');
        }
        if (call.exchange) this.metrics.keyExchanges.inc({ reason: reasonOf(call), result: 'ok' });
        const out = complete(opened.head, opened.body);
        let outBody = out.body;
        if (outBody !== null && !(outBody instanceof Uint8Array) && declaredLength(fieldValue(out.head.headers, 'content-length')) <= SMALL_BODY) {
          // A small answer is read and verified whole before the client sees any of it: one write
          // to the client, and a cut or tampered answer becomes a clean 502 instead of a cut body.
          try {
            outBody = await collect(outBody);
          } catch (err) {
            answer.body?.destroy();
            throw new ClientError(502, (err as SwsError).code ?? 'SWS_ERR_TRUNCATED', 'sws: the answer from the inner server was cut short or failed verification');
          }
        }
        res.writeHead(out.head.status, flatFields(out.head.headers));
        const result = answered(opened.head.status);
        try {
          await sendBody(res, outBody);
        } catch (err) {
          res.destroy();
          answer.body?.destroy();
          if (err instanceof ResponseClosedError) {
            // The client left mid-body: nothing was refused, the rest was not wanted.
            this.#accessLog(access, opened.head.status, started, 'aborted', result.decision, CLIENT_GONE);
            return;
          }
          // Truncated or tampered mid-body: the client must see a cut connection, never a short body.
          const code = (err as SwsError).code ?? 'SWS_ERR_TRUNCATED';
          this.metrics.rejections.inc({ code });
          this.log.warn({ ...access, code, detail: (err as Error).message }, 'response body cut');
          this.#accessLog(access, opened.head.status, started, 'truncated', result.decision, code);
          return;
        }
        this.#accessLog(access, opened.head.status, started, result.outcome, result.decision);
        return;
      }
      const problem = await readProblem(answer);
      if (call.exchange) this.metrics.keyExchanges.inc({ reason: reasonOf(call), result: 'failed' });
      // Not counted here: a refusal the client sees is counted once by #fail; a lost session retried
      // invisibly is no rejection (sws_key_exchanges_total{reason="session-lost"} shows it).
      const { sessionLost } = call.refused(keyState, problem.code);
      // The inner no longer accepts this user (revoked key or certificate): drop their cache from it now.
      this.#cache.refused(channel.user, up.server.name, problem.code);
      this.log.warn({ ...access, status: answer.statusCode, keyState, code: problem.code }, 'inner refused the envelope');
      if (!(sessionLost && keyState === KeyStates.exchangeNeeded && attempt === 0 && isAtHand(body))) {
        throw new ClientError(502, problem.code ?? 'SWS_ERR_INNER_REFUSED', `sws: the inner server refused the request (${problem.code ?? answer.statusCode})`, { 'retry-after': '1' });
      }
      if (!isIdempotent(head.method) && !(await this.#provablyUnsent(channel, up, call, head, signal))) {
        throw new ClientError(502, 'SWS_ERR_NOT_RETRIED', 'sws: the inner server lost its session; the request may have reached the web server, so it was not repeated', { 'retry-after': '1' });
      }
      // Property 7: repeat once, invisibly, now that it is safe.
    }
  }

  /** For a non-idempotent retry: a separate exchange whose signed confirmation must prove the request never ran. */
  async #provablyUnsent(channel: OuterChannel, up: Upstream, failed: OuterCall, head: RequestHead, signal: Cancellation): Promise<boolean> {
    const probe = await channel.prepare(failed.session.lastDestination);
    if (!probe.exchange) return false;
    const answer = await this.#send(probe, up, head, null, signal, true);
    if (answer.statusCode !== 200) {
      probe.refused(headerValue(answer.headers[HeaderNames.keyState]), (await readProblem(answer)).code);
      return false;
    }
    const conf = await probe.openExchangeOnly(headerValue(answer.headers[HeaderNames.keyState]), answerSource(answer));
    this.metrics.keyExchanges.inc({ reason: reasonOf(probe), result: 'ok' });
    return OuterChannel.retryIsSafe(head.method, failed, conf);
  }

  #fail(req: IncomingMessage, res: ServerResponse, err: unknown, access: Record<string, unknown>, started: bigint): void {
    const ce = err instanceof ClientError ? err : new ClientError(502, (err as SwsError)?.code ?? 'SWS_ERR_GENERIC', 'sws: the request could not be completed');
    if (!(err instanceof ClientError)) this.log.error({ ...access, err: (err as Error)?.message }, 'unexpected failure');
    if (ce.code === CLIENT_GONE || (res.destroyed && !res.headersSent)) {
      // Nobody is left to answer: not a rejection.
      res.destroy();
      this.#accessLog(access, ce.status, started, 'aborted', 'none', CLIENT_GONE);
      return;
    }
    this.metrics.rejections.inc({ code: ce.code });
    if (res.headersSent) {
      res.destroy();
    } else {
      const body = `${ce.message}\n`;
      res.writeHead(ce.status, { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store', 'content-length': Buffer.byteLength(body), ...ce.headers });
      res.end(body);
    }
    if (!req.complete) req.resume();
    if (ce.status === 407 || ce.code === 'SWS_ERR_AUTH_RATE_LIMITED') this.#accessLog(access, ce.status, started, 'unauthenticated', 'unauthenticated', ce.code);
    else this.#accessLog(access, ce.status, started, 'error', 'error', ce.code);
  }

  /** One access line and one sws_requests_total sample per request; never a query, body or credential. */
  #accessLog(access: Record<string, unknown>, status: number, started: bigint, outcome: Outcome, decision: Decision, code?: string): void {
    const ms = Number(process.hrtime.bigint() - started) / 1e6;
    this.metrics.answered(outcome, status, ms / 1000);
    // The record is this request's own and already has these keys (#handle): filled in, not copied.
    access.decision = decision;
    access.status = status;
    access.ms = ms;
    access.outcome = outcome;
    if (code) access.code = code;
    this.#access.write(access);
  }

  async stop(graceMs = this.config.shutdownGraceMs): Promise<void> {
    if (this.#stopping) return;
    this.#stopping = true;
    this.#stopWatch();
    await drainAndClose(this.#server, this.#admin, graceMs);
    await Promise.all([...this.#upstreams.values()].map((u) => u.dispatcher.close().catch(() => undefined)));
    this.#store.close();
    this.log.info('outer sidecar stopped');
    await flushLog(this.log);
  }
}

const EMPTY = new Uint8Array(0);

/** Whether a response may be given a Content-Length: it has none (nor Transfer-Encoding) and its status allows one (RFC 9110 §8.6). */
function mayDeclareLength(status: number, fields: readonly FieldLine[]): boolean {
  if (statusWithoutBody(status)) return false;
  for (const [n] of fields) if (n === 'content-length' || n === 'transfer-encoding') return false;
  return true;
}

/** Whether a request has no body (neither Transfer-Encoding nor a non-zero Content-Length); its end is then consumed. */
function bodyless(req: IncomingMessage): boolean {
  const cl = req.headers['content-length'];
  if (req.headers['transfer-encoding'] !== undefined || (cl !== undefined && cl !== '0')) return false;
  req.resume();
  return true;
}
const asIs = (a: OuterAnswer): OuterAnswer => a;
/** The drop predicate of endToEndFields for a proxied request: Host is carried as the authority. */
const isHost = (n: string): boolean => n === 'host';

/** Writes a body that is whole (one write), absent, or streamed. */
async function sendBody(res: ServerResponse, body: Uint8Array | AsyncIterable<Uint8Array> | null): Promise<void> {
  if (isAtHand(body)) return endWith(res, body ?? EMPTY);
  await writeBody(res, body);
}


function headerValue(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}

function reasonOf(call: OuterCall): string {
  return call.decision.kind === 'exchange' ? call.decision.reason : 'shared';
}

async function readProblem(answer: Answer): Promise<{ code?: string }> {
  let size = 0;
  const parts: Uint8Array[] = [];
  try {
    for await (const c of answerSource(answer)) {
      size += (c as Buffer).length;
      if (size > MAX_PROBLEM) break;
      parts.push(c as Buffer);
    }
    const doc = JSON.parse(Buffer.concat(parts).toString('utf8')) as { code?: unknown };
    return typeof doc.code === 'string' && /^SWS_ERR_[A-Z_]{1,40}$/.test(doc.code) ? { code: doc.code } : {};
  } catch {
    return {};
  } finally {
    answer.body?.destroy();
  }
}



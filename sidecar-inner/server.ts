/**
 * The inner sidecar (patent: inner management server 5): opens envelopes, authenticates
 * the user by signature, checks the ACL (30/31), restores the destination (29), forwards to
 * the unchanged WWW server and seals the answer back with cache-prohibit headers (34).
 *
 * Stages per envelope: open → read request → canonicalize → authorize → forward → seal.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { FieldLine, ResponseHead } from '../core/bhttp.ts';
import { SwsError, TruncatedError } from '../core/errors.ts';
import { InnerEndpoint, type InnerRequest } from '../core/inner.ts';
import type { BodySource } from '../core/messages.ts';
import { problemDocument, refusalFor, type Refusal } from '../core/signals.ts';
import { ENVELOPE_PATH, HeaderNames, KeyStates, MEDIA_TYPE, PROTOCOL_VERSION } from '../core/wire.ts';
import { aclEngine, openStore, sites, SqliteExchangeReplayGuard, type AclEngine, type Site, type Store } from '../store/index.ts';
import { createAdminServer } from '../sidecar-shared/admin.ts';
import { drainAndClose, flushLog } from '../sidecar-shared/lifecycle.ts';
import { AT_HAND_ENVELOPE, endWith, isAtHand, writeBody, writeWhole } from '../sidecar-shared/write.ts';
import { nodeAead } from '../sidecar-shared/node-aead.ts';
import { nodeKdf } from '../sidecar-shared/node-kdf.ts';
import { nodeRsa } from '../sidecar-shared/node-rsa.ts';
import { declaredLength, ENVELOPE_NO_STORE, fieldsFromRecord } from '../sidecar-shared/headers.ts';
import { formatAddress, listen } from '../sidecar-shared/listen.ts';
import { createLogger, type Logger } from '../sidecar-shared/logger.ts';
import { AccessLog } from '../sidecar-shared/accesslog.ts';
import { createMetrics, type SidecarMetrics } from '../sidecar-shared/metrics.ts';
import type { InnerSidecarConfig } from './config.ts';
import { canonicalize, type CanonicalRequest } from './request.ts';
import { UpstreamError, Upstreams } from './upstream.ts';
import { ClientKeyDirectory } from './directory.ts';
import { RotatingKeyRing } from './keyring.ts';
import { AclEpochs, InnerCache } from './cache.ts';
import { ACL_EPOCH_HEADER } from '../sidecar-shared/cache.ts';
import { aclRules } from '../store/index.ts';
import { Cancellation } from '../sidecar-shared/cancel.ts';
import { Slots } from '../sidecar-shared/slots.ts';
import { isBodiless } from '../sidecar-shared/answer.ts';

/** Responses no longer than this are sealed with their head in one record (1 AES call). */
const SMALL_BODY = 32 * 1024;
/** Sent sealed in one write; a larger body at hand (a big cache hit) still streams record by record, never copied whole. */
const isSmall = (body: BodySource): body is Uint8Array | null => isAtHand(body) && (body?.length ?? 0) <= SMALL_BODY;

const VERSION_VALUE = String(PROTOCOL_VERSION);

/** A request's access-line fields, filled in as it goes: one object of one shape per request. */
interface AccessFields {
  readonly user: string;
  readonly method: string;
  readonly host: string;
  path: string;
  readonly keyState: string;
  cache: 'hit' | undefined;
}

interface InFlight {
  readonly user: string;
  readonly req: CanonicalRequest;
  readonly abort: (why: string) => void;
}

export interface InnerSidecarDeps {
  readonly logger?: Logger;
  readonly now?: () => number;
}

export class InnerSidecar {
  readonly config: InnerSidecarConfig;
  readonly metrics: SidecarMetrics;
  readonly log: Logger;
  /** One line per request, batched into the log's destination (sidecar-shared/accesslog.ts). */
  readonly #access: AccessLog;
  readonly endpoint: InnerEndpoint;
  readonly #store: Store;
  readonly #acl: AclEngine;
  readonly #upstreams: Upstreams;
  readonly #server: Server;
  readonly #admin: Server | undefined;
  /** Requests being forwarded, re-checked when the store changes (slots, not a Set: see slots.ts). */
  readonly #inFlight = new Slots<InFlight>();
  readonly #siteByHost = new Map<string, Site | null>();
  /** Who may exchange keys: registered keys and certificates (claim 3). */
  readonly #directory: ClientKeyDirectory;
  /** The inner's own keys: current and retiring (rotation). */
  readonly #keyRing: RotatingKeyRing;
  #stopWatch: () => void = () => undefined;
  #sweeper: NodeJS.Timeout | undefined;
  #address: AddressInfo | undefined;
  #adminAddress: AddressInfo | undefined;
  #stopping = false;
  readonly #keyFingerprint: string;
  readonly #replay: SqliteExchangeReplayGuard;
  readonly #cache: InnerCache | undefined;
  readonly #epochs: AclEpochs;

  private constructor(config: InnerSidecarConfig, store: Store, keyRing: RotatingKeyRing, deps: InnerSidecarDeps) {
    this.config = config;
    this.#store = store;
    this.metrics = createMetrics('inner');
    this.log = deps.logger ?? createLogger({ role: 'inner', level: config.logLevel });
    this.#access = AccessLog.of(this.log);
    this.#acl = aclEngine(store);
    this.#replay = new SqliteExchangeReplayGuard(config.dataDir);
    this.#upstreams = new Upstreams(config, { clientKeyPem: (host) => sites(store).clientKeyPem(host) });
    this.#epochs = new AclEpochs(aclRules(store), this.#acl);
    this.#cache = config.cache && config.cache.maxBytes > 0 ? new InnerCache(config.cache, this.metrics, config.forwardedUserHeader) : undefined;
    this.#keyRing = keyRing;
    this.#directory = new ClientKeyDirectory(store, { ...(deps.now ? { now: deps.now } : {}), onAnalyzed: () => this.#onStoreChange() });
    this.#keyFingerprint = keyRing.currentFingerprint;
    this.endpoint = new InnerEndpoint({
      keys: keyRing,
      clients: this.#directory,
      replay: this.#replay,
      aead: nodeAead,
      kdf: nodeKdf,
      rsa: nodeRsa,
      ...(deps.now ? { now: deps.now } : {}),
      policy: config.policy,
    });
    keyRing.watch({
      onLoaded: (keyIds, current) => this.log.info({ innerKeys: keyIds.map((k) => `sha256:${k}`), current: `sha256:${current}` }, 'inner key ring loaded'),
      onRetired: (keyIds) => {
        const ended = this.endpoint.sessions.endWhere((s) => keyIds.has(s.innerKeyIdHex));
        this.log.info({ retired: [...keyIds].map((k) => `sha256:${k}`), sessionsEnded: ended }, 'inner key retired');
      },
    });
    this.#server = createServer({ maxHeaderSize: 16 * 1024, requestTimeout: 0, keepAliveTimeout: 65_000 }, (req, res) => {
      this.#handle(req, res).catch((err: unknown) => {
        // Fail closed: a bug must cost one connection, never the process.
        this.log.error({ err: (err as Error)?.message, stack: (err as Error)?.stack }, 'unexpected failure handling an envelope');
        this.metrics.rejections.inc({ code: 'SWS_ERR_INTERNAL' });
        res.destroy();
      });
    });
    // Whatever Node's parser refuses, and CONNECT, is answered in words and counted, never a silent drop.
    this.#server.on('connect', (req: IncomingMessage, socket: Socket) => this.#refuseConnect(req, socket));
    this.#server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => this.#clientError(err, socket));
    this.#admin = config.adminListen ? createAdminServer({ metrics: this.metrics, notReadyReason: () => this.#notReady() }) : undefined;
  }

  #refuseConnect(req: IncomingMessage, socket: Socket): void {
    this.metrics.rejections.inc({ code: 'SWS_ERR_CONNECT' });
    this.metrics.requests.inc({ outcome: 'refused', status: '405' });
    this.log.warn({ code: 'SWS_ERR_CONNECT', method: req.method, remote: socket.remoteAddress, status: 405 }, 'CONNECT refused');
    socket.on('error', () => undefined);
    socket.end(rawProblem(405, 'Method Not Allowed', 'SWS_ERR_CONNECT', `this is an sws inner: it tunnels nothing; envelopes go to POST ${ENVELOPE_PATH}`, 'allow: POST\r\n'));
  }

  #clientError(err: NodeJS.ErrnoException, socket: Socket): void {
    socket.on('error', () => undefined);
    // A peer that reset or half-closed: there is nobody to answer and nothing to count.
    // A response already on its way cannot be followed by another status line: just cut.
    const inProgress = (socket as Socket & { _httpMessage?: { headersSent?: boolean } })._httpMessage?.headersSent === true;
    if (err.code === 'ECONNRESET' || !socket.writable || inProgress) return void socket.destroy();
    const [status, reason, code, message] =
      err.code === 'HPE_HEADER_OVERFLOW'
        ? ([431, 'Request Header Fields Too Large', 'SWS_ERR_HEADERS_TOO_LARGE', 'the request headers are too large'] as const)
        : err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
          ? ([408, 'Request Timeout', 'SWS_ERR_BAD_HTTP', 'the request headers did not arrive in time'] as const)
          : ([400, 'Bad Request', 'SWS_ERR_BAD_HTTP', 'malformed HTTP request'] as const);
    this.metrics.rejections.inc({ code });
    this.metrics.requests.inc({ outcome: 'refused', status: String(status) });
    // The parser's code names the fault; its message may quote input, so it is not logged.
    this.log.warn({ code, parserCode: err.code, remote: socket.remoteAddress, status }, 'malformed HTTP refused');
    socket.end(rawProblem(status, reason, code, message));
  }

  static async start(config: InnerSidecarConfig, deps: InnerSidecarDeps = {}): Promise<InnerSidecar> {
    const store = openStore(config.dataDir, { expectRole: 'inner' });
    try {
      const keyRing = await RotatingKeyRing.load(store, deps.now ? { now: deps.now } : {});
      const sidecar = new InnerSidecar(config, store, keyRing, deps);
      await sidecar.#listen();
      return sidecar;
    } catch (err) {
      store.close();
      throw err;
    }
  }

  async #listen(): Promise<void> {
    this.#address = await listen(this.#server, this.config.listen);
    if (this.#admin && this.config.adminListen) this.#adminAddress = await listen(this.#admin, this.config.adminListen);
    this.#stopWatch = this.#store.watch(() => this.#onStoreChange());
    this.#sweeper = setInterval(() => this.#sweepSessions(), sessionSweepMs(this.endpoint.policy.idleTimeoutMs)).unref();
    this.log.info({ listen: formatAddress(this.#address), admin: this.#adminAddress ? formatAddress(this.#adminAddress) : undefined, innerKey: this.#keyFingerprint }, 'inner sidecar listening');
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

  /** Live changes: removed users lose their sessions, revoked grants cut streams in flight. */
  /** Site by host, cached until the store changes (no database read per request). */
  #site(host: string): Site | undefined {
    let site = this.#siteByHost.get(host);
    if (site === undefined) {
      site = sites(this.#store).get(host) ?? null;
      if (this.#siteByHost.size >= 10_000) this.#siteByHost.clear();
      this.#siteByHost.set(host, site);
    }
    return site ?? undefined;
  }

  /** Idle and spent sessions leave memory, keys and replay windows with them, without waiting for a request on them. */
  #sweepSessions(): void {
    const ended = this.endpoint.sweepSessions();
    if (ended === 0) return;
    this.metrics.sessions.set(this.endpoint.sessions.size);
    this.log.debug({ sessionsEnded: ended, sessions: this.endpoint.sessions.size }, 'idle or spent sessions dropped');
  }

  #onStoreChange(): void {
    this.#siteByHost.clear();
    this.#directory.invalidate();
    this.#keyRing.refresh();
    // A removed client, a replaced key, a revoked or untrusted certificate, a retired inner key.
    const ended = this.endpoint.sessions.endWhere((s) => !this.#directory.accepts(s.user, s.clientKeyIdHex) || !this.#keyRing.accepts(s.innerKeyIdHex));
    let cut = 0;
    for (const f of this.#inFlight) {
      const registered = this.#directory.accepts(f.user);
      if (!registered || !this.#acl.check(f.user, f.req.method, f.req.host, f.req.target).allow) {
        f.abort('access revoked');
        cut++;
      }
    }
    if (ended || cut) this.log.info({ sessionsEnded: ended, streamsCut: cut }, 'store changed: access re-checked');
    this.metrics.sessions.set(this.endpoint.sessions.size);
    void this.#upstreams.retain(sites(this.#store).list());
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const started = process.hrtime.bigint();
    const path = req.url ?? '';
    if (path !== ENVELOPE_PATH) return this.#plainError(req, res, 404, 'SWS_ERR_NOT_FOUND', `this is an sws inner; envelopes go to POST ${ENVELOPE_PATH}`);
    if (req.method !== 'POST') return this.#plainError(req, res, 405, 'SWS_ERR_METHOD', 'envelopes must be POSTed');
    const ctype = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
    if (ctype !== MEDIA_TYPE) return this.#plainError(req, res, 415, 'SWS_ERR_MEDIA_TYPE', `envelopes must be ${MEDIA_TYPE}`);
    const version = req.headers[HeaderNames.version];
    if (version !== undefined && version !== String(PROTOCOL_VERSION)) return this.#plainError(req, res, 400, 'SWS_ERR_VERSION', `this inner speaks sws version ${PROTOCOL_VERSION}`);

    this.metrics.inFlight.inc();
    res.once('close', () => this.metrics.inFlight.dec());
    // A small envelope (any request the outer had at hand) is read whole and opened in memory;
    // anything else streams. Refusals stop reading without destroying the request, so the refusal can still be sent.
    const small = atHandLength(req);
    let env: Awaited<ReturnType<InnerEndpoint['open']>>;
    if (small === undefined) {
      env = await this.endpoint.open({ [Symbol.asyncIterator]: () => req.iterator({ destroyOnReturn: false }) });
    } else {
      const bytes = await readAtHand(req, small).catch((error: unknown) => error as Error);
      if (bytes instanceof Error) return this.#refuse(req, res, refusalFor(new TruncatedError('the envelope ended early'), 'request'), bytes, started);
      env = await this.endpoint.openAtHand(bytes);
    }
    if (env.kind === 'refused') return this.#refuse(req, res, env.refusal, env.error, started);
    if (env.confirm) {
      this.metrics.keyExchanges.inc({ reason: 'accepted', result: 'ok' });
      this.metrics.sessions.set(this.endpoint.sessions.size);
      // S104 answered at once, so requests sharing this exchange need not wait for the upstream.
      res.writeHead(200, this.#envelopeHeaders(KeyStates.exchanged));
      res.write(env.confirm);
    }
    const r = await env.readRequest();
    if (r === null) {
      res.end();
      return;
    }
    if (r.kind === 'refused') return this.#refuse(req, res, r.refusal, r.error, started);
    const keyState = env.confirm ? KeyStates.exchanged : KeyStates.ok;
    // A request opened at hand may be answered in one write with a Content-Length: its head waits for the answer.
    if (r.bodyAtHand === null) this.#beginEnvelope(res, keyState);
    await this.#serve(req, res, r, started, keyState);
  }

  #beginEnvelope(res: ServerResponse, keyState: string): void {
    if (!res.headersSent) res.writeHead(200, this.#envelopeHeaders(keyState));
  }

  /**
   * Seals an answer and sends it: a small body at hand as one RESPONSE record in one write with
   * a Content-Length (the outer then reads it whole), anything else streamed record by record.
   */
  async #sendSealed(res: ServerResponse, keyState: string, r: InnerRequest, head: ResponseHead, body: BodySource): Promise<void> {
    if (isSmall(body)) {
      const whole = await r.respondAtHand(head, body);
      if (whole) {
        if (!res.headersSent) res.writeHead(200, this.#envelopeHeaders(keyState, whole.length));
        return endWith(res, whole);
      }
    }
    this.#beginEnvelope(res, keyState);
    await (isSmall(body) ? writeWhole : writeBody)(res, r.respond(head, body));
  }

  /** The envelope's response headers; with `contentLength` for an answer sent in one write (one literal each: see #accessLog). */
  #envelopeHeaders(keyState: string, contentLength?: number): Record<string, string> {
    if (contentLength === undefined) {
      return { 'content-type': MEDIA_TYPE, 'cache-control': ENVELOPE_NO_STORE, [HeaderNames.version]: VERSION_VALUE, [HeaderNames.keyState]: keyState };
    }
    return { 'content-type': MEDIA_TYPE, 'cache-control': ENVELOPE_NO_STORE, [HeaderNames.version]: VERSION_VALUE, [HeaderNames.keyState]: keyState, 'content-length': String(contentLength) };
  }

  async #refuse(req: IncomingMessage, res: ServerResponse, refusal: Refusal, error: unknown, started: bigint): Promise<void> {
    const remote = req.socket?.remoteAddress;
    this.metrics.rejections.inc({ code: refusal.code });
    if (refusal.keyState === KeyStates.exchangeFailed) this.metrics.keyExchanges.inc({ reason: 'accepted', result: 'failed' });
    this.metrics.requests.inc({ outcome: 'refused', status: String(refusal.status) });
    this.log.warn({ code: refusal.code, keyState: refusal.keyState, status: refusal.status, detail: (error as Error)?.message, remote, ms: msSince(started) }, 'envelope refused');
    if (res.headersSent) {
      res.destroy();
      return;
    }
    // Closing a socket with unread input makes TCP send a reset, which can destroy the
    // refusal before the outer reads it: read what is left of a small body first.
    await drainSmall(req);
    const body = JSON.stringify(problemDocument(refusal));
    res.writeHead(refusal.status, {
      'content-type': 'application/problem+json',
      'cache-control': 'no-store',
      [HeaderNames.version]: String(PROTOCOL_VERSION),
      [HeaderNames.keyState]: refusal.keyState,
      'content-length': Buffer.byteLength(body),
      // A refused body larger than drainSmall reads is not read: close instead of draining it.
      connection: 'close',
    });
    res.end(body);
  }

  #plainError(req: IncomingMessage, res: ServerResponse, status: number, code: string, message: string): void {
    this.metrics.rejections.inc({ code });
    this.metrics.requests.inc({ outcome: 'refused', status: String(status) });
    const body = JSON.stringify({ type: `urn:sws:error:${code}`, title: message, status, code });
    res.writeHead(status, { 'content-type': 'application/problem+json', 'cache-control': 'no-store', 'content-length': Buffer.byteLength(body), connection: 'close' });
    res.end(body);
  }

  /** A request that authenticated: everything from here on is answered sealed. */
  async #serve(req: IncomingMessage, res: ServerResponse, r: InnerRequest, started: bigint, keyState: string): Promise<void> {
    const user = r.session.user;
    const access: AccessFields = { user, method: r.head.method, host: r.head.authority, path: loggablePath(r.head.path), keyState, cache: undefined };
    let canonical: CanonicalRequest;
    try {
      canonical = canonicalize(r.head, this.config.forwardedUserHeader);
    } catch (err) {
      return this.#sealedError(res, r, 400, 'bad request: the path or host is malformed or ambiguous', err, access, started);
    }
    const site = this.#site(canonical.host);
    if (!site) return this.#sealedError(res, r, 502, `no web server is configured at this inner for host ${canonical.host}`, new SwsError('SWS_ERR_NO_SITE', 'no site'), access, started);
    const decision = this.#acl.check(user, canonical.method, canonical.host, canonical.target);
    if (!decision.allow) {
      this.metrics.rejections.inc({ code: 'SWS_ERR_ACL_DENIED' });
      access.path = canonical.target.path;
      return this.#sealedError(res, r, 403, 'access denied: your account is not allowed to open this page', new SwsError('SWS_ERR_ACL_DENIED', decision.reason), access, started, 'denied');
    }

    const cancel = new Cancellation();
    let revoked = false;
    const flight: InFlight = {
      user,
      req: canonical,
      abort: (why) => {
        revoked = true;
        cancel.abort(new SwsError('SWS_ERR_REVOKED', why));
        res.destroy();
      },
    };
    const inFlightSlot = this.#inFlight.add(flight);
    const onClose = () => {
      if (!res.writableFinished) cancel.abort(new SwsError('SWS_ERR_CLIENT_GONE', 'the outer closed the connection'));
    };
    res.once('close', onClose);
    let bodyError: unknown;
    const hasBody = r.head.headers.some(([n]) => n === 'content-length' || n === 'transfer-encoding') || !['GET', 'HEAD', 'OPTIONS', 'DELETE', 'TRACE'].includes(canonical.method);
    const requestBody = !hasBody
      ? null
      : r.bodyAtHand !== null
        ? r.bodyAtHand
        : (async function* () {
          try {
            yield* r.body;
          } catch (e) {
            bodyError = e;
            throw e;
          }
        })();
    try {
      if (!hasBody) await drainEmpty(r);
      // The shared cache is consulted only here, after this user passed the ACL just now.
      const plan = this.#cache?.plan(canonical, user);
      if (plan?.kind === 'hit') {
        await this.#sendSealed(res, keyState, r, this.#epochs.stamp(user, plan.head), plan.body);
        access.path = canonical.target.path;
        access.cache = 'hit';
        this.#accessLog(access, 'allow', plan.head.status, started);
        return;
      }
      const identity: FieldLine = [this.config.forwardedUserHeader, user];
      // Small answers come back whole (SMALL_BODY), so they are sealed in one record and sent in one write.
      const up = await this.#upstreams.forward(site, plan?.request ?? canonical, identity, requestBody, cancel, SMALL_BODY);
      const head: ResponseHead = { status: up.statusCode, headers: fieldsFromRecord(up.headers as Record<string, string | string[]>, (n) => n === ACL_EPOCH_HEADER) };
      // No body at all (not an empty one) where the method or status rules it out; answer.ts collected nothing for those.
      const respBody: Uint8Array | AsyncIterable<Uint8Array> | null = isBodiless(canonical.method, up.statusCode) ? null : (up.bytes ?? up.body);
      const out = plan ? plan.complete(head, respBody) : { head, body: respBody };
      await this.#sendSealed(res, keyState, r, this.#epochs.stamp(user, out.head), out.body);
      access.path = canonical.target.path;
      this.#accessLog(access, 'allow', up.statusCode, started);
    } catch (err) {
      if (bodyError !== undefined || revoked || cancel.aborted) {
        const code = revoked ? 'SWS_ERR_REVOKED' : ((bodyError ?? err) as { code?: string })?.code ?? 'SWS_ERR_ABORTED';
        this.metrics.rejections.inc({ code });
        this.metrics.requests.inc({ outcome: revoked ? 'revoked' : 'aborted', status: '0' });
        this.log.warn({ ...access, code, detail: ((bodyError ?? err) as Error)?.message }, 'request aborted');
        if (bodyError !== undefined && !res.headersSent) return this.#refuse(req, res, refusalFor(bodyError, 'request'), bodyError, started);
        res.destroy();
        return;
      }
      if (err instanceof UpstreamError && !res.writableEnded && !isStreaming(res)) {
        return this.#sealedError(res, r, err.status, err.message, err, access, started);
      }
      // The upstream died mid-body: cut the envelope so the outer reports a truncated body.
      this.metrics.rejections.inc({ code: 'SWS_ERR_UPSTREAM_TRUNCATED' });
      this.log.warn({ ...access, detail: (err as Error)?.message }, 'upstream response cut');
      res.destroy();
    } finally {
      this.#inFlight.delete(inFlightSlot);
      res.off('close', onClose);
    }
  }

  async #sealedError(res: ServerResponse, r: InnerRequest, status: number, message: string, err: unknown, access: AccessFields, started: bigint, outcome = 'error'): Promise<void> {
    const code = (err as { code?: string })?.code ?? 'SWS_ERR_GENERIC';
    if (outcome === 'error') this.metrics.rejections.inc({ code });
    try {
      await drainEmpty(r).catch(() => undefined);
      const body = new TextEncoder().encode(`sws: ${message}\n`);
      const head: ResponseHead = { status, headers: [['content-type', 'text/plain; charset=utf-8'], ['cache-control', 'no-store'], ['content-length', String(body.length)]] };
      await this.#sendSealed(res, access.keyState, r, this.#epochs.stamp(r.session.user, head), body);
    } catch {
      res.destroy();
    }
    this.#accessLog(access, outcome === 'denied' ? 'deny' : 'error', status, started, code);
  }

  #accessLog(access: AccessFields, decision: string, status: number, started: bigint, code?: string): void {
    const outcome = decision === 'allow' ? 'ok' : decision === 'deny' ? 'denied' : 'error';
    const ms = msSince(started);
    this.metrics.answered(outcome, status, ms / 1000);
    // A literal, not `{ ...access, decision, … }`: on Node 20 a spread followed by new keys takes V8's slow
    // path, and each such record was promoted to the old generation (docs/PERFORMANCE.md "Object spreads").
    this.#access.write({ user: access.user, method: access.method, host: access.host, path: access.path, keyState: access.keyState, cache: access.cache, decision, status, ms, code });
  }

  /** Graceful stop: refuse new connections, let in-flight requests finish within the grace period. */
  async stop(graceMs = this.config.shutdownGraceMs): Promise<void> {
    if (this.#stopping) return;
    this.#stopping = true;
    this.#stopWatch();
    clearInterval(this.#sweeper);
    this.#keyRing.close();
    await drainAndClose(this.#server, this.#admin, graceMs);
    await this.#upstreams.close();
    this.#replay.close();
    this.#store.close();
    this.log.info('inner sidecar stopped');
    await flushLog(this.log);
  }
}

/**
 * How often the inner drops idle and spent sessions: a quarter of the idle timeout, between 1
 * and 15 s. A session therefore outlives its idle timeout by at most a quarter of it (15 s for
 * the default 10 minutes); each sweep walks the session table once (100,000 sessions at most).
 */
function sessionSweepMs(idleTimeoutMs: number): number {
  return Math.min(15_000, Math.max(1_000, Math.floor(idleTimeoutMs / 4)));
}

/** A whole HTTP/1.1 answer for a socket the HTTP server no longer (or never) handles: problem+json, then close. */
function rawProblem(status: number, reason: string, code: string, title: string, extraHeaders = ''): string {
  const body = JSON.stringify({ type: `urn:sws:error:${code}`, title, status, code });
  return (
    `HTTP/1.1 ${status} ${reason}\r\ncontent-type: application/problem+json\r\ncache-control: no-store\r\n${extraHeaders}` +
    `content-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`
  );
}

/** The path a log line may carry: never the query (tokens live there) nor a fragment. */
export function loggablePath(path: string): string {
  const cut = path.search(/[?#]/);
  return cut < 0 ? path : path.slice(0, cut);
}

function msSince(start: bigint): number {
  return Number(process.hrtime.bigint() - start) / 1e6;
}

function isStreaming(res: ServerResponse): boolean {
  // Once any RESPONSE octet went out we can no longer send a different sealed answer.
  return res.writableLength > 0 || (res as ServerResponse & { _contentLength?: number }).socket?.bytesWritten === undefined;
}

/**
 * Reads and drops the rest of a request body up to `limit` octets or `ms` milliseconds,
 * whichever comes first (an exchange and its first request are a few KiB).
 */
function drainSmall(req: IncomingMessage, limit = 256 * 1024, ms = 1000): Promise<void> {
  if (req.complete || req.destroyed) return Promise.resolve();
  return new Promise((resolve) => {
    let left = limit;
    const done = () => {
      clearTimeout(timer);
      req.off('data', onData);
      req.off('end', done);
      req.off('close', done);
      req.pause();
      resolve();
    };
    const onData = (c: Buffer) => {
      left -= c.length;
      if (left < 0) done();
    };
    const timer = setTimeout(done, ms);
    req.on('data', onData);
    req.once('end', done);
    req.once('close', done);
    req.resume();
  });
}

/** A request declared without a body must not carry one. */
async function drainEmpty(r: InnerRequest): Promise<void> {
  const unexpected = () => new SwsError('SWS_ERR_BAD_REQUEST', 'unexpected request body');
  if (r.bodyAtHand !== null) {
    if (r.bodyAtHand.length > 0) throw unexpected();
    return;
  }
  for await (const c of r.body) if (c.length > 0) throw unexpected();
}

/** The declared length of an envelope small enough to read whole (every request the outer had at hand is), else undefined: stream it. */
function atHandLength(req: IncomingMessage): number | undefined {
  if (req.headers['transfer-encoding'] !== undefined) return undefined;
  const n = declaredLength(req.headers['content-length']);
  return n <= AT_HAND_ENVELOPE ? n : undefined;
}

/** Reads a request body of `length` declared octets (Node's parser enforces the length). */
function readAtHand(req: IncomingMessage, length: number): Promise<Uint8Array> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    let got = 0;
    const cleanup = () => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
      req.off('close', onClose);
    };
    const onData = (c: Buffer) => {
      got += c.length;
      parts.push(c);
    };
    const onEnd = () => {
      cleanup();
      if (got !== length) reject(new TruncatedError('the envelope is shorter than its Content-Length'));
      else resolve(parts.length === 1 ? parts[0]! : Buffer.concat(parts, got));
    };
    const onError = (e: Error) => (cleanup(), reject(e));
    const onClose = () => (cleanup(), reject(new TruncatedError('the outer closed the connection mid-envelope')));
    req.on('data', onData);
    req.once('end', onEnd);
    req.once('error', onError);
    req.once('close', onClose);
  });
}

/**
 * The outer's protocol endpoint for one (user, inner) pair: S101–S105 key management,
 * sealing requests and opening responses, without HTTP. The sidecar adds sockets,
 * proxy authentication and the inner-server list.
 *
 * The first request that needs a new key carries the EXCHANGE in the same POST
 * (EXCHANGE ‖ REQUEST); the inner answers EXCHANGE_CONFIRM ‖ RESPONSE and sends the
 * confirmation as soon as it accepted the exchange, so requests that share the exchange
 * wait one round trip, not for the first request's upstream.
 */
import type { AeadBackend } from './aead.ts';
import type { KdfBackend } from './kdf.ts';
import { encodeRequestHead, type RequestHead, type ResponseHead } from './bhttp.ts';
import { ByteReader, type ByteSource } from './bytereader.ts';
import { concatBytes, timingSafeEqual, toHex } from './bytes.ts';
import type { PublicKeyHandle, RsaBackend } from './crypto.ts';
import { ExchangeFailedError, MalformedError, ReplayError, SwsError, TruncatedError } from './errors.ts';
import { finishExchange, startExchange, type ExchangeConfirmation, type ExchangeUser, type PendingExchange, type RequestedLimits } from './exchange.ts';
import { KeyRotation, type ExchangeReason, type RekeyDecision, type RekeyPolicy, type SessionUsage } from './keyrotation.ts';
import { packSessionKeys } from './keyschedule.ts';
import { openResponse, openResponseAtHand, sealRequest, sealSingleRecord, singleRecordPlaintext, type BodySource, type MessageAtHand, type OpenedMessage } from './messages.ts';
import { encodeEnvelopeHeader, ENVELOPE_HEADER_LENGTH, KeyStates, MessageTypes, parseEnvelopeHeader, type EnvelopeHeader } from './wire.ts';

/** Margin before an inner-granted limit at which the outer re-keys on its own. */
const IDLE_MARGIN_MS = 5_000;

/**
 * One session key at the outer. A channel keeps its session while idle (issue 7: ≤ 2 KiB
 * each), so once the exchange settled the session keeps only what requests use.
 */
export class OuterSession {
  static readonly #SETTLED = new Uint8Array(0);
  static readonly #settledNoop = (): void => undefined;
  #pending: PendingExchange;
  readonly establishedAt: number;
  readonly reason: ExchangeReason;
  /** Resolves when the inner's signed confirmation verified (S104), rejects if the exchange failed. */
  readonly ready: Promise<ExchangeConfirmation>;
  confirmation: ExchangeConfirmation | undefined;
  /** innerClock − outerClock, measured at confirmation. */
  clockOffset = 0;
  requests = 0;
  lastDestination = '';
  lastUsedAt: number;
  /** Sequence → outer send time, for requests whose response has not been accepted yet. */
  readonly outstanding = new Map<number, number>();
  #nextSeq = 1;
  #exchangeMessage: Uint8Array | null;
  #resolve: (c: ExchangeConfirmation) => void = OuterSession.#settledNoop;
  #reject: (e: unknown) => void = OuterSession.#settledNoop;
  #settled = false;

  constructor(pending: PendingExchange, now: number, reason: ExchangeReason) {
    const { keys } = packSessionKeys(pending.keys);
    this.#pending = { ...pending, sessionId: keys.sessionId, keys };
    this.establishedAt = now;
    this.lastUsedAt = now;
    this.reason = reason;
    this.#exchangeMessage = pending.message;
    this.ready = new Promise((res, rej) => {
      this.#resolve = res;
      this.#reject = rej;
    });
    // Waiters attach their own handlers; an unobserved failure must not crash the process.
    this.ready.catch(() => undefined);
  }

  /**
   * The exchange this session came from. Once it settled: only the session ID, the data keys
   * and the public parts; the PRK is wiped, the EXCHANGE octets, TH1 and cfm keys are dropped.
   */
  get pending(): PendingExchange {
    return this.#pending;
  }

  /** Made when asked (logs), not kept per session. */
  get sessionIdHex(): string {
    return toHex(this.#pending.sessionId);
  }

  #settle(): void {
    this.#settled = true;
    this.#exchangeMessage = null;
    this.#resolve = this.#reject = OuterSession.#settledNoop;
    const { sessionId, keys, timestamp, inner, aead, prk } = this.#pending;
    prk.fill(0);
    const none = OuterSession.#SETTLED;
    this.#pending = { sessionId, keys, timestamp, inner, aead, message: none, prk: none, th1: none };
  }

  /** The EXCHANGE octets, handed once to the request that carries them. */
  takeExchange(): Uint8Array | null {
    const m = this.#exchangeMessage;
    this.#exchangeMessage = null;
    return m;
  }

  nextSequence(now: number): number {
    const seq = this.#nextSeq++;
    this.outstanding.set(seq, now);
    return seq;
  }

  confirm(c: ExchangeConfirmation, now: number): void {
    if (this.#settled) return;
    const resolve = this.#resolve;
    this.#settle();
    this.confirmation = c;
    this.clockOffset = c.innerTime - now;
    resolve(c);
  }

  fail(err: unknown): void {
    if (this.#settled) return;
    const reject = this.#reject;
    this.#settle();
    reject(err);
  }

  get confirmed(): boolean {
    return this.confirmation !== undefined;
  }

  usage(): SessionUsage {
    const { c2s, s2c } = this.#pending.keys;
    const g = this.confirmation?.granted;
    return {
      establishedAt: this.establishedAt,
      requests: this.requests,
      bytes: c2s.bytes + s2c.bytes,
      records: Math.max(c2s.records, s2c.records),
      failedOpens: s2c.failedOpens,
      lastDestination: this.lastDestination,
      ...(g ? { granted: { maxRequests: g.maxRequests, maxBytes: g.maxBytes, expiresAt: g.expiresAt - this.clockOffset } } : {}),
    };
  }

  /** True when the inner will have dropped this session for idleness by now. */
  idleExpired(now: number): boolean {
    const g = this.confirmation?.granted;
    return g !== undefined && now - this.lastUsedAt > g.idleTimeoutSeconds * 1000 - IDLE_MARGIN_MS;
  }
}

export interface OuterChannelOptions {
  readonly user: ExchangeUser;
  readonly inner: PublicKeyHandle;
  readonly policy: RekeyPolicy;
  readonly now?: () => number;
  readonly requested?: RequestedLimits;
  readonly recordSize?: number;
  readonly maxRecordPlaintext?: number;
  /** The AEAD implementation for session records (default WebCrypto; the Node sidecar injects node:crypto). */
  readonly aead?: AeadBackend;
  /** The SHA-256/HKDF implementation for exchanges (default WebCrypto; the Node sidecar injects node:crypto). */
  readonly kdf?: KdfBackend;
  /** The RSA-OAEP/RSA-PSS implementation for exchanges and their confirmations (default WebCrypto; the Node sidecar injects node:crypto). */
  readonly rsa?: RsaBackend;
}

/** Methods whose repetition has no further effect (RFC 9110 §9.2.2). */
const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE', 'PUT', 'DELETE']);

export function isIdempotent(method: string): boolean {
  return IDEMPOTENT.has(method);
}

function usageOfSession(s: OuterSession): SessionUsage {
  return s.usage();
}

/** One (user, inner) pair: the current session and the S101–S105 policy. */
export class OuterChannel {
  readonly #opts: OuterChannelOptions;
  readonly #now: () => number;
  readonly rotation: KeyRotation<OuterSession>;
  /** Counts exchanges started, by reason (for metrics). */
  onExchange?: (reason: ExchangeReason) => void;

  constructor(opts: OuterChannelOptions) {
    this.#opts = opts;
    this.#now = opts.now ?? Date.now;
    // A shared function and a bound method rather than two closures per channel: idle channels
    // are what an outer holds most of (issue 7, ≤ 2 KiB each).
    this.rotation = new KeyRotation<OuterSession>({ policy: opts.policy, now: this.#now, usageOf: usageOfSession, exchange: this.#exchange.bind(this) });
  }

  async #exchange(reason: ExchangeReason): Promise<OuterSession> {
    const opts = this.#opts;
    this.onExchange?.(reason);
    const now = this.#now();
    const pending = await startExchange({ user: opts.user, inner: opts.inner, now, ...(opts.requested ? { requested: opts.requested } : {}), ...(opts.aead ? { aead: opts.aead } : {}), ...(opts.kdf ? { kdf: opts.kdf } : {}), ...(opts.rsa ? { rsa: opts.rsa } : {}) });
    return new OuterSession(pending, now, reason);
  }

  get user(): string {
    return this.#opts.user.name;
  }

  now(): number {
    return this.#now();
  }

  /**
   * S101–S105 for the next request to `destination` (an origin). The caller then sends
   * `call.seal(...)` and hands the answer to `call.open(...)` or `call.refused(...)`.
   */
  async prepare(destination: string): Promise<OuterCall> {
    const now = this.#now();
    const current = this.rotation.current();
    if (current && current.idleExpired(now)) this.rotation.invalidate(current, 'session-lost');
    const acquired = await this.rotation.acquire(destination);
    const session = acquired.session;
    const exchange = acquired.decision.kind === 'exchange' && !acquired.shared ? session.takeExchange() : null;
    if (!exchange && !session.confirmed) await session.ready;
    session.requests += 1;
    session.lastDestination = destination;
    session.lastUsedAt = now;
    return new OuterCall(this, session, acquired.decision, exchange, this.#now(), this.#opts);
  }

  /** Forces the next prepare() to exchange (the inner said it lost the session). */
  invalidate(session: OuterSession): void {
    this.rotation.invalidate(session, 'session-lost');
  }

  /**
   * Retry rule (docs/PROTOCOL.md §9): a request refused with an unauthenticated
   * `exchange-needed` may run again automatically only if its method is idempotent, or if
   * the new signed confirmation proves the old session cannot have run it: a different inner
   * incarnation that started before the request was sent.
   */
  static retryIsSafe(method: string, failed: OuterCall, fresh: ExchangeConfirmation | undefined, skewMs = 1_000): boolean {
    if (isIdempotent(method)) return true;
    const old = failed.session.confirmation;
    if (!fresh || !old || fresh.incarnation === old.incarnation) return false;
    const sentAtInnerClock = failed.sentAt + failed.session.clockOffset;
    return fresh.incarnation + skewMs < sentAtInnerClock;
  }
}

/** One request on a session: what to send, and how to read the answer. */
export class OuterCall {
  readonly channel: OuterChannel;
  readonly session: OuterSession;
  readonly decision: RekeyDecision;
  /** EXCHANGE octets to send before the request (this call started the exchange), else null. */
  readonly exchange: Uint8Array | null;
  readonly sentAt: number;
  #sequence = 0;
  readonly #opts: OuterChannelOptions;

  constructor(channel: OuterChannel, session: OuterSession, decision: RekeyDecision, exchange: Uint8Array | null, now: number, opts: OuterChannelOptions) {
    this.channel = channel;
    this.session = session;
    this.decision = decision;
    this.exchange = exchange;
    this.sentAt = now;
    this.#opts = opts;
  }

  /** Value of the Sws-Key-State request header. */
  get keyState(): string {
    return this.exchange ? KeyStates.exchange : KeyStates.established;
  }

  get sequence(): number {
    return this.#sequence;
  }

  /** The envelope body: [EXCHANGE] ‖ REQUEST, streaming. */
  async *seal(head: RequestHead, body: BodySource): AsyncGenerator<Uint8Array> {
    if (this.exchange) yield this.exchange;
    this.#sequence = this.session.nextSequence(this.sentAt);
    const header = encodeEnvelopeHeader(MessageTypes.request, this.session.pending.sessionId, this.#sequence, this.sentAt);
    yield* sealRequest(this.session.pending.keys.c2s, header, head, body, this.#opts.recordSize !== undefined ? { recordSize: this.#opts.recordSize } : {});
  }

  /**
   * The whole envelope body in one buffer ([EXCHANGE] ‖ REQUEST) when the body is at hand and
   * the request fits one record; null otherwise (then stream seal()). Same octets as seal().
   */
  async sealAtHand(head: RequestHead, body: Uint8Array | null): Promise<Uint8Array | null> {
    const pt = singleRecordPlaintext(encodeRequestHead(head), body, this.#opts.recordSize);
    if (!pt) return null;
    this.#sequence = this.session.nextSequence(this.sentAt);
    const header = encodeEnvelopeHeader(MessageTypes.request, this.session.pending.sessionId, this.#sequence, this.sentAt);
    const request = await sealSingleRecord(this.session.pending.keys.c2s, header, pt);
    return this.exchange ? concatBytes(this.exchange, request) : request;
  }

  /** An exchange-only envelope (used before a retry that must prove safety). */
  sealExchangeOnly(): Uint8Array {
    if (!this.exchange) throw new Error('this call did not start an exchange');
    return this.exchange;
  }

  /**
   * Reads a 200 envelope answer: [EXCHANGE_CONFIRM] ‖ RESPONSE. Resolves once the response
   * head authenticated; the body throws on any truncation or tampering.
   */
  async open(keyState: string | undefined, source: ByteSource): Promise<OpenedMessage<ResponseHead>> {
    const reader = new ByteReader(source);
    try {
      await this.#readConfirm(keyState, reader);
      const hb = await reader.readExactOrEnd(ENVELOPE_HEADER_LENGTH);
      if (hb === null) throw new MalformedError('the inner sent no response');
      const header = this.#checkResponseHeader(hb);
      const opened = await openResponse(this.session.pending.keys.s2c, header, reader, this.#opts.maxRecordPlaintext !== undefined ? { maxRecordPlaintext: this.#opts.maxRecordPlaintext } : {});
      return { head: opened.head, body: checkedEnd(opened.body, reader) };
    } catch (err) {
      this.session.outstanding.delete(this.#sequence);
      await reader.cancel();
      throw err;
    }
  }

  /**
   * Reads a 200 envelope answer that is entirely at hand (its Content-Length was small): the
   * same checks as open(), the body returned whole and already authenticated. An answer that
   * carries an exchange confirmation goes through open() instead.
   */
  async openAtHand(keyState: string | undefined, envelope: Uint8Array): Promise<MessageAtHand<ResponseHead>> {
    try {
      if (this.exchange) throw new Error('openAtHand is for established sessions; use open()');
      if (keyState !== KeyStates.ok) throw new MalformedError(`unexpected key state ${JSON.stringify(keyState ?? '')}`);
      if (envelope.length === 0) throw new MalformedError('the inner sent no response');
      if (envelope.length < ENVELOPE_HEADER_LENGTH) throw new TruncatedError('the response ended inside its header');
      const header = this.#checkResponseHeader(envelope.subarray(0, ENVELOPE_HEADER_LENGTH));
      return await openResponseAtHand(this.session.pending.keys.s2c, header, envelope.subarray(ENVELOPE_HEADER_LENGTH), this.#opts.maxRecordPlaintext !== undefined ? { maxRecordPlaintext: this.#opts.maxRecordPlaintext } : {});
    } catch (err) {
      this.session.outstanding.delete(this.#sequence);
      throw err;
    }
  }

  #checkResponseHeader(hb: Uint8Array): EnvelopeHeader {
    const header = parseEnvelopeHeader(hb);
    if (header.type !== MessageTypes.response) throw new MalformedError('expected a response message');
    if (!timingSafeEqual(header.sessionId, this.session.pending.sessionId)) throw new MalformedError('response is for another session');
    if (header.sequence !== this.#sequence) throw new MalformedError('response is for another request');
    // Exact table, not a window: each response is accepted once.
    if (!this.session.outstanding.delete(header.sequence)) throw new ReplayError('response already received');
    return header;
  }

  /** Reads just the confirmation of an exchange-only envelope. */
  async openExchangeOnly(keyState: string | undefined, source: ByteSource): Promise<ExchangeConfirmation> {
    const reader = new ByteReader(source);
    try {
      const c = await this.#readConfirm(keyState, reader);
      if (!c) throw new MalformedError('expected an exchange confirmation');
      if (!(await reader.atEnd())) throw new MalformedError('trailing octets after the confirmation');
      return c;
    } finally {
      await reader.cancel();
    }
  }

  async #readConfirm(keyState: string | undefined, reader: ByteReader): Promise<ExchangeConfirmation | undefined> {
    if (!this.exchange) {
      if (keyState !== KeyStates.ok) throw new MalformedError(`unexpected key state ${JSON.stringify(keyState ?? '')}`);
      return undefined;
    }
    try {
      if (keyState !== KeyStates.exchanged) throw new MalformedError('the inner did not confirm the exchange');
      const hb = await reader.readExactOrEnd(ENVELOPE_HEADER_LENGTH);
      if (hb === null) throw new MalformedError('the inner sent no confirmation');
      const confirmation = await finishExchange(this.session.pending, parseEnvelopeHeader(hb), reader);
      this.session.confirm(confirmation, this.channel.now());
      return confirmation;
    } catch (err) {
      this.#exchangeFailed(err);
      throw err;
    }
  }

  /**
   * The inner refused the envelope in clear (key state header + problem code). Returns what
   * the caller may do: `exchange-needed` invalidates the session so the next prepare()
   * exchanges again.
   */
  refused(keyState: string | undefined, code: string | undefined): { sessionLost: boolean } {
    this.session.outstanding.delete(this.#sequence);
    if (this.exchange) {
      this.#exchangeFailed(new ExchangeFailedError(`the inner refused the key exchange (${code ?? 'no code'})`));
      return { sessionLost: true };
    }
    if (keyState === KeyStates.exchangeNeeded) {
      this.channel.invalidate(this.session);
      return { sessionLost: true };
    }
    return { sessionLost: false };
  }

  /** The envelope could not be sent or answered (network): an unconfirmed exchange is void. */
  abandon(err: unknown): void {
    this.session.outstanding.delete(this.#sequence);
    if (this.exchange && !this.session.confirmed) this.#exchangeFailed(err);
  }

  #exchangeFailed(err: unknown): void {
    const e = err instanceof SwsError ? err : new ExchangeFailedError('the key exchange failed', { cause: err });
    this.session.fail(e);
    this.channel.invalidate(this.session);
  }
}

async function* checkedEnd(body: AsyncIterable<Uint8Array>, reader: ByteReader): AsyncGenerator<Uint8Array> {
  yield* body;
  if (!(await reader.atEnd())) throw new MalformedError('trailing octets after the response');
}

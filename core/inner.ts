/**
 * The inner's protocol endpoint: everything the inner does to an envelope, without HTTP.
 * open → (accept exchange) → find session → replay/age checks → open request; then seal the
 * response. The sidecar adds sockets, the ACL and the upstream.
 *
 * Session state (docs/PROTOCOL.md §9): per session the two direction keys, the replay
 * window, the clock offset, granted limits and counters, all in this process's memory.
 */
import type { AeadBackend } from './aead.ts';
import type { KdfBackend } from './kdf.ts';
import type { RsaBackend } from './crypto.ts';
import type { RequestHead, ResponseHead } from './bhttp.ts';
import { ByteReader, type ByteSource } from './bytereader.ts';
import { toHex } from './bytes.ts';
import { MalformedError, ReplayError, SessionLimitError, StaleError, UnknownSessionError } from './errors.ts';
import {
  acceptExchange,
  DEFAULT_MAX_SKEW_MS,
  MemoryExchangeReplayGuard,
  type ClientDirectory,
  type ExchangeReplayGuard,
  type GrantedLimits,
  type InnerKeyRing,
  type RequestedLimits,
  type SessionKeys,
} from './exchange.ts';
import { encodeResponseHead } from './bhttp.ts';
import { openRequest, openRequestAtHand, sealResponse, sealSingleRecord, singleRecordPlaintext, type BodySource, type OpenOptions } from './messages.ts';
import { AEAD_CEILINGS } from './limits.ts';
import { RECORD_DEFAULTS } from './records.ts';
import { DEFAULT_REPLAY_WINDOW, ReplayWindow } from './replaywindow.ts';
import { packSessionKeys } from './keyschedule.ts';
import { refusalFor, type Refusal } from './signals.ts';
import { encodeEnvelopeHeader, ENVELOPE_HEADER_LENGTH, MessageTypes, parseEnvelopeHeader, type EnvelopeHeader } from './wire.ts';

export interface InnerPolicy {
  /** Most sessions held at once; the least recently used is dropped beyond it. */
  readonly maxSessions: number;
  /** A session's absolute lifetime. */
  readonly sessionLifetimeMs: number;
  /** A session unused this long is dropped. */
  readonly idleTimeoutMs: number;
  readonly maxRequestsPerSession: number;
  readonly maxBytesPerSession: number;
  /** A REQUEST older than this (sender time corrected by the exchange offset) is refused. */
  readonly maxRequestAgeMs: number;
  readonly maxSkewMs: number;
  readonly replayWindow: number;
  readonly maxRecordPlaintext: number;
  readonly recordSize: number;
}

export const DEFAULT_INNER_POLICY: InnerPolicy = {
  maxSessions: 100_000,
  sessionLifetimeMs: 60 * 60 * 1000,
  idleTimeoutMs: 10 * 60 * 1000,
  maxRequestsPerSession: 1_000_000,
  maxBytesPerSession: AEAD_CEILINGS.bytes,
  maxRequestAgeMs: 60_000,
  maxSkewMs: DEFAULT_MAX_SKEW_MS,
  replayWindow: DEFAULT_REPLAY_WINDOW,
  maxRecordPlaintext: RECORD_DEFAULTS.maxPlaintext,
  recordSize: RECORD_DEFAULTS.plaintextSize,
};

/**
 * One established session. Idle sessions are what an inner holds most of (issue 7: ≤ 2 KiB
 * each), so it keeps nothing per session that sessions could share or that the exchange
 * merely passed through.
 */
export class InnerSession {
  /** Most distinct key IDs whose hex is shared between sessions; beyond it the oldest is forgotten. */
  static readonly #MAX_SHARED_KEY_IDS = 4096;
  static readonly #keyIds = new Map<string, string>();

  /** The one string kept for this key ID: every session of a key shares it instead of a 64-character copy of its own. */
  static #sharedKeyId(idHex: string): string {
    const ids = InnerSession.#keyIds;
    const known = ids.get(idHex);
    if (known !== undefined) return known;
    if (ids.size >= InnerSession.#MAX_SHARED_KEY_IDS) ids.delete(ids.keys().next().value!);
    ids.set(idHex, idHex);
    return idHex;
  }

  readonly sessionIdHex: string;
  readonly user: string;
  readonly clientKeyIdHex: string;
  readonly innerKeyIdHex: string;
  readonly keys: SessionKeys;
  readonly window: ReplayWindow;
  readonly clockOffset: number;
  readonly granted: GrantedLimits;
  readonly establishedAt: number;
  lastUsedAt: number;
  requests = 0;

  constructor(init: { user: string; clientKeyIdHex: string; innerKeyIdHex: string; keys: SessionKeys; clockOffset: number; granted: GrantedLimits; now: number; windowSize: number }) {
    // Session ID, IVs and replay bitmap in one allocation. The ID is copied out of the chunk
    // that carried the exchange (up to a whole socket read), which a view would keep alive.
    const packed = packSessionKeys(init.keys, init.windowSize / 8);
    this.keys = packed.keys;
    this.sessionIdHex = toHex(packed.keys.sessionId);
    this.user = init.user;
    this.clientKeyIdHex = InnerSession.#sharedKeyId(init.clientKeyIdHex);
    this.innerKeyIdHex = InnerSession.#sharedKeyId(init.innerKeyIdHex);
    this.window = new ReplayWindow(init.windowSize, new Uint32Array(packed.tail.buffer, packed.tail.byteOffset, init.windowSize / 32));
    this.clockOffset = init.clockOffset;
    this.granted = init.granted;
    this.establishedAt = init.now;
    this.lastUsedAt = init.now;
  }

  /** Why this session may no longer carry requests, or undefined while it may. */
  exhaustedReason(now: number): string | undefined {
    if (now >= this.granted.expiresAt) return 'session expired';
    // The key's age ceiling holds whatever was granted (a long configured lifetime or a custom grant).
    if (now - this.establishedAt >= AEAD_CEILINGS.ageMs) return 'session key age limit reached';
    if (now - this.lastUsedAt > this.granted.idleTimeoutSeconds * 1000) return 'session idle too long';
    if (this.requests >= this.granted.maxRequests) return 'session request limit reached';
    const used = Math.max(this.keys.c2s.bytes, this.keys.s2c.bytes);
    if (used >= this.granted.maxBytes) return 'session byte limit reached';
    if (Math.max(this.keys.c2s.records, this.keys.s2c.records) >= AEAD_CEILINGS.records) return 'session record limit reached';
    if (this.keys.c2s.failedOpens >= AEAD_CEILINGS.failedOpens) return 'session failure limit reached';
    return undefined;
  }
}

/** Sessions by ID with LRU eviction (a Map keeps insertion order; touching re-inserts). */
export class InnerSessionTable {
  readonly #byId = new Map<string, InnerSession>();
  /** The session last inserted or touched: the end of the Map's order. */
  #newest: InnerSession | undefined;
  readonly #max: number;
  constructor(maxSessions: number) {
    this.#max = maxSessions;
  }
  get size(): number {
    return this.#byId.size;
  }
  get(idHex: string): InnerSession | undefined {
    const s = this.#byId.get(idHex);
    // Touching re-hashes the table now and then; a session already the newest needs no touch (the common case: one busy session).
    if (s && s !== this.#newest) {
      this.#byId.delete(idHex);
      this.#byId.set(idHex, s);
      this.#newest = s;
    }
    return s;
  }
  has(idHex: string): boolean {
    return this.#byId.has(idHex);
  }
  add(s: InnerSession): void {
    this.#byId.delete(s.sessionIdHex);
    this.#byId.set(s.sessionIdHex, s);
    this.#newest = s;
    while (this.#byId.size > this.#max) {
      this.#remove(this.#byId.keys().next().value as string);
    }
  }
  delete(idHex: string): void {
    this.#remove(idHex);
  }
  /** Every removal goes through here, so an ended session is not kept reachable as the newest. */
  #remove(idHex: string): void {
    if (this.#newest?.sessionIdHex === idHex) this.#newest = undefined;
    this.#byId.delete(idHex);
  }
  /** Ends every session of a user (revocation), returning how many. */
  endUser(user: string): number {
    let n = 0;
    for (const [id, s] of this.#byId) if (s.user === user) (this.#remove(id), n++);
    return n;
  }
  /** Ends every session matching `pred`. */
  endWhere(pred: (s: InnerSession) => boolean): number {
    let n = 0;
    for (const [id, s] of this.#byId) if (pred(s)) (this.#remove(id), n++);
    return n;
  }
  /** Drops sessions that can no longer be used. */
  sweep(now: number): number {
    return this.endWhere((s) => s.exhaustedReason(now) !== undefined);
  }
  values(): IterableIterator<InnerSession> {
    return this.#byId.values();
  }
}

export interface InnerRequest {
  readonly kind: 'request';
  readonly session: InnerSession;
  readonly sequence: number;
  readonly head: RequestHead;
  /** Throws on truncation or tampering: the sidecar must then abort the upstream request. */
  readonly body: AsyncIterable<Uint8Array>;
  /** The whole content, already authenticated, when the envelope was opened at hand; else null (stream `body`). */
  readonly bodyAtHand: Uint8Array | null;
  /** Seals the response for this request (the RESPONSE message only). */
  respond(head: ResponseHead, body: BodySource): AsyncGenerator<Uint8Array>;
  /** The RESPONSE message in one buffer when its body is at hand and fits one record, else null (use respond). */
  respondAtHand(head: ResponseHead, body: Uint8Array | null): Promise<Uint8Array | null>;
}

export type InnerRefused = { readonly kind: 'refused'; readonly refusal: Refusal; readonly error: unknown };

export interface InnerEnvelope {
  readonly kind: 'envelope';
  /** Set when the envelope began with an accepted exchange: send these octets first (S104). */
  readonly confirm: Uint8Array | null;
  readonly session: InnerSession | null;
  /** The REQUEST that follows, null if the envelope was an exchange alone. */
  readRequest(): Promise<InnerRequest | InnerRefused | null>;
}

export interface InnerEndpointOptions {
  readonly keys: InnerKeyRing;
  readonly clients: ClientDirectory;
  readonly replay?: ExchangeReplayGuard;
  readonly now?: () => number;
  /** Identifies this process's life (its start time in ms); signed in every confirmation. */
  readonly incarnation?: number;
  readonly policy?: Partial<InnerPolicy>;
  /** The AEAD implementation for session records (default WebCrypto; the Node sidecar injects node:crypto). */
  readonly aead?: AeadBackend;
  /** The SHA-256/HKDF implementation for exchanges (default WebCrypto; the Node sidecar injects node:crypto). */
  readonly kdf?: KdfBackend;
  /** The RSA-OAEP/RSA-PSS implementation for exchanges (default WebCrypto; the Node sidecar injects node:crypto). */
  readonly rsa?: RsaBackend;
  /** Optional per-user grant override. */
  readonly grant?: (requested: RequestedLimits, user: string, now: number) => GrantedLimits;
}

export class InnerEndpoint {
  readonly sessions: InnerSessionTable;
  readonly policy: InnerPolicy;
  readonly incarnation: number;
  readonly #opts: InnerEndpointOptions;
  readonly #now: () => number;
  readonly #replay: ExchangeReplayGuard;
  readonly #startedAt: number | undefined;

  constructor(opts: InnerEndpointOptions) {
    this.#opts = opts;
    this.#now = opts.now ?? Date.now;
    this.policy = { ...DEFAULT_INNER_POLICY, ...opts.policy };
    this.sessions = new InnerSessionTable(this.policy.maxSessions);
    this.incarnation = opts.incarnation ?? this.#now();
    // A memory-only replay guard forgets on restart: then refuse exchanges older than the process.
    this.#replay = opts.replay ?? new MemoryExchangeReplayGuard();
    this.#startedAt = opts.replay ? undefined : this.incarnation;
  }

  /**
   * Drops every session past its idle timeout, lifetime or limits, so that its keys leave
   * memory without waiting for a request on it; returns how many. The host calls this now and
   * then (the sidecar: sidecar-inner/server.ts).
   */
  sweepSessions(): number {
    return this.sessions.sweep(this.#now());
  }

  #grant(requested: RequestedLimits, user: string, now: number): GrantedLimits {
    if (this.#opts.grant) return this.#opts.grant(requested, user, now);
    const p = this.policy;
    const pick = (want: number, max: number) => (want > 0 ? Math.min(want, max) : max);
    return {
      maxRequests: Math.min(pick(requested.maxRequests, p.maxRequestsPerSession), 0xffff_ffff),
      expiresAt: now + pick(requested.maxAgeSeconds * 1000, p.sessionLifetimeMs),
      maxBytes: pick(requested.maxBytes, p.maxBytesPerSession),
      idleTimeoutSeconds: Math.floor(p.idleTimeoutMs / 1000),
    };
  }

  /** Reads the first message of an envelope body. Never throws: failures come back as refusals. */
  async open(body: ByteSource): Promise<InnerEnvelope | InnerRefused> {
    const reader = new ByteReader(body);
    let header: EnvelopeHeader;
    try {
      header = await this.#readHeader(reader, true);
    } catch (error) {
      await reader.cancel();
      return { kind: 'refused', refusal: refusalFor(error, 'request'), error };
    }
    if (header.type === MessageTypes.exchange) {
      const now = this.#now();
      let session: InnerSession;
      let confirm: Uint8Array;
      try {
        const accepted = await acceptExchange(header, reader, {
          keys: this.#opts.keys,
          clients: this.#opts.clients,
          replay: this.#replay,
          now,
          ...(this.#startedAt !== undefined ? { startedAt: this.#startedAt } : {}),
          incarnation: this.incarnation,
          maxSkewMs: this.policy.maxSkewMs,
          grant: (req, user) => this.#grant(req, user, now),
          ...(this.#opts.aead ? { aead: this.#opts.aead } : {}),
          ...(this.#opts.kdf ? { kdf: this.#opts.kdf } : {}),
          ...(this.#opts.rsa ? { rsa: this.#opts.rsa } : {}),
        });
        if (this.sessions.has(toHex(accepted.keys.sessionId))) throw new MalformedError('session ID already in use');
        session = new InnerSession({ ...accepted, now, windowSize: this.policy.replayWindow });
        confirm = accepted.confirm;
        this.sessions.add(session);
      } catch (error) {
        await reader.cancel();
        return { kind: 'refused', refusal: refusalFor(error, 'exchange'), error };
      }
      return {
        kind: 'envelope',
        confirm,
        session,
        readRequest: async () => {
          const next = await reader.readExactOrEnd(ENVELOPE_HEADER_LENGTH);
          if (next === null) return null;
          return this.#request(reader, () => {
            const h = parseEnvelopeHeader(next);
            if (h.type !== MessageTypes.request || toHex(h.sessionId) !== session.sessionIdHex) throw new MalformedError('an exchange may only be followed by a request on its session');
            return h;
          });
        },
      };
    }
    return { kind: 'envelope', confirm: null, session: null, readRequest: () => this.#request(reader, () => header) };
  }

  async #readHeader(reader: ByteReader, first: boolean): Promise<EnvelopeHeader> {
    const bytes = await reader.readExactOrEnd(ENVELOPE_HEADER_LENGTH);
    if (bytes === null) throw new MalformedError(first ? 'empty envelope' : 'missing message');
    const h = parseEnvelopeHeader(bytes);
    if (h.type !== MessageTypes.exchange && h.type !== MessageTypes.request) throw new MalformedError('the inner accepts only exchange and request messages');
    return h;
  }

  /** Session, limits, replay window and age of a REQUEST header: what must hold before any record is opened. */
  #admit(header: EnvelopeHeader, now: number): { session: InnerSession; seq: number; open: OpenOptions } {
    const idHex = toHex(header.sessionId);
    const session = this.sessions.get(idHex);
    if (!session) throw new UnknownSessionError();
    const exhausted = session.exhaustedReason(now);
    if (exhausted) {
      this.sessions.delete(idHex);
      throw new SessionLimitError(exhausted);
    }
    const seq = header.sequence;
    const window = session.window;
    const pre = window.check(seq);
    if (pre !== 'ok') throw new ReplayError(pre === 'replay' ? 'this request was seen before' : 'this request is older than the replay window');
    const sentAt = header.timestamp + session.clockOffset;
    if (sentAt < now - this.policy.maxRequestAgeMs) throw new StaleError('the request is too old');
    if (sentAt > now + this.policy.maxSkewMs) throw new StaleError('the request is dated in the future');
    return {
      session,
      seq,
      open: {
        maxRecordPlaintext: this.policy.maxRecordPlaintext,
        // RFC 4303 §3.4.3: the window moves only after the record authenticated.
        onFirstRecord: () => window.mark(seq),
      },
    };
  }

  #responder(s: InnerSession, seq: number): Pick<InnerRequest, 'respond' | 'respondAtHand'> {
    const recordSize = this.policy.recordSize;
    const header = () => encodeEnvelopeHeader(MessageTypes.response, s.keys.sessionId, seq, this.#now());
    return {
      respond: (head, respBody) => sealResponse(s.keys.s2c, header(), head, respBody, { recordSize }),
      respondAtHand: async (head, respBody) => {
        const pt = singleRecordPlaintext(encodeResponseHead(head), respBody, recordSize);
        return pt ? sealSingleRecord(s.keys.s2c, header(), pt) : null;
      },
    };
  }

  async #request(reader: ByteReader, headerOf: () => EnvelopeHeader): Promise<InnerRequest | InnerRefused> {
    try {
      const header = headerOf();
      const now = this.#now();
      const { session: s, seq, open } = this.#admit(header, now);
      const opened = await openRequest(s.keys.c2s, header, reader, open);
      s.requests += 1;
      s.lastUsedAt = now;
      return { kind: 'request', session: s, sequence: seq, head: opened.head, body: checkedEnd(opened.body, reader), bodyAtHand: null, ...this.#responder(s, seq) };
    } catch (error) {
      await reader.cancel();
      return { kind: 'refused', refusal: refusalFor(error, 'request'), error };
    }
  }

  /**
   * The fast path for an envelope read whole (a small POST body): a lone REQUEST is opened in
   * memory, with exactly the checks of the streaming path. An envelope that starts with an
   * EXCHANGE takes the streaming path (its cost is the RSA work, not the plumbing).
   */
  async openAtHand(envelope: Uint8Array): Promise<InnerEnvelope | InnerRefused> {
    if (envelope.length < ENVELOPE_HEADER_LENGTH || envelope[4] !== MessageTypes.request) return this.open([envelope]);
    let header: EnvelopeHeader;
    try {
      header = parseEnvelopeHeader(envelope.subarray(0, ENVELOPE_HEADER_LENGTH));
    } catch (error) {
      return { kind: 'refused', refusal: refusalFor(error, 'request'), error };
    }
    const request = async (): Promise<InnerRequest | InnerRefused> => {
      try {
        const now = this.#now();
        const { session: s, seq, open } = this.#admit(header, now);
        const opened = await openRequestAtHand(s.keys.c2s, header, envelope.subarray(ENVELOPE_HEADER_LENGTH), open);
        s.requests += 1;
        s.lastUsedAt = now;
        return { kind: 'request', session: s, sequence: seq, head: opened.head, body: new BytesOnce(opened.body), bodyAtHand: opened.body, ...this.#responder(s, seq) };
      } catch (error) {
        return { kind: 'refused', refusal: refusalFor(error, 'request'), error };
      }
    };
    return { kind: 'envelope', confirm: null, session: null, readRequest: request };
  }
}

/** A body at hand as a stream, for callers that stream (the generator is made only if iterated; a class, so no closure per request). */
class BytesOnce implements AsyncIterable<Uint8Array> {
  readonly #bytes: Uint8Array;
  constructor(bytes: Uint8Array) {
    this.#bytes = bytes;
  }
  async *[Symbol.asyncIterator](): AsyncGenerator<Uint8Array> {
    if (this.#bytes.length > 0) yield this.#bytes;
  }
}

/** The request is the last message of its envelope: trailing octets are an error, not ignored. */
async function* checkedEnd(body: AsyncIterable<Uint8Array>, reader: ByteReader): AsyncGenerator<Uint8Array> {
  yield* body;
  if (!(await reader.atEnd())) throw new MalformedError('trailing octets after the request');
}

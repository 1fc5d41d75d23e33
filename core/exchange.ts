/**
 * Key exchange (patent S103/S104, embodiment 2: a fresh temporary key wrapped with the
 * inner's public key; claim 3: the user is authenticated by a key-pair signature).
 * Byte layouts: docs/PROTOCOL.md §3.
 *
 *   EXCHANGE  = Header(type 1) ‖ Inner Key ID (32) ‖ Wrapped Length (16) ‖ Wrapped Secret
 *               ‖ one final record under xch keys holding ExchangePayload
 *   ExchangePayload = Client Key ID (32) ‖ User Name Length (8) ‖ User Name
 *               ‖ Inner Key ID (32) ‖ Requested Limits (16) ‖ Signature Length (16) ‖ Signature
 *   CONFIRM   = Header(type 2) ‖ one final record under cfm keys holding
 *               Inner Incarnation (64) ‖ Granted Limits (24) ‖ Signature Length (16) ‖ Signature
 *
 * Costs: outer 1 RSA private op (PSS sign) + OAEP encrypt + PSS verify; inner 2 private ops
 * (OAEP decrypt, PSS sign) + PSS verify.
 */
import type { ByteReader } from './bytereader.ts';
import { concatBytes, readU16, readU32, readU64, textDecoder, timingSafeEqual, toHex, utf8, writeU16, writeU32, writeU64 } from './bytes.ts';
import { randomBytes, signatureInput, SUITE_V1, webCryptoRsa, type PrivateKeyHandle, type PublicKeyHandle, type RsaBackend } from './crypto.ts';
import { MalformedError, ReplayError, SignatureError, StaleError, UnknownKeyError, UnknownUserError } from './errors.ts';
import { webCryptoAead, type AeadBackend } from './aead.ts';
import { webCryptoKdf, type KdfBackend } from './kdf.ts';
import { deriveDirection } from './keyschedule.ts';
import { RecordOpener, recordPlaintext, RecordSealer, type DirectionState } from './records.ts';
import { encodeEnvelopeHeader, MessageTypes, SESSION_ID_LENGTH, type EnvelopeHeader } from './wire.ts';

const KEY_ID_LENGTH = 32;
/** Largest RSA modulus we accept is 4096 bits: a wrapped secret is at most 512 octets. */
const MAX_WRAPPED = 512;
const MAX_EXCHANGE_PAYLOAD = 4096;
const MAX_CONFIRM_PAYLOAD = 4096;
const MAX_USER_NAME = 255;

/** What the outer asks for; 0 means "no preference". Policy hints only: the inner grants. */
export interface RequestedLimits {
  readonly maxRequests: number;
  readonly maxAgeSeconds: number;
  readonly maxBytes: number;
}

/** What the inner grants, signed in the confirmation; both sides enforce it. */
export interface GrantedLimits {
  readonly maxRequests: number;
  /** ms since the epoch, inner clock. */
  readonly expiresAt: number;
  readonly maxBytes: number;
  readonly idleTimeoutSeconds: number;
}

export const NO_LIMITS_REQUESTED: RequestedLimits = { maxRequests: 0, maxAgeSeconds: 0, maxBytes: 0 };

/** The two data directions of an established session plus what identifies it. */
export interface SessionKeys {
  readonly sessionId: Uint8Array;
  readonly c2s: DirectionState;
  readonly s2c: DirectionState;
}

function encodeRequestedLimits(l: RequestedLimits): Uint8Array {
  const b = new Uint8Array(16);
  writeU32(b, 0, l.maxRequests);
  writeU32(b, 4, l.maxAgeSeconds);
  writeU64(b, 8, l.maxBytes);
  return b;
}

function encodeGrantedLimits(l: GrantedLimits): Uint8Array {
  const b = new Uint8Array(24);
  writeU32(b, 0, l.maxRequests);
  writeU64(b, 4, l.expiresAt);
  writeU64(b, 12, l.maxBytes);
  writeU32(b, 20, l.idleTimeoutSeconds);
  return b;
}

function checkU32(n: number, what: string): void {
  if (!Number.isInteger(n) || n < 0 || n > 0xffff_ffff) throw new RangeError(`${what} out of range`);
}

/** Reads exactly one final record of a key message and returns its plaintext. */
async function openSingleRecord(dir: DirectionState, header: EnvelopeHeader, reader: ByteReader, maxPlaintext: number): Promise<Uint8Array> {
  const opener = new RecordOpener(dir, header, reader, maxPlaintext);
  const rec = await opener.next();
  if (!rec || !rec.final) throw new MalformedError('key messages carry exactly one final record');
  return recordPlaintext(rec);
}

// ---------------------------------------------------------------------------------------
// Outer side
// ---------------------------------------------------------------------------------------

export interface ExchangeUser {
  readonly name: string;
  readonly key: PrivateKeyHandle;
}

/** An exchange the outer has sent and whose confirmation it awaits. */
export interface PendingExchange {
  readonly sessionId: Uint8Array;
  /** The EXCHANGE message octets to send. */
  readonly message: Uint8Array;
  readonly keys: SessionKeys;
  readonly timestamp: number;
  readonly inner: PublicKeyHandle;
  /** Internal: PRK and TH1 for the confirmation. */
  readonly prk: Uint8Array;
  readonly th1: Uint8Array;
  readonly aead: AeadBackend;
  /** The hash/HKDF implementation (default WebCrypto). */
  readonly kdf?: KdfBackend;
  /** The RSA implementation that verifies the confirmation (default WebCrypto). */
  readonly rsa?: RsaBackend;
  /** Internal: the cfm direction, derived with c2s/s2c so finishExchange need not wait for it. */
  readonly cfm?: DirectionState;
}

export interface StartExchangeOptions {
  readonly user: ExchangeUser;
  readonly inner: PublicKeyHandle;
  readonly now: number;
  readonly requested?: RequestedLimits;
  /** Deterministic test vectors only: never set these in production. */
  readonly sessionId?: Uint8Array;
  readonly secret?: Uint8Array;
  /** The AEAD implementation for this session's records (default WebCrypto). */
  readonly aead?: AeadBackend;
  /** The SHA-256/HKDF implementation for transcript hashes and the key schedule (default WebCrypto). */
  readonly kdf?: KdfBackend;
  /** The RSA-OAEP/RSA-PSS implementation for wrapping, signing and verifying (default WebCrypto). */
  readonly rsa?: RsaBackend;
}

/** S103: make a fresh session secret, wrap it to the inner, sign the transcript as the user. */
export async function startExchange(opts: StartExchangeOptions): Promise<PendingExchange> {
  const nameBytes = utf8(opts.user.name);
  if (nameBytes.length === 0 || nameBytes.length > MAX_USER_NAME) throw new RangeError('user name must be 1..255 octets of UTF-8');
  const requested = opts.requested ?? NO_LIMITS_REQUESTED;
  checkU32(requested.maxRequests, 'maxRequests');
  checkU32(requested.maxAgeSeconds, 'maxAgeSeconds');
  const sessionId = opts.sessionId ?? randomBytes(SESSION_ID_LENGTH);
  const secret = opts.secret ?? randomBytes(SUITE_V1.secretBytes);
  const header = encodeEnvelopeHeader(MessageTypes.exchange, sessionId, 0, opts.now);
  const innerKeyId = opts.inner.keyId;
  const aead = opts.aead ?? webCryptoAead;
  const kdf = opts.kdf ?? webCryptoKdf;
  const rsa = opts.rsa ?? webCryptoRsa;
  const label = signatureInput('wrap', header.bytes, innerKeyId);
  // The PRK needs only the session ID and S: extract it while RSA-OAEP runs.
  let wrapped: Uint8Array;
  let prk: Uint8Array;
  try {
    [wrapped, prk] = await Promise.all([rsa.oaepWrap(opts.inner, secret, label), kdf.hkdfExtract(sessionId, secret)]);
  } finally {
    secret.fill(0);
  }
  const wrappedLen = new Uint8Array(2);
  writeU16(wrappedLen, 0, wrapped.length);
  const clear = concatBytes(header.bytes, innerKeyId, wrappedLen, wrapped);
  const th0 = await kdf.sha256(clear);

  const limitsBytes = encodeRequestedLimits(requested);
  const clientKeyId = opts.user.key.keyId;
  const nameField = concatBytes(new Uint8Array([nameBytes.length]), nameBytes);
  // The xch keys need only PRK and TH0: derive them while the user's RSA-PSS signature is made.
  const [signature, xch] = await Promise.all([
    rsa.pssSign(opts.user.key, signatureInput('exchange', th0, clientKeyId, nameField, innerKeyId, limitsBytes)),
    deriveDirection(prk, 'xch', th0, aead, kdf),
  ]);
  const sigLen = new Uint8Array(2);
  writeU16(sigLen, 0, signature.length);
  const payload = concatBytes(clientKeyId, nameField, innerKeyId, limitsBytes, sigLen, signature);

  const records = await new RecordSealer(xch, header).seal(payload, true);
  const message = concatBytes(clear, ...records);
  const th1 = await kdf.sha256(message);
  const [c2s, s2c, cfm] = await Promise.all([
    deriveDirection(prk, 'c2s', th1, aead, kdf),
    deriveDirection(prk, 's2c', th1, aead, kdf),
    deriveDirection(prk, 'cfm', th1, aead, kdf),
  ]);
  return { sessionId: header.sessionId, message, keys: { sessionId: header.sessionId, c2s, s2c }, timestamp: opts.now, inner: opts.inner, prk, th1, aead, kdf, rsa, cfm };
}

export interface ExchangeConfirmation {
  readonly incarnation: number;
  readonly granted: GrantedLimits;
  /** Inner clock at confirmation (ms). */
  readonly innerTime: number;
}

/**
 * S104 at the outer: the confirmation must open under the cfm keys (proving the inner
 * unwrapped S) and carry the addressed inner's signature over TH1.
 */
export async function finishExchange(pending: PendingExchange, header: EnvelopeHeader, reader: ByteReader): Promise<ExchangeConfirmation> {
  if (header.type !== MessageTypes.confirm) throw new MalformedError('expected an exchange confirmation');
  if (!timingSafeEqual(header.sessionId, pending.sessionId)) throw new MalformedError('confirmation is for another session');
  const cfm = pending.cfm ?? (await deriveDirection(pending.prk, 'cfm', pending.th1, pending.aead, pending.kdf));
  const body = await openSingleRecord(cfm, header, reader, MAX_CONFIRM_PAYLOAD);
  if (body.length < 8 + 24 + 2) throw new MalformedError('confirmation too short');
  const incarnation = readU64(body, 0);
  const granted: GrantedLimits = {
    maxRequests: readU32(body, 8),
    expiresAt: readU64(body, 12),
    maxBytes: readU64(body, 20),
    idleTimeoutSeconds: readU32(body, 28),
  };
  const sigLen = readU16(body, 32);
  if (body.length !== 34 + sigLen) throw new MalformedError('confirmation length mismatch');
  if (!Number.isFinite(incarnation) || !Number.isFinite(granted.expiresAt) || !Number.isFinite(granted.maxBytes)) throw new MalformedError('confirmation field out of range');
  const signed = signatureInput('confirm', pending.th1, header.bytes, body.subarray(0, 32));
  if (!(await (pending.rsa ?? webCryptoRsa).pssVerify(pending.inner, body.subarray(34), signed))) throw new SignatureError('the inner server did not sign this confirmation');
  return { incarnation, granted, innerTime: header.timestamp };
}

// ---------------------------------------------------------------------------------------
// Inner side
// ---------------------------------------------------------------------------------------

/** The inner's private keys by key ID (hex); more than one during a key rotation overlap. */
export interface InnerKeyRing {
  get(keyIdHex: string): PrivateKeyHandle | undefined;
}

/** Registered users' public keys (the inner's view of the client list). */
export interface ClientDirectory {
  /** The key registered for `user` whose key ID is `clientKeyIdHex`, or undefined. */
  lookup(user: string, clientKeyIdHex: string): PublicKeyHandle | undefined | Promise<PublicKeyHandle | undefined>;
}

/** Remembers exchanges already accepted (RFC 9458 §6.5.1, RFC 8446 §8). */
export interface ExchangeReplayGuard {
  /** Returns false when `id` (SHA-256 of the Wrapped Secret, 32 octets) was seen before; otherwise remembers it until `expiresAt` and returns true. */
  remember(id: Uint8Array, expiresAt: number, now: number): boolean;
}

/** In-memory guard with the RFC 8446 §8.2 start-up rule: exchanges older than the process are refused. */
export class MemoryExchangeReplayGuard implements ExchangeReplayGuard {
  readonly #seen = new Map<string, number>();
  #lastSweep = 0;
  remember(id: Uint8Array, expiresAt: number, now: number): boolean {
    const key = toHex(id);
    if (now - this.#lastSweep > 10_000) {
      for (const [k, exp] of this.#seen) if (exp <= now) this.#seen.delete(k);
      this.#lastSweep = now;
    }
    const exp = this.#seen.get(key);
    if (exp !== undefined && exp > now) return false;
    this.#seen.set(key, expiresAt);
    return true;
  }
}

export interface AcceptExchangeContext {
  readonly keys: InnerKeyRing;
  readonly clients: ClientDirectory;
  readonly replay: ExchangeReplayGuard;
  readonly now: number;
  /** Start time (ms) of this inner process: exchanges stamped before it are refused unless the guard is persistent. */
  readonly startedAt?: number;
  readonly incarnation: number;
  /** Maximum |inner clock − exchange timestamp| (default 120 s). */
  readonly maxSkewMs?: number;
  /** Turns the outer's request into what this inner grants. */
  readonly grant: (requested: RequestedLimits, user: string) => GrantedLimits;
  /** The AEAD implementation for this session's records (default WebCrypto). */
  readonly aead?: AeadBackend;
  /** The SHA-256/HKDF implementation for transcript hashes and the key schedule (default WebCrypto). */
  readonly kdf?: KdfBackend;
  /** The RSA-OAEP/RSA-PSS implementation for unwrapping, verifying and signing (default WebCrypto). */
  readonly rsa?: RsaBackend;
}

export interface AcceptedExchange {
  readonly user: string;
  readonly clientKeyIdHex: string;
  readonly innerKeyIdHex: string;
  readonly keys: SessionKeys;
  readonly requested: RequestedLimits;
  readonly granted: GrantedLimits;
  /** inner_now − exchange timestamp, for request-age checks on this session. */
  readonly clockOffset: number;
  /** The EXCHANGE_CONFIRM octets to send back. */
  readonly confirm: Uint8Array;
}

export const DEFAULT_MAX_SKEW_MS = 120_000;

/**
 * S103/S104 at the inner: unwrap S, open and check the payload, verify the user's signature,
 * refuse replays, derive the data keys and sign the confirmation. Every failure is an
 * SwsError whose code says which check failed.
 */
export async function acceptExchange(header: EnvelopeHeader, source: ByteReader, ctx: AcceptExchangeContext): Promise<AcceptedExchange> {
  if (header.type !== MessageTypes.exchange) throw new MalformedError('expected an exchange message');
  const maxSkew = ctx.maxSkewMs ?? DEFAULT_MAX_SKEW_MS;
  if (Math.abs(ctx.now - header.timestamp) > maxSkew) throw new StaleError('the exchange timestamp is outside the accepted clock skew; check both clocks');
  if (ctx.startedAt !== undefined && header.timestamp < ctx.startedAt) throw new StaleError('the exchange predates this inner process');

  const reader = source;
  reader.startRecording();
  const innerKeyId = await reader.readExact(KEY_ID_LENGTH);
  const innerKeyIdHex = toHex(innerKeyId);
  const innerKey = ctx.keys.get(innerKeyIdHex);
  if (!innerKey) throw new UnknownKeyError('the exchange names an inner key this server does not hold; refresh the inner key at the outer');
  const wrappedLen = readU16(await reader.readExact(2), 0);
  if (wrappedLen === 0 || wrappedLen > MAX_WRAPPED || wrappedLen !== innerKey.bits / 8) throw new MalformedError('wrapped secret has the wrong length for this key');
  const wrapped = await reader.readExact(wrappedLen);
  const aead = ctx.aead ?? webCryptoAead;
  const kdf = ctx.kdf ?? webCryptoKdf;
  const rsa = ctx.rsa ?? webCryptoRsa;
  // TH0 hashes public octets only: compute it while RSA-OAEP decrypts.
  const [th0, secret] = await Promise.all([
    kdf.sha256(concatBytes(header.bytes, ...reader.recorded())),
    rsa.oaepUnwrap(innerKey, wrapped, signatureInput('wrap', header.bytes, innerKeyId)),
  ]);
  let prk: Uint8Array;
  try {
    if (secret.length !== SUITE_V1.secretBytes) throw new MalformedError('session secret has the wrong length');
    prk = await kdf.hkdfExtract(header.sessionId, secret);
  } finally {
    secret.fill(0);
  }
  const xch = await deriveDirection(prk, 'xch', th0, aead, kdf);
  const payload = await openSingleRecord(xch, header, reader, MAX_EXCHANGE_PAYLOAD);

  // ExchangePayload
  let off = 0;
  const need = (n: number) => {
    if (off + n > payload.length) throw new MalformedError('exchange payload too short');
    const v = payload.subarray(off, off + n);
    off += n;
    return v;
  };
  const clientKeyId = need(KEY_ID_LENGTH);
  const nameLen = need(1)[0]!;
  if (nameLen === 0) throw new MalformedError('empty user name');
  const nameBytes = need(nameLen);
  let user: string;
  try {
    user = textDecoder.decode(nameBytes);
  } catch {
    throw new MalformedError('user name is not valid UTF-8');
  }
  const innerKeyIdInside = need(KEY_ID_LENGTH);
  const limitsBytes = need(16);
  const sigLen = readU16(need(2), 0);
  const signature = need(sigLen);
  if (off !== payload.length) throw new MalformedError('exchange payload has trailing octets');
  if (!timingSafeEqual(innerKeyIdInside, innerKeyId)) throw new MalformedError('inner key ID mismatch inside the exchange');

  const clientKeyIdHex = toHex(clientKeyId);
  const clientKey = await ctx.clients.lookup(user, clientKeyIdHex);
  if (!clientKey) throw new UnknownUserError('the user is not registered at this inner with that key');
  if (!timingSafeEqual(clientKey.keyId, clientKeyId)) throw new UnknownUserError('the user is not registered at this inner with that key');
  const signed = signatureInput('exchange', th0, clientKeyId, concatBytes(new Uint8Array([nameLen]), nameBytes), innerKeyId, limitsBytes);
  // The replay ID, TH1 and the session directions depend on nothing the signature decides:
  // compute them while RSA-PSS verifies, and use them only if it does. The replay cache is
  // still written only for an authenticated exchange (no cache flooding by strangers).
  const th1Input = concatBytes(header.bytes, ...reader.stopRecording());
  const sessionDirections = (async () => {
    const th1 = await kdf.sha256(th1Input);
    const [c2s, s2c, cfm] = await Promise.all([
      deriveDirection(prk, 'c2s', th1, aead, kdf),
      deriveDirection(prk, 's2c', th1, aead, kdf),
      deriveDirection(prk, 'cfm', th1, aead, kdf),
    ]);
    return { th1, c2s, s2c, cfm };
  })();
  let verified: boolean;
  let replayHash: Uint8Array;
  let dirs: Awaited<typeof sessionDirections>;
  try {
    [verified, replayHash, dirs] = await Promise.all([rsa.pssVerify(clientKey, signature, signed), kdf.sha256(wrapped), sessionDirections]);
  } finally {
    prk.fill(0);
  }
  if (!verified) throw new SignatureError('the user signature on the exchange does not verify');

  if (!ctx.replay.remember(replayHash, header.timestamp + 2 * maxSkew, ctx.now)) throw new ReplayError('this exchange was seen before');

  const requested: RequestedLimits = { maxRequests: readU32(limitsBytes, 0), maxAgeSeconds: readU32(limitsBytes, 4), maxBytes: readU64(limitsBytes, 8) };
  const granted = ctx.grant(requested, user);
  const { th1, c2s, s2c, cfm } = dirs;

  const confirmHeader = encodeEnvelopeHeader(MessageTypes.confirm, header.sessionId, 0, ctx.now);
  const fields = new Uint8Array(32);
  writeU64(fields, 0, ctx.incarnation);
  fields.set(encodeGrantedLimits(granted), 8);
  const confirmSig = await rsa.pssSign(innerKey, signatureInput('confirm', th1, confirmHeader.bytes, fields));
  const sigLenOut = new Uint8Array(2);
  writeU16(sigLenOut, 0, confirmSig.length);
  const records = await new RecordSealer(cfm, confirmHeader).seal(concatBytes(fields, sigLenOut, confirmSig), true);
  const confirm = concatBytes(confirmHeader.bytes, ...records);
  return {
    user,
    clientKeyIdHex,
    innerKeyIdHex,
    keys: { sessionId: header.sessionId, c2s, s2c },
    requested,
    granted,
    clockOffset: ctx.now - header.timestamp,
    confirm,
  };
}


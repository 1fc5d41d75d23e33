/**
 * Builds the text of test/vectors/sws-v1.json from fixed inputs only, so every run makes
 * the same octets (core/vectors.test.ts checks the committed file equals this output):
 *
 * - the two RSA-2048 keys are TEST-ONLY fixtures in this directory
 *   (test-only-inner-rsa2048.pkcs8.pem, test-only-user-rsa2048.pkcs8.pem): public, never
 *   use them for anything else;
 * - Session ID, S, timestamps, limits, heads and bodies are constants below;
 * - the RSA-OAEP seed and the two RSA-PSS salts, which WebCrypto would draw at random, come
 *   from a fixed SHA-256 counter stream (deterministic-rsa.ts) and are recorded in the file.
 *
 * Everything else is the production code path (startExchange, acceptExchange,
 * finishExchange, sealRequest, sealResponse) with its real WebCrypto operations.
 */
import { readFileSync } from 'node:fs';
import { createPrivateKey, createPublicKey } from 'node:crypto';
import {
  acceptExchange,
  ByteReader,
  collect,
  deriveKeyIv,
  directionFrom,
  encodeEnvelopeHeader,
  encodeRequestHead,
  encodeResponseHead,
  extractSessionPrk,
  fromHex,
  importPrivateKey,
  importPublicKey,
  MemoryExchangeReplayGuard,
  MessageTypes,
  parseEnvelopeHeader,
  RecordOpener,
  recordPlaintext,
  sealRequest,
  sealResponse,
  sha256,
  startExchange,
  toHex,
  utf8,
  finishExchange,
  type DirectionState,
  type EnvelopeHeader,
  type RequestHead,
  type ResponseHead,
} from './vector-support.ts';
import { FixedRandom, withFixedRandomness } from './deterministic-rsa.ts';

export const INNER_KEY_FILE = 'test-only-inner-rsa2048.pkcs8.pem';
export const USER_KEY_FILE = 'test-only-user-rsa2048.pkcs8.pem';
export const VECTOR_FILE = new URL('./sws-v1.json', import.meta.url);
const DRBG_LABEL = 'sws/1 test vectors: fixed randomness';

/** The PEM block of a fixture file, without its explanatory text. */
export function readTestKeyPem(file: string): string {
  const text = readFileSync(new URL(`./${file}`, import.meta.url), 'utf8');
  const m = /-----BEGIN PRIVATE KEY-----[\s\S]*?-----END PRIVATE KEY-----\n/.exec(text);
  if (!m) throw new Error(`${file} holds no PKCS #8 PEM block`);
  return m[0];
}

/** Each record of a sealed message: whether it is final and its plaintext (what the AEAD sealed). */
async function recordsOf(dir: DirectionState, message: Uint8Array): Promise<{ final: boolean; plaintext: string }[]> {
  const header: EnvelopeHeader = parseEnvelopeHeader(message.subarray(0, 38));
  const opener = new RecordOpener(dir, header, new ByteReader([message.subarray(38)]));
  const out: { final: boolean; plaintext: string }[] = [];
  for (let r = await opener.next(); r !== null; r = await opener.next()) out.push({ final: r.final, plaintext: toHex(recordPlaintext(r)) });
  return out;
}

export async function buildVectors(): Promise<string> {
  const innerPem = readTestKeyPem(INNER_KEY_FILE);
  const userPem = readTestKeyPem(USER_KEY_FILE);
  const inner = await importPrivateKey(innerPem);
  const user = await importPrivateKey(userPem);
  const innerPublic = await importPublicKey(inner.spki);
  const sessionId = fromHex('000102030405060708090a0b0c0d0e0f');
  const secret = fromHex('a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebf');
  const t0 = 1_767_225_600_000; // 2026-01-01T00:00:00Z
  const requested = { maxRequests: 1000, maxAgeSeconds: 3600, maxBytes: 1 << 30 };
  const granted = { maxRequests: 1000, expiresAt: t0 + 3_600_000, maxBytes: 1 << 30, idleTimeoutSeconds: 600 };

  const random = new FixedRandom(DRBG_LABEL);
  const fixedKeys = [
    { cryptoKey: innerPublic.encryptKey, keyObject: createPublicKey(innerPem), purpose: 'oaepSeed' },
    { cryptoKey: user.signKey, keyObject: createPrivateKey(userPem), purpose: 'exchangePssSalt' },
    { cryptoKey: inner.signKey, keyObject: createPrivateKey(innerPem), purpose: 'confirmPssSalt' },
  ];
  const { pending, accepted } = await withFixedRandomness(random, fixedKeys, async () => {
    const pending = await startExchange({ user: { name: 'alice', key: user }, inner: innerPublic, now: t0, requested, sessionId, secret: secret.slice() });
    const accepted = await acceptExchange(parseEnvelopeHeader(pending.message.subarray(0, 38)), new ByteReader([pending.message.subarray(38)]), {
      keys: { get: (id) => (id === toHex(inner.keyId) ? inner : undefined) },
      clients: { lookup: (name, kid) => (name === 'alice' && kid === toHex(user.keyId) ? user.publicKey : undefined) },
      replay: new MemoryExchangeReplayGuard(),
      now: t0 + 5,
      incarnation: t0 - 60_000,
      grant: () => granted,
    });
    return { pending, accepted };
  });
  if (random.draws.map((d) => d.purpose).join() !== 'oaepSeed,exchangePssSalt,confirmPssSalt') throw new Error('unexpected RSA operations while building the vectors');
  // The outer's real check of the confirmation (WebCrypto PSS verify of the fixed-salt signature).
  await finishExchange(pending, parseEnvelopeHeader(accepted.confirm.subarray(0, 38)), new ByteReader([accepted.confirm.subarray(38)]));

  const wrappedLen = inner.bits / 8;
  const th0 = await sha256(pending.message.subarray(0, 38 + 32 + 2 + wrappedLen));
  const th1 = await sha256(pending.message);
  const prk = await extractSessionPrk(sessionId, secret);
  const keys: Record<string, { key: string; iv: string }> = {};
  for (const name of ['xch', 'cfm', 'c2s', 's2c'] as const) {
    const d = await deriveKeyIv(prk, name, name === 'xch' ? th0 : th1);
    keys[name] = { key: toHex(d.key), iv: toHex(d.iv) };
  }
  const fresh = async (name: 'c2s' | 's2c') => directionFrom(await deriveKeyIv(prk, name, th1));

  async function pair(sequence: number, reqAt: number, reqHead: RequestHead, reqBody: Uint8Array | null, respHead: ResponseHead, respBody: Uint8Array | null, recordSize?: number) {
    const opts = recordSize !== undefined ? { recordSize } : undefined;
    const reqHeader = encodeEnvelopeHeader(MessageTypes.request, sessionId, sequence, reqAt);
    const reqWire = await collect(sealRequest(accepted.keys.c2s, reqHeader, reqHead, reqBody, opts));
    const respHeader = encodeEnvelopeHeader(MessageTypes.response, sessionId, sequence, reqAt + 10);
    const respWire = await collect(sealResponse(accepted.keys.s2c, respHeader, respHead, respBody, opts));
    return {
      request: {
        sequence,
        timestamp: reqAt,
        head: reqHead,
        body: toHex(reqBody ?? new Uint8Array(0)),
        bhttpHead: toHex(encodeRequestHead(reqHead)),
        records: await recordsOf(await fresh('c2s'), reqWire),
        message: toHex(reqWire),
      },
      response: {
        sequence,
        timestamp: reqAt + 10,
        head: respHead,
        body: toHex(respBody ?? new Uint8Array(0)),
        bhttpHead: toHex(encodeResponseHead(respHead)),
        records: await recordsOf(await fresh('s2c'), respWire),
        message: toHex(respWire),
      },
    };
  }

  // Sequence 1: head and body in one record each way.
  const one = await pair(
    1,
    t0 + 10,
    { method: 'POST', scheme: 'https', authority: 'intranet.example', path: '/docs/a?x=1', headers: [['content-type', 'text/plain'], ['accept', '*/*']] },
    utf8('hello, inner'),
    { status: 200, headers: [['content-type', 'text/plain'], ['cache-control', 'max-age=60']] },
    utf8('hello, outer'),
  );
  // Sequence 2: 64-octet records, so head, body chunks and end travel in several records.
  const multiBody = (seed: number) => Uint8Array.from({ length: 150 }, (_, i) => (i * 7 + seed) & 0xff);
  const multi = await pair(
    2,
    t0 + 30,
    { method: 'PUT', scheme: 'https', authority: 'intranet.example', path: '/upload/blob.bin', headers: [['content-type', 'application/octet-stream']] },
    multiBody(1),
    { status: 201, headers: [['content-type', 'application/octet-stream'], ['x-echo', 'multi-record']] },
    multiBody(2),
    64,
  );
  // Sequence 3: no body either way.
  const empty = await pair(3, t0 + 50, { method: 'GET', scheme: 'https', authority: 'intranet.example', path: '/empty', headers: [] }, null, { status: 204, headers: [] }, null);

  const draw = (purpose: string) => toHex(random.draws.find((d) => d.purpose === purpose)!.bytes);
  const vectors = {
    description: 'sws/1 test vectors (docs/PROTOCOL.md §12). Keys here are TEST-ONLY and public. Regenerate: npx tsx test/vectors/generate.ts',
    suite: 'RSA-OAEP-256+AES-256-GCM+RSA-PSS-SHA256+HKDF-SHA256',
    innerPrivateKeyFile: `test/vectors/${INNER_KEY_FILE}`,
    userPrivateKeyFile: `test/vectors/${USER_KEY_FILE}`,
    innerPrivateKeyPkcs8Pem: innerPem,
    userPrivateKeyPkcs8Pem: userPem,
    userName: 'alice',
    innerKeyId: toHex(inner.keyId),
    clientKeyId: toHex(user.keyId),
    sessionId: toHex(sessionId),
    secret: toHex(secret),
    exchangeTimestamp: t0,
    requestedLimits: requested,
    randomness: {
      note: 'WebCrypto draws these at random; the generator fixes them (RFC 8017 §7.1.1 seed, §9.1.1 salt) so the file is reproducible',
      oaepSeed: draw('oaepSeed'),
      exchangePssSalt: draw('exchangePssSalt'),
      confirmPssSalt: draw('confirmPssSalt'),
    },
    exchange: toHex(pending.message),
    th0: toHex(th0),
    th1: toHex(th1),
    prk: toHex(prk),
    keys,
    confirm: { incarnation: t0 - 60_000, granted, timestamp: t0 + 5, message: toHex(accepted.confirm) },
    request: one.request,
    response: one.response,
    multiRecord: { recordSize: 64, request: multi.request, response: multi.response },
    emptyBody: { request: empty.request, response: empty.response },
  };
  return JSON.stringify(vectors, null, 2) + '\n';
}

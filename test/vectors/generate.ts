/**
 * Writes test/vectors/sws-v1.json: a complete sws/1 exchange, request and response made
 * from fixed inputs, so a second implementation can check itself (docs/PROTOCOL.md §12).
 *
 * RSA-OAEP and RSA-PSS are randomized, so the EXCHANGE and EXCHANGE_CONFIRM octets are
 * recorded as produced once; everything derived from them (transcript hashes, keys, IVs)
 * and every AES-GCM record (deterministic) can be recomputed exactly.
 *
 * Usage: npx tsx test/vectors/generate.ts   (only when the protocol changes on purpose)
 */
import { writeFileSync } from 'node:fs';
import { generateKeyPairSync } from 'node:crypto';
import {
  acceptExchange,
  ByteReader,
  collect,
  deriveKeyIv,
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
  sealRequest,
  sealResponse,
  sha256,
  startExchange,
  toHex,
  utf8,
  finishExchange,
} from './vector-support.ts';

const innerKeys = generateKeyPairSync('rsa', { modulusLength: 2048 });
const userKeys = generateKeyPairSync('rsa', { modulusLength: 2048 });
const innerPem = innerKeys.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
const userPem = userKeys.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;

const inner = await importPrivateKey(innerPem);
const user = await importPrivateKey(userPem);
const sessionId = fromHex('000102030405060708090a0b0c0d0e0f');
const secret = fromHex('a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebf');
const t0 = 1_767_225_600_000; // 2026-01-01T00:00:00Z
const requested = { maxRequests: 1000, maxAgeSeconds: 3600, maxBytes: 1 << 30 };
const granted = { maxRequests: 1000, expiresAt: t0 + 3_600_000, maxBytes: 1 << 30, idleTimeoutSeconds: 600 };

const pending = await startExchange({ user: { name: 'alice', key: user }, inner: await importPublicKey(inner.spki), now: t0, requested, sessionId, secret: secret.slice() });
const exchangeHex = toHex(pending.message);
const th0 = await sha256(pending.message.subarray(0, 38 + 32 + 2 + 256));
const th1 = await sha256(pending.message);
const prk = await extractSessionPrk(sessionId, secret);
const keys: Record<string, { key: string; iv: string }> = {};
for (const name of ['xch', 'cfm', 'c2s', 's2c'] as const) {
  const d = await deriveKeyIv(prk, name, name === 'xch' ? th0 : th1);
  keys[name] = { key: toHex(d.key), iv: toHex(d.iv) };
}

const accepted = await acceptExchange(parseEnvelopeHeader(pending.message.subarray(0, 38)), new ByteReader([pending.message.subarray(38)]), {
  keys: { get: (id) => (id === toHex(inner.keyId) ? inner : undefined) },
  clients: { lookup: (name) => (name === 'alice' ? user.publicKey : undefined) },
  replay: new MemoryExchangeReplayGuard(),
  now: t0 + 5,
  incarnation: t0 - 60_000,
  grant: () => granted,
});
await finishExchange(pending, parseEnvelopeHeader(accepted.confirm.subarray(0, 38)), new ByteReader([accepted.confirm.subarray(38)]));

const requestHead = { method: 'POST', scheme: 'https', authority: 'intranet.example', path: '/docs/a?x=1', headers: [['content-type', 'text/plain'], ['accept', '*/*']] as [string, string][] };
const requestBody = utf8('hello, inner');
const reqHeader = encodeEnvelopeHeader(MessageTypes.request, sessionId, 1, t0 + 10);
const requestHex = toHex(await collect(sealRequest(accepted.keys.c2s, reqHeader, requestHead, requestBody)));
const responseHead = { status: 200, headers: [['content-type', 'text/plain'], ['cache-control', 'max-age=60']] as [string, string][] };
const responseBody = utf8('hello, outer');
const respHeader = encodeEnvelopeHeader(MessageTypes.response, sessionId, 1, t0 + 20);
const responseHex = toHex(await collect(sealResponse(accepted.keys.s2c, respHeader, responseHead, responseBody)));

const vectors = {
  description: 'sws/1 test vectors (docs/PROTOCOL.md). Keys here are test-only and public.',
  suite: 'RSA-OAEP-256+AES-256-GCM+RSA-PSS-SHA256+HKDF-SHA256',
  innerPrivateKeyPkcs8Pem: innerPem,
  userPrivateKeyPkcs8Pem: userPem,
  userName: 'alice',
  innerKeyId: toHex(inner.keyId),
  clientKeyId: toHex(user.keyId),
  sessionId: toHex(sessionId),
  secret: toHex(secret),
  exchangeTimestamp: t0,
  requestedLimits: requested,
  exchange: exchangeHex,
  th0: toHex(th0),
  th1: toHex(th1),
  prk: toHex(prk),
  keys,
  confirm: { incarnation: t0 - 60_000, granted, timestamp: t0 + 5, message: toHex(accepted.confirm) },
  request: {
    sequence: 1,
    timestamp: t0 + 10,
    head: requestHead,
    body: toHex(requestBody),
    bhttpHead: toHex(encodeRequestHead(requestHead)),
    message: requestHex,
  },
  response: {
    sequence: 1,
    timestamp: t0 + 20,
    head: responseHead,
    body: toHex(responseBody),
    bhttpHead: toHex(encodeResponseHead(responseHead)),
    message: responseHex,
  },
};
writeFileSync(new URL('./sws-v1.json', import.meta.url), JSON.stringify(vectors, null, 2) + '\n');
console.log('wrote test/vectors/sws-v1.json');

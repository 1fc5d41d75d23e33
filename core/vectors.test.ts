/**
 * Checks test/vectors/sws-v1.json: a second implementation runs the same checks against
 * the same file (docs/PROTOCOL.md §12).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import {
  acceptExchange,
  ByteReader,
  deriveKeyIv,
  directionFrom,
  encodeEnvelopeHeader,
  encodeRequestHead,
  encodeResponseHead,
  extractSessionPrk,
  finishExchange,
  fromHex,
  importPrivateKey,
  importPublicKey,
  MemoryExchangeReplayGuard,
  MessageTypes,
  openRequest,
  openResponse,
  parseEnvelopeHeader,
  sealRequest,
  sealResponse,
  sha256,
  toHex,
  webCryptoAead,
  type PendingExchange,
} from './index.ts';
import { collect } from '../test/helpers/protocol.ts';

const v = JSON.parse(readFileSync(new URL('../test/vectors/sws-v1.json', import.meta.url), 'utf8'));

test('vectors: transcript hashes and the HKDF key schedule recompute exactly', async () => {
  const exchange = fromHex(v.exchange);
  const inner = await importPrivateKey(v.innerPrivateKeyPkcs8Pem);
  const wrappedLen = inner.bits / 8;
  assert.equal(toHex(await sha256(exchange.subarray(0, 38 + 32 + 2 + wrappedLen))), v.th0);
  assert.equal(toHex(await sha256(exchange)), v.th1);
  const prk = await extractSessionPrk(fromHex(v.sessionId), fromHex(v.secret));
  assert.equal(toHex(prk), v.prk);
  for (const name of ['xch', 'cfm', 'c2s', 's2c'] as const) {
    const d = await deriveKeyIv(prk, name, fromHex(name === 'xch' ? v.th0 : v.th1));
    assert.deepEqual({ key: toHex(d.key), iv: toHex(d.iv) }, v.keys[name], name);
  }
});

test('vectors: the inner accepts the recorded EXCHANGE and the outer accepts the recorded CONFIRM', async () => {
  const inner = await importPrivateKey(v.innerPrivateKeyPkcs8Pem);
  const user = await importPrivateKey(v.userPrivateKeyPkcs8Pem);
  const exchange = fromHex(v.exchange);
  const accepted = await acceptExchange(parseEnvelopeHeader(exchange.subarray(0, 38)), new ByteReader([exchange.subarray(38)]), {
    keys: { get: (id) => (id === v.innerKeyId ? inner : undefined) },
    clients: { lookup: (name, kid) => (name === v.userName && kid === v.clientKeyId ? user.publicKey : undefined) },
    replay: new MemoryExchangeReplayGuard(),
    now: v.exchangeTimestamp,
    incarnation: v.confirm.incarnation,
    grant: () => v.confirm.granted,
  });
  assert.equal(accepted.user, 'alice');
  assert.deepEqual(accepted.requested, v.requestedLimits);

  // The outer side of the recorded exchange, rebuilt from the vector's secret.
  const prk = await extractSessionPrk(fromHex(v.sessionId), fromHex(v.secret));
  const dirs = await Promise.all(['c2s', 's2c'].map(async (n) => directionFrom(await deriveKeyIv(prk, n as 'c2s', fromHex(v.th1)))));
  const pending: PendingExchange = {
    sessionId: fromHex(v.sessionId),
    message: exchange,
    keys: { sessionId: fromHex(v.sessionId), c2s: dirs[0]!, s2c: dirs[1]! },
    timestamp: v.exchangeTimestamp,
    inner: await importPublicKey(inner.spki),
    prk,
    th1: fromHex(v.th1),
    aead: webCryptoAead,
  };
  const confirm = fromHex(v.confirm.message);
  const c = await finishExchange(pending, parseEnvelopeHeader(confirm.subarray(0, 38)), new ByteReader([confirm.subarray(38)]));
  assert.equal(c.incarnation, v.confirm.incarnation);
  assert.deepEqual(c.granted, v.confirm.granted);
});

test('vectors: REQUEST and RESPONSE octets are reproduced exactly and open to the recorded messages', async () => {
  const prk = await extractSessionPrk(fromHex(v.sessionId), fromHex(v.secret));
  const mk = async (n: 'c2s' | 's2c') => directionFrom(await deriveKeyIv(prk, n, fromHex(v.th1)));
  assert.equal(toHex(encodeRequestHead(v.request.head)), v.request.bhttpHead);
  assert.equal(toHex(encodeResponseHead(v.response.head)), v.response.bhttpHead);
  const sid = fromHex(v.sessionId);
  const reqHeader = encodeEnvelopeHeader(MessageTypes.request, sid, v.request.sequence, v.request.timestamp);
  assert.equal(toHex(await collect(sealRequest(await mk('c2s'), reqHeader, v.request.head, fromHex(v.request.body)))), v.request.message);
  const respHeader = encodeEnvelopeHeader(MessageTypes.response, sid, v.response.sequence, v.response.timestamp);
  assert.equal(toHex(await collect(sealResponse(await mk('s2c'), respHeader, v.response.head, fromHex(v.response.body)))), v.response.message);

  const reqWire = fromHex(v.request.message);
  const req = await openRequest(await mk('c2s'), parseEnvelopeHeader(reqWire.subarray(0, 38)), new ByteReader([reqWire.subarray(38)]));
  assert.deepEqual(req.head, v.request.head);
  assert.equal(toHex(await collect(req.body)), v.request.body);
  const respWire = fromHex(v.response.message);
  const resp = await openResponse(await mk('s2c'), parseEnvelopeHeader(respWire.subarray(0, 38)), new ByteReader([respWire.subarray(38)]));
  assert.equal(resp.head.status, 200);
  assert.deepEqual(resp.head.headers, v.response.head.headers);
  assert.equal(toHex(await collect(resp.body)), v.response.body);
});

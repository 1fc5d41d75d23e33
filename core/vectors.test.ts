/**
 * Checks test/vectors/sws-v1.json: a second implementation runs the same checks against
 * the same file (docs/PROTOCOL.md §12).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createCipheriv, createPublicKey } from 'node:crypto';
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
  signatureInput,
  type PendingExchange,
} from './index.ts';
import { collect } from '../test/helpers/protocol.ts';
import { buildVectors, INNER_KEY_FILE, readTestKeyPem, USER_KEY_FILE } from '../test/vectors/build.ts';
import { oaepEncryptWithSeed } from '../test/vectors/deterministic-rsa.ts';

const vectorText = readFileSync(new URL('../test/vectors/sws-v1.json', import.meta.url), 'utf8');
const v = JSON.parse(vectorText);

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

test('vectors: the generator reproduces the committed file byte for byte from the test-only key fixtures', async () => {
  assert.equal(v.innerPrivateKeyPkcs8Pem, readTestKeyPem(INNER_KEY_FILE));
  assert.equal(v.userPrivateKeyPkcs8Pem, readTestKeyPem(USER_KEY_FILE));
  assert.equal(await buildVectors(), vectorText);
});

test('vectors: the recorded OAEP seed reproduces the wrapped secret in the EXCHANGE (RFC 8017 §7.1.1)', async () => {
  const exchange = fromHex(v.exchange);
  const header = exchange.subarray(0, 38);
  const innerKeyId = exchange.subarray(38, 70);
  const wrappedLen = (exchange[70]! << 8) | exchange[71]!;
  const wrapped = exchange.subarray(72, 72 + wrappedLen);
  const label = signatureInput('wrap', header, innerKeyId);
  const again = oaepEncryptWithSeed(createPublicKey(v.innerPrivateKeyPkcs8Pem), fromHex(v.secret), label, fromHex(v.randomness.oaepSeed));
  assert.equal(toHex(again), toHex(wrapped));
});

/** nonce = iv XOR (uint40 sequence ‖ uint48 index ‖ uint8 flags), written out here rather than taken from the code. */
function nonceFor(iv: Uint8Array, sequence: number, index: number, final: boolean): Buffer {
  const n = Buffer.alloc(12);
  n.writeUIntBE(sequence, 0, 5);
  n.writeUIntBE(index, 5, 6);
  n[11] = final ? 1 : 0;
  for (let i = 0; i < 12; i++) n[i]! ^= iv[i]!;
  return n;
}

/** Rebuilds a message from its recorded record plaintexts with node:crypto AES-256-GCM: the record layer of §5, independently. */
function rebuild(dir: { key: string; iv: string }, type: number, m: { sequence: number; timestamp: number; records: { final: boolean; plaintext: string }[] }): string {
  const header = encodeEnvelopeHeader(type as 3, fromHex(v.sessionId), m.sequence, m.timestamp).bytes;
  const parts: Buffer[] = [Buffer.from(header)];
  m.records.forEach((r, index) => {
    const c = createCipheriv('aes-256-gcm', fromHex(dir.key), nonceFor(fromHex(dir.iv), m.sequence, index, r.final));
    c.setAAD(header);
    const ct = Buffer.concat([c.update(fromHex(r.plaintext)), c.final(), c.getAuthTag()]);
    const prefix = Buffer.alloc(4);
    prefix.writeUInt32BE((ct.length | (r.final ? 0x8000_0000 : 0)) >>> 0);
    parts.push(prefix, ct);
  });
  return Buffer.concat(parts).toString('hex');
}

const pairs = [
  ['single-record', { request: v.request, response: v.response }, undefined],
  ['multi-record', v.multiRecord, v.multiRecord?.recordSize],
  ['empty-body', v.emptyBody, undefined],
] as const;

for (const [name, pair, recordSize] of pairs) {
  test(`vectors (${name}): REQUEST and RESPONSE octets are reproduced exactly, record by record, and open to the recorded messages`, async () => {
    assert.ok(pair && pair.request && pair.response, `${name} vector is present`);
    const prk = await extractSessionPrk(fromHex(v.sessionId), fromHex(v.secret));
    const mk = async (n: 'c2s' | 's2c') => directionFrom(await deriveKeyIv(prk, n, fromHex(v.th1)));
    const opts = recordSize !== undefined ? { recordSize } : undefined;
    const sid = fromHex(v.sessionId);
    const { request: rq, response: rs } = pair;
    const last = (m: { records: { final: boolean }[] }) => m.records.map((r) => r.final);
    if (name === 'multi-record') {
      assert.ok(rq.records.length >= 4 && rs.records.length >= 4, 'several records each way');
      for (const r of [...rq.records, ...rs.records]) assert.ok(fromHex(r.plaintext).length <= recordSize!);
    }
    if (name === 'empty-body') assert.equal(rq.body + rs.body, '');
    assert.deepEqual(last(rq), [...rq.records.slice(1).map(() => false), true]);
    assert.deepEqual(last(rs), [...rs.records.slice(1).map(() => false), true]);

    // 1. The record layer, independently: AES-256-GCM with the documented nonce and AAD.
    assert.equal(rebuild(v.keys.c2s, MessageTypes.request, rq), rq.message);
    assert.equal(rebuild(v.keys.s2c, MessageTypes.response, rs), rs.message);
    // 2. This implementation's sealer makes the same octets.
    assert.equal(toHex(encodeRequestHead(rq.head)), rq.bhttpHead);
    assert.equal(toHex(encodeResponseHead(rs.head)), rs.bhttpHead);
    const reqHeader = encodeEnvelopeHeader(MessageTypes.request, sid, rq.sequence, rq.timestamp);
    assert.equal(toHex(await collect(sealRequest(await mk('c2s'), reqHeader, rq.head, fromHex(rq.body), opts))), rq.message);
    const respHeader = encodeEnvelopeHeader(MessageTypes.response, sid, rs.sequence, rs.timestamp);
    assert.equal(toHex(await collect(sealResponse(await mk('s2c'), respHeader, rs.head, fromHex(rs.body), opts))), rs.message);
    // 3. Both open to the recorded heads and bodies.
    const reqWire = fromHex(rq.message);
    const req = await openRequest(await mk('c2s'), parseEnvelopeHeader(reqWire.subarray(0, 38)), new ByteReader([reqWire.subarray(38)]));
    assert.deepEqual(req.head, rq.head);
    assert.equal(toHex(await collect(req.body)), rq.body);
    const respWire = fromHex(rs.message);
    const resp = await openResponse(await mk('s2c'), parseEnvelopeHeader(respWire.subarray(0, 38)), new ByteReader([respWire.subarray(38)]));
    assert.equal(resp.head.status, rs.head.status);
    assert.deepEqual(resp.head.headers, rs.head.headers);
    assert.equal(toHex(await collect(resp.body)), rs.body);
  });
}

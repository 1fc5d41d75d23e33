/** The node:crypto SHA-256/HKDF backend is a drop-in for the core's WebCrypto default: same octets, same limits. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { randomBytes as nodeRandomBytes, randomInt } from 'node:crypto';
import {
  acceptExchange,
  ByteReader,
  deriveKeyIv,
  directionFrom,
  extractSessionPrk,
  finishExchange,
  fromHex,
  importPrivateKey,
  importPublicKey,
  MemoryExchangeReplayGuard,
  OuterChannel,
  parseEnvelopeHeader,
  parseRekeyPolicy,
  toHex,
  webCryptoAead,
  webCryptoKdf,
  type AeadBackend,
  type KdfBackend,
  type PendingExchange,
} from '../test/vectors/vector-support.ts';
import { nodeAead } from './node-aead.ts';
import { nodeKdf } from './node-kdf.ts';
import { getHead, makePair, roundTrip } from '../test/helpers/protocol.ts';

const v = JSON.parse(readFileSync(new URL('../test/vectors/sws-v1.json', import.meta.url), 'utf8'));

// RFC 5869 Appendix A, test cases 1–3 (SHA-256): A.1 basic, A.2 long inputs (two-plus blocks), A.3 empty salt and info.
const hex = (from: number, n: number) => Array.from({ length: n }, (_, i) => (from + i).toString(16).padStart(2, '0')).join('');
const RFC5869 = [
  {
    ikm: '0b'.repeat(22),
    salt: '000102030405060708090a0b0c',
    info: 'f0f1f2f3f4f5f6f7f8f9',
    L: 42,
    prk: '077709362c2e32df0ddc3f0dc47bba6390b6c73bb50f9c3122ec844ad7c2b3e5',
    okm: '3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865',
  },
  {
    ikm: hex(0x00, 80),
    salt: hex(0x60, 80),
    info: hex(0xb0, 80),
    L: 82,
    prk: '06a6b88c5853361a06104c9ceb35b45cef760014904671014a193f40c15fc244',
    okm: 'b11e398dc80327a1c8e7f78c596a49344f012eda2d4efad8a050cc4c19afa97c59045a99cac7827271cb41c65e590e09da3275600c2f09b8367793a9aca3db71cc30c58179ec3e87c14c01d5c1f3434f1d87',
  },
  {
    ikm: '0b'.repeat(22),
    salt: '',
    info: '',
    L: 42,
    prk: '19ef24a32c717b167f33a91d6f648bdf96596776afdb6377ac434c1c293ccb04',
    okm: '8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8',
  },
];

const BACKENDS: [string, KdfBackend][] = [
  ['node', nodeKdf],
  ['webcrypto', webCryptoKdf],
];

test('both KDF backends match RFC 5869 Appendix A.1–A.3 (HKDF-SHA-256)', async () => {
  for (const [name, kdf] of BACKENDS) {
    for (const [i, t] of RFC5869.entries()) {
      const prk = await kdf.hkdfExtract(fromHex(t.salt), fromHex(t.ikm));
      assert.equal(toHex(prk), t.prk, `${name}: A.${i + 1} PRK`);
      assert.equal(toHex(await kdf.hkdfExpand(prk, fromHex(t.info), t.L)), t.okm, `${name}: A.${i + 1} OKM`);
    }
  }
  // FIPS 180-2 known answers for SHA-256.
  for (const [name, kdf] of BACKENDS) {
    assert.equal(toHex(await kdf.sha256(new Uint8Array(0))), 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855', `${name}: SHA-256("")`);
    assert.equal(toHex(await kdf.sha256(new TextEncoder().encode('abc'))), 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad', `${name}: SHA-256("abc")`);
  }
});

test('node and WebCrypto KDF backends agree on random inputs, returning plain Uint8Arrays', async () => {
  const rnd = (n: number) => new Uint8Array(nodeRandomBytes(n));
  for (let round = 0; round < 200; round++) {
    const salt = rnd([0, 1, 16, 32, 33, 64, 65, 200][round % 8]!);
    const ikm = rnd(randomInt(0, 300));
    const info = rnd(randomInt(0, 300));
    const L = [1, 12, 16, 31, 32, 33, 64, 65, 100, 255 * 32][round % 10]!;
    const [a, b] = [nodeKdf.hkdfExtract(salt, ikm), await webCryptoKdf.hkdfExtract(salt, ikm)];
    assert.deepEqual(a, b, `extract salt ${salt.length} ikm ${ikm.length}`);
    assert.deepEqual(nodeKdf.hkdfExpand(a, info, L), await webCryptoKdf.hkdfExpand(b, info, L), `expand info ${info.length} L ${L}`);
    const data = rnd(randomInt(0, 70_000));
    assert.deepEqual(nodeKdf.sha256(data), await webCryptoKdf.sha256(data), `sha256 of ${data.length} octets`);
    // A view into a larger buffer hashes only the view.
    const big = rnd(96);
    assert.deepEqual(nodeKdf.sha256(big.subarray(10, 50)), await webCryptoKdf.sha256(big.subarray(10, 50)));
  }
  assert.equal(Object.getPrototypeOf(nodeKdf.sha256(new Uint8Array(1))), Uint8Array.prototype);
  assert.throws(() => nodeKdf.hkdfExpand(new Uint8Array(32), new Uint8Array(0), 255 * 32 + 1), RangeError);
  await assert.rejects(async () => webCryptoKdf.hkdfExpand(new Uint8Array(32), new Uint8Array(0), 255 * 32 + 1), RangeError);
});

test('the WebCrypto backend reuses an imported PRK only while the array still holds the same octets', async () => {
  const prk = new Uint8Array(nodeRandomBytes(32));
  const info = new Uint8Array([1, 2, 3]);
  assert.deepEqual(await webCryptoKdf.hkdfExpand(prk, info, 32), nodeKdf.hkdfExpand(prk, info, 32));
  assert.deepEqual(await webCryptoKdf.hkdfExpand(prk, info, 12), nodeKdf.hkdfExpand(prk, info, 12));
  prk[0]! ^= 0xff;
  assert.deepEqual(await webCryptoKdf.hkdfExpand(prk, info, 32), nodeKdf.hkdfExpand(prk, info, 32), 'a rewritten PRK array is imported afresh');
  prk.fill(0);
  assert.deepEqual(await webCryptoKdf.hkdfExpand(prk, info, 16), nodeKdf.hkdfExpand(prk, info, 16), 'a zeroed PRK array is imported afresh');
});

test('the sws-v1 transcript hashes and key schedule recompute exactly with either KDF backend', async () => {
  const exchange = fromHex(v.exchange);
  const inner = await importPrivateKey(v.innerPrivateKeyPkcs8Pem);
  for (const [name, kdf] of BACKENDS) {
    assert.equal(toHex(await kdf.sha256(exchange.subarray(0, 38 + 32 + 2 + inner.bits / 8))), v.th0, `${name}: TH0`);
    assert.equal(toHex(await kdf.sha256(exchange)), v.th1, `${name}: TH1`);
    const prk = await extractSessionPrk(fromHex(v.sessionId), fromHex(v.secret), kdf);
    assert.equal(toHex(prk), v.prk, `${name}: PRK`);
    for (const dir of ['xch', 'cfm', 'c2s', 's2c'] as const) {
      const d = await deriveKeyIv(prk, dir, fromHex(dir === 'xch' ? v.th0 : v.th1), kdf);
      assert.deepEqual({ key: toHex(d.key), iv: toHex(d.iv) }, v.keys[dir], `${name}: ${dir}`);
    }
  }
});

const COMBOS: [string, AeadBackend, KdfBackend][] = [
  ['node aead + node kdf', nodeAead, nodeKdf],
  ['webcrypto aead + node kdf', webCryptoAead, nodeKdf],
  ['webcrypto aead + webcrypto kdf', webCryptoAead, webCryptoKdf],
];

for (const [name, aead, kdf] of COMBOS) {
  test(`sws-v1: the inner accepts the recorded EXCHANGE and the outer the recorded CONFIRM (${name})`, async () => {
    const inner = await importPrivateKey(v.innerPrivateKeyPkcs8Pem);
    const user = await importPrivateKey(v.userPrivateKeyPkcs8Pem);
    const exchange = fromHex(v.exchange);
    const accepted = await acceptExchange(parseEnvelopeHeader(exchange.subarray(0, 38)), new ByteReader([exchange.subarray(38)]), {
      keys: { get: (id) => (id === v.innerKeyId ? inner : undefined) },
      clients: { lookup: (n, kid) => (n === v.userName && kid === v.clientKeyId ? user.publicKey : undefined) },
      replay: new MemoryExchangeReplayGuard(),
      now: v.exchangeTimestamp,
      incarnation: v.confirm.incarnation,
      grant: () => v.confirm.granted,
      aead,
      kdf,
    });
    assert.equal(accepted.user, 'alice');
    assert.deepEqual(accepted.requested, v.requestedLimits);
    // The inner re-signs with a fresh PSS salt, so compare the confirmation without the signature.
    assert.equal(accepted.confirm.length, fromHex(v.confirm.message).length);

    const prk = await extractSessionPrk(fromHex(v.sessionId), fromHex(v.secret), kdf);
    const dirs = await Promise.all((['c2s', 's2c'] as const).map(async (n) => directionFrom(await deriveKeyIv(prk, n, fromHex(v.th1), kdf), aead)));
    const pending: PendingExchange = {
      sessionId: fromHex(v.sessionId),
      message: exchange,
      keys: { sessionId: fromHex(v.sessionId), c2s: dirs[0]!, s2c: dirs[1]! },
      timestamp: v.exchangeTimestamp,
      inner: await importPublicKey(inner.spki),
      prk,
      th1: fromHex(v.th1),
      aead,
      kdf,
    };
    const confirm = fromHex(v.confirm.message);
    const c = await finishExchange(pending, parseEnvelopeHeader(confirm.subarray(0, 38)), new ByteReader([confirm.subarray(38)]));
    assert.equal(c.incarnation, v.confirm.incarnation);
    assert.deepEqual(c.granted, v.confirm.granted);
  });
}

test('exchanges interoperate with the node backends on either side (policy `request`: a new exchange per call)', async () => {
  for (const [outerSide, innerSide] of [
    [{ aead: nodeAead, kdf: nodeKdf }, {}],
    [{}, { aead: nodeAead, kdf: nodeKdf }],
    [{ aead: nodeAead, kdf: nodeKdf }, { aead: nodeAead, kdf: nodeKdf }],
  ] as const) {
    const p = await makePair({ endpoint: innerSide });
    const outer = new OuterChannel({ user: { name: 'alice', key: p.alice.priv }, inner: p.inner.pub, policy: parseRekeyPolicy('request'), now: () => p.clock.now, ...outerSide });
    let exchanges = 0;
    outer.onExchange = () => exchanges++;
    for (let i = 0; i < 3; i++) {
      const r = await roundTrip(outer, p.endpoint, { ...getHead(), method: 'POST' }, new Uint8Array(70_000).fill(i + 1));
      assert.equal(r.kind, 'ok');
      if (r.kind === 'ok') assert.deepEqual(r.body, new Uint8Array(70_000).fill(i + 1));
    }
    assert.equal(exchanges, 3);
  }
});

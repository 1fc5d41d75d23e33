/**
 * The node:crypto RSA backend is a drop-in for the core's WebCrypto default: each output is the
 * RFC 8017 encoding the suite names (checked octet for octet against the test-only reference
 * encoders), each side accepts what the other makes and refuses the same tampering, and whole
 * exchanges run with node on either side against WebCrypto on the other.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { constants, createPrivateKey, KeyObject, privateDecrypt, publicEncrypt, randomBytes as nodeRandomBytes } from 'node:crypto';
import {
  fromHex,
  importPrivateKey,
  OuterChannel,
  parseRekeyPolicy,
  signatureInput,
  SUITE_V1,
  utf8,
  webCryptoRsa,
  type RsaBackend,
} from '../test/vectors/vector-support.ts';
import { mgf1, oaepEncryptWithSeed, pssSignWithSalt } from '../test/vectors/deterministic-rsa.ts';
import { party, type TestParty } from '../test/helpers/keys.ts';
import { collect, getHead, makePair, ORIGIN, roundTrip } from '../test/helpers/protocol.ts';
import { nodeAead } from './node-aead.ts';
import { nodeKdf } from './node-kdf.ts';
import { UnwrapError } from '../core/errors.ts';
import { nodeRsa } from './node-rsa.ts';

const v = JSON.parse(readFileSync(new URL('../test/vectors/sws-v1.json', import.meta.url), 'utf8'));
const H_LEN = 32;

const BACKENDS: [string, RsaBackend][] = [
  ['node', nodeRsa],
  ['webcrypto', webCryptoRsa],
];

/** The party's keys as KeyObjects made independently of the backend (from the PKCS #8 octets). */
function keyObjects(p: TestParty): { priv: KeyObject; pub: KeyObject } {
  const priv = createPrivateKey({ key: Buffer.from(p.pkcs8), format: 'der', type: 'pkcs8' });
  return { priv, pub: KeyObject.from(p.pub.encryptKey) };
}

/** s^e mod n, no padding: the encoded message a signature carries. */
function rawPublic(pub: KeyObject, s: Uint8Array): Uint8Array {
  return new Uint8Array(publicEncrypt({ key: pub, padding: constants.RSA_NO_PADDING }, s));
}

/** c^d mod n, no padding: the encoded message inside an OAEP ciphertext. */
function rawPrivate(priv: KeyObject, c: Uint8Array): Uint8Array {
  return new Uint8Array(privateDecrypt({ key: priv, padding: constants.RSA_NO_PADDING }, c));
}

function unmask(masked: Uint8Array, seed: Uint8Array): Uint8Array {
  const mask = mgf1(seed, masked.length);
  return masked.map((b, i) => b ^ mask[i]!);
}

/** RFC 8017 §9.1.2 steps 5–10 for a 2048-bit key (emLen = k): the salt, if EM is well formed. */
function pssSalt(em: Uint8Array): Uint8Array {
  assert.equal(em[em.length - 1], 0xbc, 'EM ends in 0xbc');
  const h = em.subarray(em.length - 1 - H_LEN, em.length - 1);
  const db = unmask(em.subarray(0, em.length - 1 - H_LEN), h);
  db[0]! &= 0x7f;
  const one = db.indexOf(1);
  assert.ok(db.subarray(0, one).every((b) => b === 0), 'DB starts with zero padding');
  return db.subarray(one + 1);
}

test('node PSS signatures are EMSA-PSS with SHA-256, MGF1-SHA-256 and a 32-octet salt, octet for octet, and WebCrypto verifies them', async () => {
  const alice = await party('alice');
  const { priv, pub } = keyObjects(alice);
  const salts = new Set<string>();
  for (const data of [new Uint8Array(0), utf8('hello'), signatureInput('exchange', new Uint8Array(nodeRandomBytes(400)))]) {
    const sig = await nodeRsa.pssSign(alice.priv, data);
    assert.equal(Object.getPrototypeOf(sig), Uint8Array.prototype);
    assert.equal(sig.length, alice.priv.bits / 8);
    const salt = pssSalt(rawPublic(pub, sig));
    assert.equal(salt.length, SUITE_V1.pssSaltLength);
    salts.add(Buffer.from(salt).toString('hex'));
    // The reference encoder with the salt the backend drew must make the very same octets.
    assert.deepEqual(sig, pssSignWithSalt(priv, data, salt));
    assert.equal(await webCryptoRsa.pssVerify(alice.pub, sig, data), true);
    assert.equal(await nodeRsa.pssVerify(alice.pub, sig, data), true);
  }
  assert.equal(salts.size, 3, 'each signature draws a fresh salt');
});

test('both backends verify each other’s signatures and refuse the same tampering, without throwing', async () => {
  const [alice, bob] = await Promise.all([party('alice'), party('bob')]);
  const { priv } = keyObjects(alice);
  const data = utf8('sws/1 exchange transcript');
  for (const [signer, by] of BACKENDS) {
    const sig = await by.pssSign(alice.priv, data);
    for (const [verifier, check] of BACKENDS) {
      const what = `${signer} → ${verifier}`;
      assert.equal(await check.pssVerify(alice.pub, sig, data), true, what);
      assert.equal(await check.pssVerify(alice.pub, sig, utf8('sws/1 exchange transcripT')), false, `${what}: other data`);
      assert.equal(await check.pssVerify(bob.pub, sig, data), false, `${what}: other key`);
      for (const i of [0, 1, 100, sig.length - 1]) {
        const bad = sig.slice();
        bad[i]! ^= 0x01;
        assert.equal(await check.pssVerify(alice.pub, bad, data), false, `${what}: octet ${i} flipped`);
      }
      assert.equal(await check.pssVerify(alice.pub, sig.subarray(1), data), false, `${what}: truncated`);
      assert.equal(await check.pssVerify(alice.pub, new Uint8Array(0), data), false, `${what}: empty`);
    }
  }
  // The suite fixes the salt length: a valid PSS-SHA-256 signature with another salt length is refused by both.
  for (const [name, check] of BACKENDS) {
    assert.equal(await check.pssVerify(alice.pub, pssSignWithSalt(priv, data, new Uint8Array(H_LEN).fill(7)), data), true, `${name}: 32-octet salt`);
    assert.equal(await check.pssVerify(alice.pub, pssSignWithSalt(priv, data, new Uint8Array(20).fill(7)), data), false, `${name}: 20-octet salt`);
    assert.equal(await check.pssVerify(alice.pub, pssSignWithSalt(priv, data, new Uint8Array(0)), data), false, `${name}: empty salt`);
  }
});

test('node OAEP is EME-OAEP with SHA-256, MGF1-SHA-256 and the label, octet for octet, and WebCrypto unwraps it', async () => {
  const inner = await party('inner');
  const { priv, pub } = keyObjects(inner);
  for (const label of [new Uint8Array(0), signatureInput('wrap', new Uint8Array(38), new Uint8Array(32))]) {
    const secret = new Uint8Array(nodeRandomBytes(SUITE_V1.secretBytes));
    const wrapped = await nodeRsa.oaepWrap(inner.pub, secret, label);
    assert.equal(Object.getPrototypeOf(wrapped), Uint8Array.prototype);
    assert.equal(wrapped.length, inner.priv.bits / 8);
    // Recover the seed the backend drew (RFC 8017 §7.1.2 step 3); the reference encoder must then agree exactly.
    const em = rawPrivate(priv, wrapped);
    assert.equal(em[0], 0);
    const maskedDb = em.subarray(1 + H_LEN);
    const seed = unmask(em.subarray(1, 1 + H_LEN), maskedDb);
    assert.deepEqual(wrapped, oaepEncryptWithSeed(pub, secret, label, seed));
    assert.deepEqual(await webCryptoRsa.oaepUnwrap(inner.priv, wrapped, label), secret, `label of ${label.length} octets`);
    assert.deepEqual(await nodeRsa.oaepUnwrap(inner.priv, wrapped, label), secret);
  }
});

test('both backends unwrap each other’s and the sws-v1 vector’s wrapped secrets, and refuse a wrong label, key or octet', async () => {
  const [inner, other] = await Promise.all([party('inner'), party('bob')]);
  const label = utf8('label A');
  for (const [wrapper, by] of BACKENDS) {
    const secret = new Uint8Array(nodeRandomBytes(SUITE_V1.secretBytes));
    const wrapped = await by.oaepWrap(inner.pub, secret, label);
    for (const [unwrapper, rsa] of BACKENDS) {
      const what = `${wrapper} → ${unwrapper}`;
      const unwrap = async (key: TestParty, w: Uint8Array, l: Uint8Array) => rsa.oaepUnwrap(key.priv, w, l);
      assert.deepEqual(await unwrap(inner, wrapped, label), secret, what);
      await assert.rejects(unwrap(inner, wrapped, utf8('label B')), { code: 'SWS_ERR_UNWRAP' }, `${what}: wrong label`);
      await assert.rejects(unwrap(inner, wrapped, new Uint8Array(0)), { code: 'SWS_ERR_UNWRAP' }, `${what}: no label`);
      await assert.rejects(unwrap(other, wrapped, label), { code: 'SWS_ERR_UNWRAP' }, `${what}: wrong key`);
      const bad = wrapped.slice();
      bad[bad.length - 1]! ^= 0x01;
      await assert.rejects(unwrap(inner, bad, label), { code: 'SWS_ERR_UNWRAP' }, `${what}: octet flipped`);
      await assert.rejects(unwrap(inner, wrapped.subarray(1), label), { code: 'SWS_ERR_UNWRAP' }, `${what}: truncated`);
    }
  }
  // The recorded EXCHANGE: Header (38) ‖ Inner Key ID (32) ‖ Wrapped Length (2) ‖ Wrapped Secret.
  const exchange = fromHex(v.exchange);
  const recorded = await importPrivateKey(v.innerPrivateKeyPkcs8Pem);
  const wrapped = exchange.subarray(72, 72 + recorded.bits / 8);
  const wrapLabel = signatureInput('wrap', exchange.subarray(0, 38), exchange.subarray(38, 70));
  for (const [name, rsa] of BACKENDS) assert.deepEqual(await rsa.oaepUnwrap(recorded, wrapped, wrapLabel), fromHex(v.secret), name);
});

test('the node backend turns each CryptoKey into a KeyObject once, not per operation', async () => {
  const carol = await party('carol-keyobject-count');
  const from = KeyObject.from;
  let conversions = 0;
  KeyObject.from = (key: CryptoKey) => {
    conversions++;
    return from.call(KeyObject, key);
  };
  try {
    const label = utf8('l');
    for (let i = 0; i < 5; i++) {
      const sig = await nodeRsa.pssSign(carol.priv, label);
      assert.equal(await nodeRsa.pssVerify(carol.pub, sig, label), true);
      await nodeRsa.oaepUnwrap(carol.priv, await nodeRsa.oaepWrap(carol.pub, label, label), label);
    }
  } finally {
    KeyObject.from = from;
  }
  // OAEP decryption is WebCrypto's job on the pool, with the CryptoKey as it is.
  assert.equal(conversions, 3, 'sign, verify and encrypt keys, once each');
});

test('node OAEP decryption leaves the event loop: it answers with a promise, and refuses a wrong label with an UnwrapError', async () => {
  const dave = await party('dave-oaep-pool');
  const secret = new Uint8Array(32).fill(7);
  const wrapped = await nodeRsa.oaepWrap(dave.pub, secret, utf8('right'));
  const pending = nodeRsa.oaepUnwrap(dave.priv, wrapped, utf8('right'));
  assert.ok(pending instanceof Promise, 'a private RSA operation must not run on the event loop');
  assert.deepEqual(await pending, secret);
  await assert.rejects(Promise.resolve(nodeRsa.oaepUnwrap(dave.priv, wrapped, utf8('wrong'))), UnwrapError);
});

/** nodeRsa, counting what each side asks of it (proves the option reaches every RSA call of an exchange). */
function counted(): { rsa: RsaBackend; calls: Record<string, number> } {
  const calls: Record<string, number> = {};
  const count = (op: string) => (calls[op] = (calls[op] ?? 0) + 1);
  const rsa: RsaBackend = {
    name: 'counted node',
    oaepWrap: (...a) => (count('wrap'), nodeRsa.oaepWrap(...a)),
    oaepUnwrap: (...a) => (count('unwrap'), nodeRsa.oaepUnwrap(...a)),
    pssSign: (...a) => (count('sign'), nodeRsa.pssSign(...a)),
    pssVerify: (...a) => (count('verify'), nodeRsa.pssVerify(...a)),
  };
  return { rsa, calls };
}

test('exchanges run with node RSA (and the other node backends) on either side against WebCrypto on the other', async () => {
  for (const [outerNode, innerNode, others] of [
    [true, false, true],
    [false, true, true],
    [true, true, true],
    [true, false, false],
    [false, true, false],
  ] as const) {
    const outerRsa = counted();
    const innerRsa = counted();
    const backends = (rsa: RsaBackend) => (others ? { aead: nodeAead, kdf: nodeKdf, rsa } : { rsa });
    const p = await makePair({ endpoint: innerNode ? backends(innerRsa.rsa) : {} });
    const outer = new OuterChannel({ user: { name: 'alice', key: p.alice.priv }, inner: p.inner.pub, policy: parseRekeyPolicy('request'), now: () => p.clock.now, ...(outerNode ? backends(outerRsa.rsa) : {}) });
    const what = `outer ${outerNode ? 'node' : 'webcrypto'}, inner ${innerNode ? 'node' : 'webcrypto'}${others ? ', node AEAD and KDF' : ''}`;
    for (let i = 0; i < 3; i++) {
      const r = await roundTrip(outer, p.endpoint, { ...getHead(), method: 'POST' }, new Uint8Array(1000).fill(i + 1));
      assert.equal(r.kind, 'ok', what);
      if (r.kind === 'ok') assert.deepEqual(r.body, new Uint8Array(1000).fill(i + 1));
    }
    // Three exchanges: the outer wraps, signs and verifies the confirmation; the inner unwraps, verifies and signs.
    assert.deepEqual(outerRsa.calls, outerNode ? { wrap: 3, sign: 3, verify: 3 } : {}, `${what}: outer RSA calls`);
    assert.deepEqual(innerRsa.calls, innerNode ? { unwrap: 3, verify: 3, sign: 3 } : {}, `${what}: inner RSA calls`);
  }
});

test('an inner on node RSA refuses a tampered wrapped secret and a user signature made with another key', async () => {
  const p = await makePair({ endpoint: { rsa: nodeRsa } });
  const send = async (key: typeof p.alice.priv, tamper?: number) => {
    const outer = new OuterChannel({ user: { name: 'alice', key }, inner: p.inner.pub, policy: parseRekeyPolicy('request'), now: () => p.clock.now, rsa: nodeRsa });
    const envelope = await collect((await outer.prepare(ORIGIN)).seal({ ...getHead(), method: 'POST' }, new Uint8Array(10)));
    if (tamper !== undefined) envelope[tamper]! ^= 0x01;
    const r = await p.endpoint.open([envelope]);
    return r.kind === 'refused' ? r.refusal.code : r.kind;
  };
  assert.equal(await send(p.alice.priv), 'envelope', 'baseline');
  // EXCHANGE = Header (38) ‖ Inner Key ID (32) ‖ Wrapped Length (2) ‖ Wrapped Secret ‖ …
  assert.equal(await send(p.alice.priv, 38 + 32 + 2 + 100), 'SWS_ERR_UNWRAP');
  // Names alice and her key ID, but bob's private key signs.
  assert.equal(await send({ ...p.alice.priv, signKey: p.bob.priv.signKey }), 'SWS_ERR_SIGNATURE');
});

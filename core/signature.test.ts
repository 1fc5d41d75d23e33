/**
 * The two RSA-PSS checks of the exchange (docs/PROTOCOL.md §3.2, §3.3; protocol.md property 3)
 * reached on purpose: every message here is correctly structured and opens under its AEAD
 * keys, so the only thing wrong is the signature. Byte flips never get this far (AES-GCM
 * stops them first).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  acceptExchange,
  ByteReader,
  concatBytes,
  deriveKeyIv,
  directionFrom,
  finishExchange,
  InnerEndpoint,
  OuterChannel,
  parseEnvelopeHeader,
  parseRekeyPolicy,
  readU16,
  RecordOpener,
  recordPlaintext,
  RecordSealer,
  sha256,
  startExchange,
  toHex,
  writeU32,
  type AcceptExchangeContext,
  type ExchangeReplayGuard,
  type InnerKeyRing,
  type PendingExchange,
  type PrivateKeyHandle,
} from './index.ts';
import { directory, getHead, keyRing, makePair, roundTrip, type Pair } from '../test/helpers/protocol.ts';
import { party } from '../test/helpers/keys.ts';

/** A replay guard that records whether anything tried to enter the cache. */
function countingGuard(): ExchangeReplayGuard & { calls: number } {
  const seen = new Set<string>();
  return {
    calls: 0,
    remember(id) {
      this.calls++;
      const key = toHex(id);
      if (seen.has(key)) return false;
      seen.add(key);
      return true;
    },
  };
}

function innerContext(p: Pair, replay: ExchangeReplayGuard, keys: InnerKeyRing = keyRing(p.inner)): AcceptExchangeContext {
  return {
    keys,
    clients: directory({ alice: p.alice.pub, bob: p.bob.pub }),
    replay,
    now: p.clock.now,
    incarnation: p.clock.now - 1000,
    grant: () => ({ maxRequests: 10, expiresAt: p.clock.now + 60_000, maxBytes: 1 << 20, idleTimeoutSeconds: 60 }),
  };
}

function accept(p: Pair, message: Uint8Array, replay: ExchangeReplayGuard, keys?: InnerKeyRing) {
  return acceptExchange(parseEnvelopeHeader(message.subarray(0, 38)), new ByteReader([message.subarray(38)]), innerContext(p, replay, keys));
}

/** A handle that names alice's registered key (key ID, SPKI) but signs with another private key. */
async function aliceImpostor(p: Pair): Promise<PrivateKeyHandle> {
  const mallory = await party('mallory');
  return { ...mallory.priv, keyId: p.alice.priv.keyId, spki: p.alice.priv.spki, publicKey: p.alice.pub };
}

test('user signature: an exchange naming alice and her registered key ID but signed by another key is SWS_ERR_SIGNATURE', async () => {
  const p = await makePair();
  const impostor = await aliceImpostor(p);
  const guard = countingGuard();
  const forged = await startExchange({ user: { name: 'alice', key: impostor }, inner: p.inner.pub, now: p.clock.now });
  await assert.rejects(accept(p, forged.message, guard), { code: 'SWS_ERR_SIGNATURE', name: 'SignatureError' });
  assert.equal(guard.calls, 0, 'an unauthenticated exchange never enters the replay cache');

  // Control: the same construction with alice's own key is accepted, so only the signature differed.
  const genuine = await startExchange({ user: { name: 'alice', key: p.alice.priv }, inner: p.inner.pub, now: p.clock.now });
  assert.equal(genuine.message.length, forged.message.length, 'same layout, same lengths');
  const ok = await accept(p, genuine.message, guard);
  assert.equal(ok.user, 'alice');
  assert.equal(guard.calls, 1);
});

test('user signature through the inner endpoint: refused in clear as exchange-failed / 403, no session is created', async () => {
  const p = await makePair();
  const ch = new OuterChannel({ user: { name: 'alice', key: await aliceImpostor(p) }, inner: p.inner.pub, policy: parseRekeyPolicy('destination'), now: () => p.clock.now });
  const r = await roundTrip(ch, p.endpoint, getHead(), null);
  assert.ok(r.kind === 'refused');
  assert.equal(r.refusal.code, 'SWS_ERR_SIGNATURE');
  assert.equal(r.refusal.status, 403);
  assert.equal(r.refusal.keyState, 'exchange-failed');
  assert.equal(p.endpoint.sessions.size, 0);
});

/** Opens the single record of a key message under `dir`, lets `mutate` change the plaintext, and seals it again under fresh keys. */
async function reseal(message: Uint8Array, clearLength: number, keysFor: () => ReturnType<typeof directionFrom>, mutate: (pt: Uint8Array) => Uint8Array): Promise<Uint8Array> {
  const header = parseEnvelopeHeader(message.subarray(0, 38));
  const opener = new RecordOpener(await keysFor(), header, new ByteReader([message.subarray(clearLength)]), 4096);
  const rec = await opener.next();
  assert.ok(rec && rec.final);
  const records = await new RecordSealer(await keysFor(), header).seal(mutate(recordPlaintext(rec).slice()), true);
  return concatBytes(message.subarray(0, clearLength), ...records);
}

async function resealExchange(pending: PendingExchange, mutate: (payload: Uint8Array) => Uint8Array): Promise<Uint8Array> {
  const m = pending.message;
  const clearLength = 38 + 32 + 2 + readU16(m, 70);
  const th0 = await sha256(m.subarray(0, clearLength));
  return reseal(m, clearLength, async () => directionFrom(await deriveKeyIv(pending.prk, 'xch', th0)), mutate);
}

test('user signature: a payload changed after signing (by someone holding S) fails the signature, not the AEAD', async () => {
  const p = await makePair();
  const nameOffset = 32 + 1;
  const cases: [string, (pt: Uint8Array) => Uint8Array][] = [
    [
      'requested limits raised',
      (pt) => {
        const limitsAt = nameOffset + 'alice'.length + 32;
        writeU32(pt, limitsAt, 0xffff_ffff);
        return pt;
      },
    ],
    [
      'relabelled as bob with bob’s key ID',
      (pt) => concatBytes(p.bob.pub.keyId, new Uint8Array([3]), new TextEncoder().encode('bob'), pt.subarray(nameOffset + 5)),
    ],
  ];
  for (const [name, mutate] of cases) {
    const pending = await startExchange({ user: { name: 'alice', key: p.alice.priv }, inner: p.inner.pub, now: p.clock.now });
    const guard = countingGuard();
    await assert.rejects(accept(p, await resealExchange(pending, mutate), guard), { code: 'SWS_ERR_SIGNATURE' }, name);
    assert.equal(guard.calls, 0, name);
  }
});

test('confirmation signature: a confirmation the addressed inner did not sign is SWS_ERR_SIGNATURE at the outer', async () => {
  const p = await makePair();
  const other = await party('other-inner');
  // This "inner" can unwrap S (it holds the real decryption key) but signs with another key.
  const splice: PrivateKeyHandle = { ...p.inner.priv, signKey: other.priv.signKey };
  const ring: InnerKeyRing = { get: (id) => (id === toHex(p.inner.priv.keyId) ? splice : undefined) };
  const pending = await startExchange({ user: { name: 'alice', key: p.alice.priv }, inner: p.inner.pub, now: p.clock.now });
  const accepted = await accept(p, pending.message, countingGuard(), ring);
  const c = accepted.confirm;
  await assert.rejects(finishExchange(pending, parseEnvelopeHeader(c.subarray(0, 38)), new ByteReader([c.subarray(38)])), { code: 'SWS_ERR_SIGNATURE', name: 'SignatureError' });

  // Control: the real inner's confirmation of an identical exchange verifies.
  const pending2 = await startExchange({ user: { name: 'alice', key: p.alice.priv }, inner: p.inner.pub, now: p.clock.now });
  const good = (await accept(p, pending2.message, countingGuard())).confirm;
  assert.equal(good.length, c.length, 'same layout, same lengths');
  const conf = await finishExchange(pending2, parseEnvelopeHeader(good.subarray(0, 38)), new ByteReader([good.subarray(38)]));
  assert.equal(conf.granted.maxRequests, 10);
});

test('confirmation signature: granted limits changed after signing fail the signature', async () => {
  const p = await makePair();
  const pending = await startExchange({ user: { name: 'alice', key: p.alice.priv }, inner: p.inner.pub, now: p.clock.now });
  const accepted = await accept(p, pending.message, countingGuard());
  const cfm = async () => directionFrom(await deriveKeyIv(pending.prk, 'cfm', pending.th1));
  const changed = await reseal(accepted.confirm, 38, cfm, (pt) => {
    writeU32(pt, 8, 1_000_000); // maxRequests
    return pt;
  });
  await assert.rejects(finishExchange(pending, parseEnvelopeHeader(changed.subarray(0, 38)), new ByteReader([changed.subarray(38)])), { code: 'SWS_ERR_SIGNATURE' });
});

test('confirmation signature through the outer channel: the response is never released and the next request exchanges again', async () => {
  const p = await makePair();
  const other = await party('other-inner');
  const splice: PrivateKeyHandle = { ...p.inner.priv, signKey: other.priv.signKey };
  const fake = new InnerEndpoint({
    keys: { get: (id) => (id === toHex(p.inner.priv.keyId) ? splice : undefined) },
    clients: directory({ alice: p.alice.pub }),
    now: () => p.clock.now,
    incarnation: p.clock.now - 1000,
  });
  let responded = false;
  await assert.rejects(
    roundTrip(p.alice_, fake, getHead(), null, (req, body) => ((responded = true), { head: { status: 200, headers: [] }, body })),
    { code: 'SWS_ERR_SIGNATURE' },
  );
  assert.equal(responded, true, 'the fake inner did answer');
  const failed = p.alice_.rotation.current();
  assert.equal(failed, undefined, 'the unconfirmed session was dropped');
  const again = await roundTrip(p.alice_, p.endpoint, getHead(), null);
  assert.ok(again.kind === 'ok');
  assert.deepEqual(again.call.decision, { kind: 'exchange', reason: 'session-lost' });
});

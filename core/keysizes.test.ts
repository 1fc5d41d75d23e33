/**
 * RSA key sizes 3072 and 4096 (core/crypto.ts RSA_KEY_BITS; docs/PROTOCOL.md §3.2): exchange,
 * confirmation and a multi-record request/response round trip, with the inner's and the
 * user's key sizes alike and mixed. The wrapped secret and both signatures grow with the
 * key; every length on the wire is checked.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { InnerEndpoint, OuterChannel, parseRekeyPolicy, readU16, readU32, type RsaKeyBits } from './index.ts';
import { collect, deliver, directory, getHead, keyRing, ORIGIN } from '../test/helpers/protocol.ts';
import { party } from '../test/helpers/keys.ts';

const BODY = Uint8Array.from({ length: 150_000 }, (_, i) => (i * 13 + 5) & 0xff);
const FINAL = 0x8000_0000;

const combos: [inner: RsaKeyBits, user: RsaKeyBits][] = [
  [3072, 3072],
  [4096, 4096],
  [4096, 2048],
  [2048, 4096],
];

for (const [innerBits, userBits] of combos) {
  test(`RSA ${innerBits}-bit inner, ${userBits}-bit user: exchange and a multi-record round trip, twice on one session`, async () => {
    const [inner, user] = await Promise.all([party('inner', innerBits), party('alice', userBits)]);
    assert.equal(inner.priv.bits, innerBits);
    assert.equal(user.priv.bits, userBits);
    let now = Date.now();
    const endpoint = new InnerEndpoint({ keys: keyRing(inner), clients: directory({ alice: user.pub }), now: () => now });
    const channel = new OuterChannel({ user: { name: 'alice', key: user.priv }, inner: inner.pub, policy: parseRekeyPolicy('destination'), now: () => now });

    for (const round of [1, 2]) {
      const call = await channel.prepare(ORIGIN);
      const wire = await collect(call.seal({ ...getHead('/upload'), method: 'PUT' }, BODY));
      if (round === 1) {
        assert.ok(call.exchange, 'the first request carries the exchange');
        // EXCHANGE = header(38) ‖ inner key ID(32) ‖ wrapped length(2) ‖ wrapped ‖ one final record
        const wrappedLen = readU16(wire, 70);
        assert.equal(wrappedLen, innerBits / 8, 'the wrapped secret is one modulus long');
        const word = readU32(wire, 72 + wrappedLen);
        assert.ok(word & FINAL);
        const payloadLen = (word & ~FINAL) - 16;
        // ExchangePayload = client key ID(32) ‖ name length(1) ‖ "alice" ‖ inner key ID(32) ‖ limits(16) ‖ sig length(2) ‖ sig
        assert.equal(payloadLen, 32 + 1 + 5 + 32 + 16 + 2 + userBits / 8, 'the user signature is one modulus long');
      } else {
        assert.equal(call.exchange, null, 'the second request reuses the session');
      }
      const r = await deliver(call, endpoint, [wire]);
      assert.ok(r.kind === 'ok', `round ${round}: ${r.kind === 'refused' ? r.refusal.code : ''}`);
      assert.deepEqual(r.seenBody, BODY);
      assert.deepEqual(r.body, BODY);
      assert.equal(r.session.user, 'alice');
      if (round === 1) {
        // EXCHANGE_CONFIRM = header(38) ‖ one final record: incarnation(8) ‖ granted(24) ‖ sig length(2) ‖ sig
        const word = readU32(r.respWire, 38);
        assert.ok(word & FINAL);
        assert.equal((word & ~FINAL) - 16, 8 + 24 + 2 + innerBits / 8, 'the confirmation signature is one inner modulus long');
        assert.ok(call.session.confirmed);
      }
      now += 1000;
    }
    assert.equal(endpoint.sessions.size, 1);
  });
}

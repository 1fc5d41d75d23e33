/**
 * What an idle session keeps (issue 7: ≤ 2 KiB per idle session; `npm run bench:sessions`
 * measures it): nothing the exchange merely passed through, nothing sessions could share, and
 * its per-session octets in one allocation. Protocol behaviour is unchanged (protocol.test.ts).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { getHeapSnapshot } from 'node:v8';
import { InnerSession, newDirectionState, OuterSession, packSessionKeys, startExchange, toHex, type GrantedLimits, type SessionKeys } from './index.ts';
import { concatBytes } from './bytes.ts';
import { collect, deliver, getHead, makePair, ORIGIN, roundTrip } from '../test/helpers/protocol.ts';

const GRANTED: GrantedLimits = { maxRequests: 10, expiresAt: Date.now() + 60_000, maxBytes: 1 << 20, idleTimeoutSeconds: 60 };

function sessionKeys(): SessionKeys {
  const dir = () => newDirectionState({}, crypto.getRandomValues(new Uint8Array(12)));
  return { sessionId: crypto.getRandomValues(new Uint8Array(16)), c2s: dir(), s2c: dir() };
}

/** How many live strings in this process's heap equal `value`. */
async function liveStrings(value: string): Promise<number> {
  const chunks: Buffer[] = [];
  for await (const chunk of getHeapSnapshot()) chunks.push(chunk as Buffer);
  const snapshot = JSON.parse(Buffer.concat(chunks).toString('utf8'));
  const fields: string[] = snapshot.snapshot.meta.node_fields;
  const stringType = (snapshot.snapshot.meta.node_types[0] as string[]).indexOf('string');
  const [type, name] = [fields.indexOf('type'), fields.indexOf('name')];
  let n = 0;
  for (let i = 0; i < snapshot.nodes.length; i += fields.length) {
    if (snapshot.nodes[i + type] === stringType && snapshot.strings[snapshot.nodes[i + name]] === value) n++;
  }
  return n;
}

test('packSessionKeys moves the session ID and both IVs into one buffer, keys and counters unchanged', () => {
  const keys = sessionKeys();
  keys.c2s.records = 3;
  keys.s2c.bytes = 1234;
  keys.c2s.failedOpens = 1;
  const packed = packSessionKeys(keys, 128);
  assert.deepEqual(packed.keys.sessionId, keys.sessionId);
  for (const d of ['c2s', 's2c'] as const) {
    const [a, b] = [keys[d], packed.keys[d]];
    assert.deepEqual(b.iv, a.iv);
    assert.equal(b.key, a.key);
    assert.equal(b.aead, a.aead);
    assert.deepEqual([b.records, b.bytes, b.failedOpens], [a.records, a.bytes, a.failedOpens]);
    assert.equal(b.iv.buffer, packed.keys.sessionId.buffer);
  }
  assert.equal(packed.tail.buffer, packed.keys.sessionId.buffer);
  assert.equal(packed.tail.length, 128);
  assert.equal(packed.tail.byteOffset % 4, 0);
  assert.ok(packed.tail.every((b) => b === 0));
  assert.equal(packed.tail.buffer.byteLength, 16 + 12 + 12 + 128);
});

test('an inner session copies its session ID out of the chunk the exchange arrived in', async () => {
  const p = await makePair();
  const call = await p.alice_.prepare(ORIGIN);
  // One large chunk: the exchange, then a request with a 100 KB body.
  const envelope = await collect(call.seal({ ...getHead('/x'), method: 'PUT' }, new Uint8Array(100_000).fill(1)));
  const r = await deliver(call, p.endpoint, [envelope]);
  assert.equal(r.kind, 'ok');
  if (r.kind !== 'ok') return;
  const s = r.session;
  assert.deepEqual(s.keys.sessionId, envelope.subarray(6, 22));
  assert.ok(s.keys.sessionId.buffer.byteLength <= 16 + 24 + s.window.size / 8, `the session keeps a ${s.keys.sessionId.buffer.byteLength}-octet buffer`);
  assert.equal(s.keys.c2s.iv.buffer, s.keys.sessionId.buffer);
  assert.equal(s.keys.s2c.iv.buffer, s.keys.sessionId.buffer);
  // Still one working session: the replay window lives in the same buffer and still refuses replays.
  assert.equal((await roundTrip(p.alice_, p.endpoint, getHead(), null)).kind, 'ok');
});

test('inner sessions of one key share one string for each key ID', async () => {
  const [client, inner] = [crypto.getRandomValues(new Uint8Array(32)), crypto.getRandomValues(new Uint8Array(32))];
  // Each session gets its own string instance, as each exchange decodes its own.
  const sessions = Array.from(
    { length: 100 },
    () => new InnerSession({ user: 'alice', clientKeyIdHex: toHex(client), innerKeyIdHex: toHex(inner), keys: sessionKeys(), clockOffset: 0, granted: GRANTED, now: Date.now(), windowSize: 1024 }),
  );
  const clientHex = toHex(client);
  // The shared instance plus `clientHex` itself; without sharing there would be 101.
  assert.ok((await liveStrings(clientHex)) <= 2);
  assert.ok((await liveStrings(toHex(inner))) <= 2);
  assert.ok(sessions.every((s) => s.clientKeyIdHex === clientHex && s.innerKeyIdHex === toHex(inner)));
});

test('once its exchange is confirmed, an outer session wipes the PRK and drops the EXCHANGE octets, TH1 and cfm keys', async () => {
  const p = await makePair();
  const now = p.clock.now;
  const pending = await startExchange({ user: { name: 'alice', key: p.alice.priv }, inner: p.inner.pub, now });
  const prk = pending.prk;
  assert.ok(prk.some((b) => b !== 0));
  const s = new OuterSession(pending, now, 'first-request');
  assert.deepEqual(s.pending.sessionId, pending.sessionId);
  assert.equal(s.pending.keys.c2s.iv.buffer, s.pending.sessionId.buffer);
  assert.equal(s.takeExchange(), pending.message);
  const confirmation = { incarnation: 1, granted: GRANTED, innerTime: now };
  s.confirm(confirmation, now);
  assert.equal(await s.ready, confirmation);
  assert.ok(prk.every((b) => b === 0), 'the PRK outlived the exchange');
  assert.deepEqual([s.pending.message.length, s.pending.prk.length, s.pending.th1.length, s.pending.cfm], [0, 0, 0, undefined]);
  assert.deepEqual(s.pending.sessionId, pending.sessionId);
  assert.equal(s.sessionIdHex, toHex(pending.sessionId));
});

test('a failed exchange wipes the PRK too, and its session reports the failure', async () => {
  const p = await makePair();
  const pending = await startExchange({ user: { name: 'alice', key: p.alice.priv }, inner: p.inner.pub, now: p.clock.now });
  const s = new OuterSession(pending, p.clock.now, 'first-request');
  const failure = new Error('refused');
  s.fail(failure);
  await assert.rejects(s.ready, (e) => e === failure);
  assert.ok(pending.prk.every((b) => b === 0));
  assert.equal(s.takeExchange(), null);
  assert.equal(s.pending.prk.length, 0);
});

test('a confirmed outer session keeps carrying requests after the exchange state is dropped', async () => {
  const p = await makePair();
  for (let i = 0; i < 3; i++) {
    const r = await roundTrip(p.alice_, p.endpoint, { ...getHead(), method: 'POST' }, concatBytes(new Uint8Array([i]), new Uint8Array(70_000)));
    assert.equal(r.kind, 'ok');
    if (r.kind === 'ok') assert.equal(r.body.length, 70_001);
  }
  assert.equal(p.endpoint.sessions.size, 1);
});

/**
 * The outer ↔ inner protocol end to end, in process (docs/PROTOCOL.md; protocol.md
 * properties 1–10). Each test starts from a valid exchange and changes one thing.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import {
  concatBytes,
  ENVELOPE_HEADER_LENGTH,
  InnerEndpoint,
  OuterChannel,
  parseRekeyPolicy,
  readU32,
  utf8,
  type OuterCall,
} from './index.ts';
import { collect, deliver, directory, echo, getHead, keyRing, makePair, ORIGIN, roundTrip } from '../test/helpers/protocol.ts';
import { party } from '../test/helpers/keys.ts';

function bytes(n: number, seed = 1): Uint8Array {
  const b = new Uint8Array(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    b[i] = x & 0xff;
  }
  return b;
}

/** Splits an envelope into [header, records...] by walking the record framing of each message. */
function splitMessage(wire: Uint8Array, start: number): { header: Uint8Array; records: Uint8Array[]; end: number } {
  const header = wire.subarray(start, start + ENVELOPE_HEADER_LENGTH);
  const records: Uint8Array[] = [];
  let off = start + ENVELOPE_HEADER_LENGTH;
  for (;;) {
    const word = readU32(wire, off);
    const len = word & 0x7fffffff;
    records.push(wire.subarray(off, off + 4 + len));
    off += 4 + len;
    if (word & 0x80000000) break;
  }
  return { header, records, end: off };
}

async function sealOnly(call: OuterCall, head = getHead(), body: Uint8Array | null = null): Promise<Uint8Array> {
  return collect(call.seal(head, body));
}

test('claim 1: request and response round trip through both endpoints, bodies 0 B to 1 MiB', async () => {
  const p = await makePair();
  for (const n of [0, 1, 1000, 65_519, 65_528, 65_536, 65_545, 200_000, 1 << 20]) {
    const body = bytes(n, n + 1);
    const r = await roundTrip(p.alice_, p.endpoint, { ...getHead('/upload'), method: 'POST' }, body);
    assert.equal(r.kind, 'ok');
    if (r.kind !== 'ok') return;
    assert.deepEqual(r.seenBody, body, `inner saw the request body of ${n} octets`);
    assert.deepEqual(r.body, body, `outer got the response body of ${n} octets`);
    assert.equal(r.head.status, 200);
    assert.equal(r.seenHead.method, 'POST');
    assert.equal(r.session.user, 'alice');
  }
});

test('streaming: 256 MiB each way passes in constant memory and arrives intact', async () => {
  const p = await makePair();
  const total = 256 * 1024 * 1024;
  const chunk = bytes(64 * 1024, 9);
  async function* source(): AsyncGenerator<Uint8Array> {
    for (let sent = 0; sent < total; sent += chunk.length) yield chunk;
  }
  const expected = createHash('sha256');
  for (let sent = 0; sent < total; sent += chunk.length) expected.update(chunk);
  const digest = expected.digest('hex');

  const call = await p.alice_.prepare(ORIGIN);
  const env = await p.endpoint.open(call.seal({ ...getHead('/big'), method: 'PUT' }, source()));
  assert.equal(env.kind, 'envelope');
  if (env.kind !== 'envelope') return;
  const req = await env.readRequest();
  assert.ok(req && req.kind === 'request');
  const baseline = process.memoryUsage().rss;
  let peak = baseline;
  const inHash = createHash('sha256');
  let inBytes = 0;
  for await (const c of req.body) {
    inHash.update(c);
    inBytes += c.length;
    if ((inBytes & 0xffffff) === 0) peak = Math.max(peak, process.memoryUsage().rss);
  }
  assert.equal(inBytes, total);
  assert.equal(inHash.digest('hex'), digest);

  async function* response(): AsyncGenerator<Uint8Array> {
    yield env.kind === 'envelope' && env.confirm ? env.confirm : new Uint8Array(0);
    yield* req!.kind === 'request' ? req!.respond({ status: 200, headers: [] }, source()) : [];
  }
  const opened = await call.open('exchanged', response());
  const outHash = createHash('sha256');
  let outBytes = 0;
  for await (const c of opened.body) {
    outHash.update(c);
    outBytes += c.length;
    if ((outBytes & 0xffffff) === 0) peak = Math.max(peak, process.memoryUsage().rss);
  }
  assert.equal(outBytes, total);
  assert.equal(outHash.digest('hex'), digest);
  // 512 MiB moved; buffering either body would show as hundreds of MiB of growth.
  assert.ok(peak - baseline < 96 * 1024 * 1024, `RSS grew by ${((peak - baseline) / 1048576).toFixed(1)} MiB`);
});

test('S101/S105: the first request exchanges, later ones to the same destination reuse the key', async () => {
  const p = await makePair();
  const first = await roundTrip(p.alice_, p.endpoint, getHead(), null);
  assert.ok(first.kind === 'ok');
  assert.equal(first.keyState, 'exchange');
  assert.equal(first.call.decision.kind, 'exchange');
  const second = await roundTrip(p.alice_, p.endpoint, getHead(), null);
  assert.ok(second.kind === 'ok');
  assert.equal(second.keyState, 'established');
  assert.equal(second.session, first.session, 'the inner used the same session');
  assert.equal(p.endpoint.sessions.size, 1);
});

test('S102: a different destination exchanges again under the destination policy; `request` exchanges every time', async () => {
  const p = await makePair();
  await roundTrip(p.alice_, p.endpoint, getHead(), null, echo, 'http://a.example');
  const r = await roundTrip(p.alice_, p.endpoint, getHead(), null, echo, 'http://b.example');
  assert.ok(r.kind === 'ok');
  assert.deepEqual(r.call.decision, { kind: 'exchange', reason: 'destination-changed' });
  const q = await makePair({ policy: 'request' });
  for (let i = 0; i < 3; i++) {
    const x = await roundTrip(q.alice_, q.endpoint, getHead(), null);
    assert.ok(x.kind === 'ok');
    assert.equal(x.keyState, 'exchange');
  }
  assert.equal(q.endpoint.sessions.size, 3);
});

test('property 7: concurrent requests needing a key share one exchange', async () => {
  const p = await makePair();
  let exchanges = 0;
  p.alice_.onExchange = () => void exchanges++;
  const pending = Array.from({ length: 20 }, () => p.alice_.prepare(ORIGIN));
  // The first acquire starts the exchange and carries it; the others wait for its confirmation.
  const owner = await pending[0]!;
  assert.ok(owner.exchange, 'the first call carries the exchange');
  assert.equal((await deliver(owner, p.endpoint, [await sealOnly(owner)])).kind, 'ok');
  const rest = await Promise.all(pending.slice(1));
  assert.ok(rest.every((c) => c.exchange === null && c.session === owner.session));
  const results = await Promise.all(rest.map(async (c) => deliver(c, p.endpoint, [await sealOnly(c)])));
  assert.ok(results.every((r) => r.kind === 'ok'));
  assert.equal(exchanges, 1);
  assert.equal(p.endpoint.sessions.size, 1);
});

test('concurrent prepares wait for the owner exchange confirmation before sending', async () => {
  const p = await makePair();
  const owner = await p.alice_.prepare(ORIGIN);
  assert.ok(owner.exchange);
  let waiterReady = false;
  const waiter = p.alice_.prepare(ORIGIN).then((c) => ((waiterReady = true), c));
  await new Promise((r) => setImmediate(r));
  assert.equal(waiterReady, false, 'the waiter does not use an unconfirmed session');
  const r = await deliver(owner, p.endpoint, [await sealOnly(owner)]);
  assert.equal(r.kind, 'ok');
  const w = await waiter;
  assert.equal(w.exchange, null);
  const r2 = await deliver(w, p.endpoint, [await sealOnly(w)]);
  assert.equal(r2.kind, 'ok');
});

test('property 4: a replayed request is refused and nothing reaches the application', async () => {
  const p = await makePair();
  await roundTrip(p.alice_, p.endpoint, getHead(), null);
  const call = await p.alice_.prepare(ORIGIN);
  const wire = await sealOnly(call, { ...getHead(), method: 'POST' }, utf8('pay 100'));
  const first = await deliver(call, p.endpoint, [wire]);
  assert.equal(first.kind, 'ok');
  const env = await p.endpoint.open([wire]);
  assert.ok(env.kind === 'envelope');
  const again = await env.readRequest();
  assert.ok(again && again.kind === 'refused');
  assert.equal(again.refusal.code, 'SWS_ERR_REPLAY');
  assert.equal(again.refusal.keyState, 'rejected');
});

test('property 4: out-of-order concurrent requests within the window are all accepted', async () => {
  const p = await makePair();
  await roundTrip(p.alice_, p.endpoint, getHead(), null);
  const calls = await Promise.all(Array.from({ length: 50 }, () => p.alice_.prepare(ORIGIN)));
  const wires = await Promise.all(calls.map((c) => sealOnly(c)));
  const order = calls.map((_, i) => i).reverse();
  for (const i of order) {
    const r = await deliver(calls[i]!, p.endpoint, [wires[i]!]);
    assert.equal(r.kind, 'ok', `request ${i}`);
  }
});

test('property 4: a replayed exchange is refused, also by an inner with a persistent replay guard after restart', async () => {
  const p = await makePair();
  const call = await p.alice_.prepare(ORIGIN);
  const wire = await sealOnly(call);
  assert.equal((await deliver(call, p.endpoint, [wire])).kind, 'ok');
  const again = await p.endpoint.open([wire]);
  assert.ok(again.kind === 'refused');
  assert.equal(again.refusal.code, 'SWS_ERR_REPLAY');
  assert.equal(again.refusal.keyState, 'exchange-failed');
  // A restarted inner with a memory-only guard refuses exchanges older than itself (RFC 8446 §8.2).
  const restarted = new InnerEndpoint({ keys: keyRing(p.inner), clients: directory({ alice: p.alice.pub }), now: () => p.clock.now + 1, incarnation: p.clock.now + 1 });
  const r = await restarted.open([wire]);
  assert.ok(r.kind === 'refused');
  assert.equal(r.refusal.code, 'SWS_ERR_STALE');
});

test('inner restart: the outer learns exchange-needed, exchanges again, and idempotent requests may be retried', async () => {
  const p = await makePair();
  await roundTrip(p.alice_, p.endpoint, getHead(), null);
  const restarted = new InnerEndpoint({ keys: keyRing(p.inner), clients: directory({ alice: p.alice.pub }), now: () => p.clock.now });
  const lost = await roundTrip(p.alice_, restarted, getHead(), null);
  assert.ok(lost.kind === 'refused');
  assert.equal(lost.refusal.keyState, 'exchange-needed');
  assert.equal(lost.refusal.code, 'SWS_ERR_UNKNOWN_SESSION');
  const again = await roundTrip(p.alice_, restarted, getHead(), null);
  assert.ok(again.kind === 'ok');
  assert.deepEqual(again.call.decision, { kind: 'exchange', reason: 'session-lost' });
});

test('property 7 retry rule: a POST is retried only when a new incarnation provably never saw it', async () => {
  const p = await makePair();
  await roundTrip(p.alice_, p.endpoint, getHead(), null);
  const failed = await p.alice_.prepare(ORIGIN);
  await sealOnly(failed, { ...getHead(), method: 'POST' }, utf8('x'));
  const sameIncarnation = failed.session.confirmation!;
  assert.equal(OuterChannel.retryIsSafe('GET', failed, undefined), true);
  assert.equal(OuterChannel.retryIsSafe('POST', failed, sameIncarnation), false, 'same inner process: the request may have run');
  const before = { ...sameIncarnation, incarnation: failed.sentAt - 60_000 };
  assert.equal(OuterChannel.retryIsSafe('POST', failed, before), true, 'a process that started before the request never held the session');
  const after = { ...sameIncarnation, incarnation: failed.sentAt + 10 };
  assert.equal(OuterChannel.retryIsSafe('POST', failed, after), false, 'a process started after sending: the old one may have run it');
});

test('property 3: an exchange signed by alice cannot claim to be bob, and a request cannot move to another session', async () => {
  const p = await makePair();
  // alice's key, bob's name.
  const mallory = new OuterChannel({ user: { name: 'bob', key: p.alice.priv }, inner: p.inner.pub, policy: parseRekeyPolicy('destination') });
  const r = await roundTrip(mallory, p.endpoint, getHead(), null);
  assert.ok(r.kind === 'refused');
  assert.equal(r.refusal.code, 'SWS_ERR_UNKNOWN_USER');

  // A request sealed on alice's session, relabelled with bob's session ID, fails authentication.
  await roundTrip(p.alice_, p.endpoint, getHead(), null);
  await roundTrip(p.bob_, p.endpoint, getHead(), null);
  const aCall = await p.alice_.prepare(ORIGIN);
  const aWire = await sealOnly(aCall);
  const bobSession = [...p.endpoint.sessions.values()].find((s) => s.user === 'bob')!;
  const forged = aWire.slice();
  forged.set(bobSession.keys.sessionId, 6);
  const env = await p.endpoint.open([forged]);
  assert.ok(env.kind === 'envelope');
  const req = await env.readRequest();
  assert.ok(req && req.kind === 'refused');
  assert.equal(req.refusal.code, 'SWS_ERR_DECRYPT');
});

test('a message for another inner is refused (unknown key), and another version is refused', async () => {
  const p = await makePair();
  const other = await party('other-inner');
  const elsewhere = new InnerEndpoint({ keys: keyRing(other), clients: directory({ alice: p.alice.pub }), now: () => p.clock.now, incarnation: p.clock.now - 1000 });
  const call = await p.alice_.prepare(ORIGIN);
  const wire = await sealOnly(call);
  const r = await elsewhere.open([wire]);
  assert.ok(r.kind === 'refused');
  assert.equal(r.refusal.code, 'SWS_ERR_UNKNOWN_KEY');
  assert.equal(r.refusal.status, 422);
  const v2 = wire.slice();
  v2[3] = 2;
  const r2 = await p.endpoint.open([v2]);
  assert.ok(r2.kind === 'refused');
  assert.equal(r2.refusal.code, 'SWS_ERR_VERSION');
});

/** Runs an envelope through the inner fully; resolves to 'ok' only if a complete request came out. */
async function innerOutcome(endpoint: InnerEndpoint, wire: Uint8Array): Promise<string> {
  const env = await endpoint.open([wire]);
  if (env.kind === 'refused') return env.refusal.code;
  const req = await env.readRequest();
  if (req === null) return 'exchange-only';
  if (req.kind === 'refused') return req.refusal.code;
  try {
    await collect(req.body);
    return 'ok';
  } catch (e) {
    return (e as { code?: string }).code ?? 'error';
  }
}

test('property 10: flipping any single byte of an EXCHANGE ‖ REQUEST envelope is rejected', async () => {
  const p = await makePair();
  const call = await p.alice_.prepare(ORIGIN);
  const wire = await sealOnly(call, { ...getHead(), method: 'POST' }, utf8('small body'));
  for (let i = 0; i < wire.length; i++) {
    const bad = wire.slice();
    bad[i]! ^= 0x01;
    const outcome = await innerOutcome(p.endpoint, bad);
    assert.notEqual(outcome, 'ok', `flip at octet ${i} was accepted`);
    assert.match(outcome, /^SWS_ERR_/, `flip at octet ${i} gave ${outcome}`);
  }
  // Flips after the exchange broke only the request: the exchange itself was accepted once.
  assert.equal(await innerOutcome(p.endpoint, wire), 'SWS_ERR_REPLAY', 'the untouched envelope is now a replay');
});

test('property 10: flipping any single byte of a REQUEST on an established session is rejected', async () => {
  const p = await makePair();
  await roundTrip(p.alice_, p.endpoint, getHead(), null);
  const call = await p.alice_.prepare(ORIGIN);
  const wire = await sealOnly(call, { ...getHead(), method: 'POST' }, utf8('small body'));
  for (let i = 0; i < wire.length; i++) {
    const bad = wire.slice();
    bad[i]! ^= 0x80;
    const outcome = await innerOutcome(p.endpoint, bad);
    assert.notEqual(outcome, 'ok', `flip at octet ${i} was accepted`);
  }
  assert.equal(await innerOutcome(p.endpoint, wire), 'ok');
});

test('property 2: flipping any single byte of an EXCHANGE_CONFIRM ‖ RESPONSE is rejected by the outer', async () => {
  const p = await makePair();
  const first = await roundTrip(p.alice_, p.endpoint, getHead(), null);
  assert.ok(first.kind === 'ok');
  const n = first.respWire.length;
  for (let i = 0; i < n; i++) {
    // A fresh exchange each time: the flipped confirmation must not poison the next attempt.
    const q = await makePair();
    const call = await q.alice_.prepare(ORIGIN);
    const env = await q.endpoint.open([await sealOnly(call)]);
    assert.ok(env.kind === 'envelope');
    const req = await env.readRequest();
    assert.ok(req && req.kind === 'request');
    await collect(req.body);
    const resp = concatBytes(env.confirm!, await collect(req.respond({ status: 200, headers: [['x', 'y']] }, utf8('hello'))));
    if (i >= resp.length) break;
    resp[i]! ^= 0x01;
    let ok = false;
    try {
      const opened = await call.open('exchanged', [resp]);
      await collect(opened.body);
      ok = true;
    } catch (e) {
      assert.match((e as { code?: string }).code ?? '', /^SWS_ERR_/, `flip at ${i}: ${(e as Error).message}`);
    }
    assert.equal(ok, false, `flip at octet ${i} was accepted`);
  }
});

test('property 5: truncation at every octet of a multi-record request is detected', async () => {
  const p = await makePair({ recordSize: 64 });
  await roundTrip(p.alice_, p.endpoint, getHead(), null);
  const body = bytes(300, 3);
  const probe = await sealOnly(await p.alice_.prepare(ORIGIN), { ...getHead(), method: 'PUT' }, body);
  for (let cut = 0; cut < probe.length; cut++) {
    const call = await p.alice_.prepare(ORIGIN);
    const wire = await sealOnly(call, { ...getHead(), method: 'PUT' }, body);
    const outcome = await innerOutcome(p.endpoint, wire.subarray(0, cut));
    assert.notEqual(outcome, 'ok', `cut at ${cut} of ${wire.length} looked complete`);
  }
});

test('property 5: reordered, duplicated or dropped records are detected', async () => {
  const p = await makePair({ recordSize: 64 });
  await roundTrip(p.alice_, p.endpoint, getHead(), null);
  const body = bytes(400, 4);
  const sample = splitMessage(await sealOnly(await p.alice_.prepare(ORIGIN), { ...getHead(), method: 'PUT' }, body), 0);
  const n = sample.records.length;
  assert.ok(n >= 6, `needs several records, got ${n}`);
  const variants: [string, (r: Uint8Array[]) => Uint8Array[]][] = [];
  for (let i = 0; i + 1 < n; i++) variants.push([`swap ${i}/${i + 1}`, (r) => [...r.slice(0, i), r[i + 1]!, r[i]!, ...r.slice(i + 2)]]);
  for (let i = 0; i < n; i++) variants.push([`duplicate ${i}`, (r) => [...r.slice(0, i + 1), r[i]!, ...r.slice(i + 1)]]);
  for (let i = 0; i < n; i++) variants.push([`drop ${i}`, (r) => [...r.slice(0, i), ...r.slice(i + 1)]]);
  for (const [name, mutate] of variants) {
    const call = await p.alice_.prepare(ORIGIN);
    const m = splitMessage(await sealOnly(call, { ...getHead(), method: 'PUT' }, body), 0);
    const outcome = await innerOutcome(p.endpoint, concatBytes(m.header, ...mutate(m.records)));
    assert.notEqual(outcome, 'ok', `${name} was accepted`);
  }
});

test('property 5: an oversized record length fails before its octets are read or allocated', async () => {
  const p = await makePair();
  await roundTrip(p.alice_, p.endpoint, getHead(), null);
  const call = await p.alice_.prepare(ORIGIN);
  const wire = await sealOnly(call);
  const header = wire.subarray(0, ENVELOPE_HEADER_LENGTH);
  let pulled = 0;
  async function* hostile(): AsyncGenerator<Uint8Array> {
    yield header;
    yield new Uint8Array([0x7f, 0xff, 0xff, 0xff]);
    for (;;) {
      pulled++;
      yield new Uint8Array(1024);
    }
  }
  const env = await p.endpoint.open(hostile());
  assert.ok(env.kind === 'envelope');
  const req = await env.readRequest();
  assert.ok(req && req.kind === 'refused');
  assert.equal(req.refusal.code, 'SWS_ERR_OVERSIZE');
  assert.equal(req.refusal.status, 413);
  assert.ok(pulled <= 1, `pulled ${pulled} chunks after the length`);
});

test('malformed envelopes: empty, short, bad magic, non-zero flags, wrong wrapped length, trailing garbage', async () => {
  const p = await makePair();
  const call = await p.alice_.prepare(ORIGIN);
  const wire = await sealOnly(call);
  const cases: [string, Uint8Array, string][] = [
    ['empty', new Uint8Array(0), 'SWS_ERR_MALFORMED'],
    ['short header', wire.subarray(0, 20), 'SWS_ERR_TRUNCATED'],
    ['bad magic', Object.assign(wire.slice(), { 0: 0x58 }), 'SWS_ERR_MALFORMED'],
    ['flags', Object.assign(wire.slice(), { 5: 1 }), 'SWS_ERR_VERSION'],
    ['wrapped length', Object.assign(wire.slice(), { [38 + 32]: 0x02 }), 'SWS_ERR_MALFORMED'],
  ];
  for (const [name, bad, code] of cases) assert.equal(await innerOutcome(p.endpoint, bad), code, name);
  const fresh = await p.alice_.prepare('http://other.example');
  const good = await sealOnly(fresh);
  assert.equal(await innerOutcome(p.endpoint, concatBytes(good, utf8('x'))), 'SWS_ERR_MALFORMED', 'trailing garbage');
});

test('responses are accepted once and only for the request they answer', async () => {
  const p = await makePair();
  const first = await roundTrip(p.alice_, p.endpoint, getHead(), null);
  assert.ok(first.kind === 'ok');
  const a = await p.alice_.prepare(ORIGIN);
  const b = await p.alice_.prepare(ORIGIN);
  const envA = await p.endpoint.open([await sealOnly(a)]);
  const envB = await p.endpoint.open([await sealOnly(b)]);
  assert.ok(envA.kind === 'envelope' && envB.kind === 'envelope');
  const ra = await envA.readRequest();
  const rb = await envB.readRequest();
  assert.ok(ra?.kind === 'request' && rb?.kind === 'request');
  const respA = await collect(ra.respond({ status: 200, headers: [] }, utf8('for a')));
  const respB = await collect(rb.respond({ status: 200, headers: [] }, utf8('for b')));
  await assert.rejects(async () => collect((await b.open('ok', [respA])).body), { code: 'SWS_ERR_MALFORMED' });
  const ok = await a.open('ok', [respA]);
  assert.deepEqual(await collect(ok.body), utf8('for a'));
  await assert.rejects(a.open('ok', [respA]), { code: 'SWS_ERR_REPLAY' }, 'the same response twice');
  void respB;
});

test('session limits: an expired session answers exchange-needed and the outer re-keys', async () => {
  const p = await makePair({ endpoint: { policy: { sessionLifetimeMs: 1000 } } });
  await roundTrip(p.alice_, p.endpoint, getHead(), null);
  p.clock.now += 500;
  assert.equal((await roundTrip(p.alice_, p.endpoint, getHead(), null)).kind, 'ok');
  p.clock.now += 600;
  // The outer knows the granted expiry from the signed confirmation and re-keys on its own.
  const r = await roundTrip(p.alice_, p.endpoint, getHead(), null);
  assert.ok(r.kind === 'ok');
  assert.equal(r.call.decision.kind, 'exchange');
});

test('a request older than the maximum request age is refused (delayed release)', async () => {
  const p = await makePair();
  await roundTrip(p.alice_, p.endpoint, getHead(), null);
  const call = await p.alice_.prepare(ORIGIN);
  const wire = await sealOnly(call);
  p.clock.now += 61_000;
  assert.equal(await innerOutcome(p.endpoint, wire), 'SWS_ERR_STALE');
});

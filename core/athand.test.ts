/**
 * The small-message fast path (sealAtHand / openAtHand / respondAtHand): a message whose
 * octets are all in memory is sealed into one buffer and opened without a stream. It must put
 * the same octets on the wire as the streaming path and refuse exactly what the streaming path
 * refuses (docs/PROTOCOL.md §5; protocol.md properties 4, 5 and 10).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  concatBytes,
  encodeEnvelopeHeader,
  encodeResponseHead,
  ENVELOPE_HEADER_LENGTH,
  importAesKey,
  MessageTypes,
  newDirectionState,
  openResponseAtHand,
  randomBytes,
  readU32,
  sealMessage,
  sealSingleRecord,
  singleRecordPlaintext,
  utf8,
  type InnerEndpoint,
  type ResponseHead,
} from './index.ts';
import { collect, getHead, makePair, ORIGIN, roundTrip } from '../test/helpers/protocol.ts';

/** A direction state over raw key octets (each call is a fresh state with zeroed counters). */
async function dirOf(key: Uint8Array, iv: Uint8Array) {
  return newDirectionState(await importAesKey(key), iv);
}

const OK_HEAD: ResponseHead = { status: 200, headers: [['content-type', 'text/plain']] };

/** The inner's outcome for an envelope read whole: a refusal code, or 'ok' with what it saw. */
async function innerAtHand(endpoint: InnerEndpoint, wire: Uint8Array): Promise<{ outcome: string; body?: Uint8Array; path?: string }> {
  const env = await endpoint.openAtHand(wire);
  if (env.kind === 'refused') return { outcome: env.refusal.code };
  const req = await env.readRequest();
  if (req === null) return { outcome: 'exchange-only' };
  if (req.kind === 'refused') return { outcome: req.refusal.code };
  try {
    const body = req.bodyAtHand ?? (await collect(req.body));
    return { outcome: 'ok', body, path: req.head.path };
  } catch (e) {
    return { outcome: (e as { code?: string }).code ?? 'error' };
  }
}

test('sealSingleRecord puts on the wire exactly the octets sealMessage streams for the same message', async () => {
  const key = randomBytes(32);
  const iv = randomBytes(12);
  const sessionId = randomBytes(16);
  for (const n of [0, 1, 1000, 60_000]) {
    const body = n === 0 ? null : randomBytes(n);
    const header = encodeEnvelopeHeader(MessageTypes.response, sessionId, 7 + n, 1_700_000_000_000);
    const headBytes = encodeResponseHead(OK_HEAD);
    const pt = singleRecordPlaintext(headBytes, body);
    assert.ok(pt, `${n} octets fit one record`);
    const fast = await sealSingleRecord(await dirOf(key, iv), header, pt);
    const streamed = await collect(sealMessage(await dirOf(key, iv), header, headBytes, body));
    assert.deepEqual(fast, streamed, `${n} octets`);
  }
  // Too big for one record: the caller must stream.
  assert.equal(singleRecordPlaintext(encodeResponseHead(OK_HEAD), randomBytes(70_000)), null);
});

test('round trip on the fast path: sealAtHand → openAtHand → respondAtHand → openAtHand, bodies 0 B to 60 KiB', async () => {
  const p = await makePair();
  await roundTrip(p.alice_, p.endpoint, getHead(), null);
  for (const n of [0, 1, 1000, 60_000]) {
    const body = n === 0 ? null : randomBytes(n);
    const call = await p.alice_.prepare(ORIGIN);
    const wire = await call.sealAtHand({ ...getHead('/up'), method: 'POST' }, body);
    assert.ok(wire);
    assert.deepEqual(wire.subarray(0, 3), utf8('SWS'));
    const env = await p.endpoint.openAtHand(wire);
    assert.ok(env.kind === 'envelope');
    const req = await env.readRequest();
    assert.ok(req && req.kind === 'request');
    assert.equal(req.head.path, '/up');
    assert.deepEqual(req.bodyAtHand, body ?? new Uint8Array(0));
    const answer = await req.respondAtHand(OK_HEAD, body);
    assert.ok(answer);
    const opened = await call.openAtHand('ok', answer);
    assert.equal(opened.head.status, 200);
    assert.deepEqual(opened.body, body ?? new Uint8Array(0));
  }
});

test('the streaming and fast paths interoperate both ways', async () => {
  const p = await makePair();
  await roundTrip(p.alice_, p.endpoint, getHead(), null);
  const body = randomBytes(5000);
  // Streamed request, opened at hand; answer sealed at hand, read by the streaming opener.
  const a = await p.alice_.prepare(ORIGIN);
  const envA = await p.endpoint.openAtHand(await collect(a.seal(getHead('/a'), body)));
  assert.ok(envA.kind === 'envelope');
  const reqA = await envA.readRequest();
  assert.ok(reqA && reqA.kind === 'request');
  assert.deepEqual(reqA.bodyAtHand, body);
  const openedA = await a.open('ok', [(await reqA.respondAtHand(OK_HEAD, body))!]);
  assert.deepEqual(await collect(openedA.body), body);
  // Request sealed at hand, opened by the streaming opener; streamed answer read at hand.
  const b = await p.alice_.prepare(ORIGIN);
  const envB = await p.endpoint.open([(await b.sealAtHand(getHead('/b'), body))!]);
  assert.ok(envB.kind === 'envelope');
  const reqB = await envB.readRequest();
  assert.ok(reqB && reqB.kind === 'request');
  assert.deepEqual(await collect(reqB.body), body);
  assert.deepEqual((await b.openAtHand('ok', await collect(reqB.respond(OK_HEAD, body)))).body, body);
});

test('the inner at hand opens a multi-record request, and refuses it cut at every octet', async () => {
  const p = await makePair({ recordSize: 64 });
  await roundTrip(p.alice_, p.endpoint, getHead(), null);
  const body = randomBytes(300);
  const whole = await collect((await p.alice_.prepare(ORIGIN)).seal({ ...getHead(), method: 'PUT' }, body));
  const first = await innerAtHand(p.endpoint, whole);
  assert.equal(first.outcome, 'ok');
  assert.deepEqual(first.body, body);
  for (let cut = 0; cut < whole.length; cut++) {
    const wire = await collect((await p.alice_.prepare(ORIGIN)).seal({ ...getHead(), method: 'PUT' }, body));
    const r = await innerAtHand(p.endpoint, wire.subarray(0, cut));
    assert.equal(r.outcome, cut === 0 ? 'SWS_ERR_MALFORMED' : 'SWS_ERR_TRUNCATED', `cut at ${cut} of ${wire.length}`);
  }
});

test('the inner at hand refuses any single flipped bit, and the replay window moves only for the authentic request', async () => {
  const p = await makePair();
  await roundTrip(p.alice_, p.endpoint, getHead(), null);
  const call = await p.alice_.prepare(ORIGIN);
  const wire = (await call.sealAtHand({ ...getHead(), method: 'POST' }, utf8('small body')))!;
  for (let i = 0; i < wire.length; i++) {
    const bad = wire.slice();
    bad[i]! ^= 0x80;
    const r = await innerAtHand(p.endpoint, bad);
    assert.notEqual(r.outcome, 'ok', `flip at octet ${i} was accepted`);
    assert.match(r.outcome, /^SWS_ERR_/, `flip at octet ${i} gave ${r.outcome}`);
  }
  // None of the forgeries used up the sequence number; the genuine envelope is accepted once.
  assert.equal((await innerAtHand(p.endpoint, wire)).outcome, 'ok');
  assert.equal((await innerAtHand(p.endpoint, wire)).outcome, 'SWS_ERR_REPLAY');
});

test('octets after the final record are refused on both sides', async () => {
  const p = await makePair();
  await roundTrip(p.alice_, p.endpoint, getHead(), null);
  const call = await p.alice_.prepare(ORIGIN);
  const wire = (await call.sealAtHand(getHead(), null))!;
  assert.equal((await innerAtHand(p.endpoint, concatBytes(wire, new Uint8Array([0])))).outcome, 'SWS_ERR_MALFORMED');
  // A fresh request for the answer side.
  const call2 = await p.alice_.prepare(ORIGIN);
  const env = await p.endpoint.openAtHand((await call2.sealAtHand(getHead(), null))!);
  assert.ok(env.kind === 'envelope');
  const req = await env.readRequest();
  assert.ok(req && req.kind === 'request');
  const answer = (await req.respondAtHand(OK_HEAD, utf8('hi')))!;
  await assert.rejects(call2.openAtHand('ok', concatBytes(answer, new Uint8Array([0, 0, 0, 0]))), { code: 'SWS_ERR_MALFORMED' });
});

test('an answer is accepted at hand once, only for its request, only with key state ok', async () => {
  const p = await makePair();
  await roundTrip(p.alice_, p.endpoint, getHead(), null);
  const make = async () => {
    const call = await p.alice_.prepare(ORIGIN);
    const env = await p.endpoint.openAtHand((await call.sealAtHand(getHead(), null))!);
    assert.ok(env.kind === 'envelope');
    const req = await env.readRequest();
    assert.ok(req && req.kind === 'request');
    return { call, answer: (await req.respondAtHand(OK_HEAD, utf8('x')))! };
  };
  const a = await make();
  const b = await make();
  await assert.rejects(b.call.openAtHand('ok', a.answer), { code: 'SWS_ERR_MALFORMED' }, 'another request’s answer');
  assert.equal((await a.call.openAtHand('ok', a.answer)).head.status, 200);
  await assert.rejects(a.call.openAtHand('ok', a.answer), { code: 'SWS_ERR_REPLAY' }, 'the same answer twice');
  const c = await make();
  await assert.rejects(c.call.openAtHand('exchanged', c.answer), { code: 'SWS_ERR_MALFORMED' }, 'a key state that claims an exchange');
});

test('an envelope that starts with an exchange is opened at hand through the exchange path', async () => {
  const p = await makePair();
  const call = await p.alice_.prepare(ORIGIN);
  assert.ok(call.exchange, 'the first request carries the exchange');
  const wire = (await call.sealAtHand(getHead('/first'), null))!;
  const r = await innerAtHand(p.endpoint, wire);
  assert.equal(r.outcome, 'ok');
  assert.equal(r.path, '/first');
  assert.equal(p.endpoint.sessions.size, 1);
});

test('openResponseAtHand checks the record framing like the streaming opener', async () => {
  const key = randomBytes(32);
  const iv = randomBytes(12);
  const header = encodeEnvelopeHeader(MessageTypes.response, randomBytes(16), 3, Date.now());
  const sealed = await sealSingleRecord(await dirOf(key, iv), header, singleRecordPlaintext(encodeResponseHead(OK_HEAD), utf8('body'))!);
  const records = sealed.subarray(ENVELOPE_HEADER_LENGTH);
  assert.equal(readU32(records, 0) >>> 31, 1, 'one final record');
  const opened = await openResponseAtHand(await dirOf(key, iv), header, records);
  assert.deepEqual(opened.body, utf8('body'));
  // A length word larger than the limit is refused before anything is decrypted.
  const huge = records.slice();
  huge[0] = 0x80;
  huge[1] = 0x7f;
  await assert.rejects(openResponseAtHand(await dirOf(key, iv), header, huge), { code: 'SWS_ERR_OVERSIZE' });
  // The wrong key fails the tag and counts a failed open.
  const dir = await dirOf(randomBytes(32), iv);
  await assert.rejects(openResponseAtHand(dir, header, records), { code: 'SWS_ERR_DECRYPT' });
  assert.equal(dir.failedOpens, 1);
});

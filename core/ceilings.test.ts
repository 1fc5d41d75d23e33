/**
 * Property 6: the hard AEAD usage ceilings (core/limits.ts, docs/PROTOCOL.md §5) are enforced,
 * not just advised. The ceilings are constants; the seam is a direction's usage counters,
 * which are plain fields: a test starts a key just below a ceiling instead of sealing 2^23
 * records. Production limits are untouched.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  AEAD_CEILINGS,
  ByteReader,
  concatBytes,
  encodeEnvelopeHeader,
  importAesKey,
  MessageTypes,
  newDirectionState,
  randomBytes,
  RecordOpener,
  recordPlaintext,
  RecordSealer,
  sealRequest,
  type DirectionState,
} from './index.ts';
import { collect, getHead, makePair, ORIGIN, roundTrip, type Pair } from '../test/helpers/protocol.ts';

const HEADER = encodeEnvelopeHeader(MessageTypes.request, new Uint8Array(16).fill(7), 1, 1_767_225_600_000);

async function direction(): Promise<{ make: () => DirectionState }> {
  const raw = randomBytes(32);
  const iv = randomBytes(12);
  const key = await importAesKey(raw);
  return { make: () => newDirectionState(key, iv) };
}

test('record layer: the sealer refuses the record past AEAD_CEILINGS.records with SWS_ERR_SESSION_LIMIT', async () => {
  const d = (await direction()).make();
  d.records = AEAD_CEILINGS.records - 1;
  const sealer = new RecordSealer(d, HEADER);
  assert.equal((await sealer.sealRecords([new Uint8Array(5)], false)).length, 2, 'the last record under the ceiling is sealed');
  assert.equal(d.records, AEAD_CEILINGS.records);
  await assert.rejects(sealer.sealRecords([new Uint8Array(5)], true), { code: 'SWS_ERR_SESSION_LIMIT', name: 'SessionLimitError' });
  assert.equal(d.records, AEAD_CEILINGS.records, 'a refused record is not counted');
});

test('record layer: the sealer refuses plaintext past AEAD_CEILINGS.bytes', async () => {
  const d = (await direction()).make();
  d.bytes = AEAD_CEILINGS.bytes - 10;
  const sealer = new RecordSealer(d, HEADER);
  await sealer.sealRecords([new Uint8Array(10)], false);
  assert.equal(d.bytes, AEAD_CEILINGS.bytes, 'exactly at the ceiling is allowed');
  await assert.rejects(sealer.sealRecords([new Uint8Array(1)], true), { code: 'SWS_ERR_SESSION_LIMIT' });
});

test('record layer: the opener refuses a key at the record, byte or failed-open ceiling, releasing nothing', async () => {
  const dir = await direction();
  const wire = concatBytes(...(await new RecordSealer(dir.make(), HEADER).seal(new Uint8Array(32).fill(1), true)));
  // Control: a key below every ceiling opens it.
  const fresh = dir.make();
  const rec = await new RecordOpener(fresh, HEADER, new ByteReader([wire])).next();
  assert.ok(rec && rec.final && recordPlaintext(rec).length === 32);
  const cases: [string, (d: DirectionState) => void][] = [
    ['records', (d) => void (d.records = AEAD_CEILINGS.records)],
    ['bytes', (d) => void (d.bytes = AEAD_CEILINGS.bytes - 31)],
    ['failed opens', (d) => void (d.failedOpens = AEAD_CEILINGS.failedOpens)],
  ];
  for (const [name, wear] of cases) {
    const d = dir.make();
    wear(d);
    await assert.rejects(new RecordOpener(d, HEADER, new ByteReader([wire])).next(), { code: 'SWS_ERR_SESSION_LIMIT' }, name);
  }
});

/** Runs an envelope through the inner fully; resolves to 'ok' only if a complete request came out. */
async function innerOutcome(p: Pair, wire: Uint8Array): Promise<{ code: string; status?: number; keyState?: string }> {
  const env = await p.endpoint.open([wire]);
  if (env.kind === 'refused') return env.refusal;
  const req = await env.readRequest();
  if (req === null) return { code: 'exchange-only' };
  if (req.kind === 'refused') return req.refusal;
  try {
    await collect(req.body);
    return { code: 'ok' };
  } catch (e) {
    return { code: (e as { code?: string }).code ?? 'error' };
  }
}

/** A sealed REQUEST on alice's current session that bypasses the outer's own rotation (an outer that ignores the ceilings). */
async function rawRequest(p: Pair, body: Uint8Array | null = null, recordSize?: number): Promise<Uint8Array> {
  const s = p.alice_.rotation.current()!;
  const now = p.clock.now;
  const header = encodeEnvelopeHeader(MessageTypes.request, s.pending.sessionId, s.nextSequence(now), now);
  return collect(sealRequest(s.pending.keys.c2s, header, { ...getHead('/x'), method: body ? 'PUT' : 'GET' }, body, recordSize ? { recordSize } : {}));
}

test('inner: a session whose key reached a ceiling answers exchange-needed / SWS_ERR_SESSION_LIMIT and is dropped', async () => {
  const cases: [string, (p: Pair) => void][] = [
    ['c2s records', (p) => void (only(p).keys.c2s.records = AEAD_CEILINGS.records)],
    ['s2c records', (p) => void (only(p).keys.s2c.records = AEAD_CEILINGS.records)],
    ['bytes', (p) => void (only(p).keys.s2c.bytes = AEAD_CEILINGS.bytes)],
    ['failed opens', (p) => void (only(p).keys.c2s.failedOpens = AEAD_CEILINGS.failedOpens)],
  ];
  for (const [name, wear] of cases) {
    const p = await makePair();
    assert.equal((await roundTrip(p.alice_, p.endpoint, getHead(), null)).kind, 'ok');
    assert.equal((await innerOutcome(p, await rawRequest(p))).code, 'ok', `${name}: control`);
    wear(p);
    const r = await innerOutcome(p, await rawRequest(p));
    assert.deepEqual([r.code, r.status, r.keyState], ['SWS_ERR_SESSION_LIMIT', 409, 'exchange-needed'], name);
    assert.equal(p.endpoint.sessions.size, 0, `${name}: the worn session is gone`);
  }
});

test('inner: a request that crosses the record ceiling mid-message is cut off with SWS_ERR_SESSION_LIMIT', async () => {
  const p = await makePair();
  assert.equal((await roundTrip(p.alice_, p.endpoint, getHead(), null)).kind, 'ok');
  only(p).keys.c2s.records = AEAD_CEILINGS.records - 1;
  const r = await innerOutcome(p, await rawRequest(p, new Uint8Array(300).fill(9), 64));
  assert.equal(r.code, 'SWS_ERR_SESSION_LIMIT');
});

test('inner: a session key older than AEAD_CEILINGS.ageMs is refused even when the grant would allow longer', async () => {
  const day = AEAD_CEILINGS.ageMs;
  const p = await makePair({ endpoint: { policy: { sessionLifetimeMs: 2 * day, idleTimeoutMs: 2 * day } } });
  assert.equal((await roundTrip(p.alice_, p.endpoint, getHead(), null)).kind, 'ok');
  assert.ok(only(p).granted.expiresAt > p.clock.now + day, 'the grant alone would allow two days');
  p.clock.now += day - 1000;
  assert.equal((await innerOutcome(p, await rawRequest(p))).code, 'ok', 'just under the age ceiling');
  p.clock.now += 1000;
  const r = await innerOutcome(p, await rawRequest(p));
  assert.deepEqual([r.code, r.keyState], ['SWS_ERR_SESSION_LIMIT', 'exchange-needed']);
});

test('outer: a response on a key at its record ceiling is refused; the outer rotates before the ceiling on its own', async () => {
  const p = await makePair();
  assert.equal((await roundTrip(p.alice_, p.endpoint, getHead(), null)).kind, 'ok');
  const call = await p.alice_.prepare(ORIGIN);
  const env = await p.endpoint.open([await collect(call.seal(getHead(), null))]);
  assert.ok(env.kind === 'envelope');
  const req = await env.readRequest();
  assert.ok(req && req.kind === 'request');
  const resp = await collect(req.respond({ status: 200, headers: [] }, new Uint8Array(3)));
  call.session.pending.keys.s2c.records = AEAD_CEILINGS.records;
  await assert.rejects(call.open('ok', [resp]), { code: 'SWS_ERR_SESSION_LIMIT' });
  const next = await p.alice_.prepare(ORIGIN);
  assert.deepEqual(next.decision, { kind: 'exchange', reason: 'ceiling-records' });
});

function only(p: Pair) {
  const all = [...p.endpoint.sessions.values()];
  assert.equal(all.length, 1);
  return all[0]!;
}

test('inner: sweepSessions drops idle and spent sessions without a request on them, and keeps the others', async () => {
  const p = await makePair({ endpoint: { policy: { idleTimeoutMs: 60_000, maxRequestsPerSession: 2 } } });
  assert.equal((await roundTrip(p.alice_, p.endpoint, getHead(), null)).kind, 'ok');
  p.clock.now += 30_000;
  assert.equal((await roundTrip(p.bob_, p.endpoint, getHead(), null)).kind, 'ok');
  assert.equal((await roundTrip(p.bob_, p.endpoint, getHead(), null)).kind, 'ok');
  assert.equal(p.endpoint.sessions.size, 2);
  assert.equal(p.endpoint.sweepSessions(), 1, "bob's session used up its 2 requests");
  assert.deepEqual([...p.endpoint.sessions.values()].map((s) => s.user), ['alice']);
  p.clock.now += 30_000;
  assert.equal(p.endpoint.sweepSessions(), 0, 'alice idle exactly the timeout: still hers');
  p.clock.now += 1;
  assert.equal(p.endpoint.sweepSessions(), 1, 'alice idle past the timeout');
  assert.equal(p.endpoint.sessions.size, 0);
  // Her next request exchanges again, as after any expiry.
  assert.equal((await roundTrip(p.alice_, p.endpoint, getHead(), null)).kind, 'ok');
  assert.equal(p.endpoint.sessions.size, 1);
});

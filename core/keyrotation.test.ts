// Patent claim 8 (S101–S105), protocol.md properties 6 and 7: when the outer exchanges a key.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { prng } from '../test/helpers/prng.ts';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { AEAD_CEILINGS } from './limits.ts';
import {
  DEFAULT_REKEY_POLICY,
  KeyRotation,
  REKEY_MARGIN,
  decideRekey,
  formatRekeyPolicy,
  parseRekeyPolicy,
  type ExchangeReason,
  type RekeyDecision,
  type RekeyPolicy,
  type SessionUsage,
} from './keyrotation.ts';
import { ErrorCodes, SwsError } from './errors.ts';

const T0 = 1_700_000_000_000;
const A = 'https://a.example:443';
const B = 'https://b.example:443';
const C = 'http://c.example:8080';

const exchange = (reason: ExchangeReason): RekeyDecision => ({ kind: 'exchange', reason });
const REUSE: RekeyDecision = { kind: 'reuse', reason: 'within-policy' };

function usage(over: Partial<SessionUsage> = {}): SessionUsage {
  return { establishedAt: T0, requests: 1, bytes: 0, records: 0, failedOpens: 0, lastDestination: A, ...over };
}

const decide = (spec: string, u: SessionUsage | undefined, destination = A, now = T0 + 1000): RekeyDecision =>
  decideRekey(parseRekeyPolicy(spec), u, { destination, now });

// ---------------------------------------------------------------------------------------
// The --rekey policy string
// ---------------------------------------------------------------------------------------

test('policy: each trigger parses alone', () => {
  const cases: [string, RekeyPolicy['triggers']][] = [
    ['request', [{ kind: 'request' }]],
    ['destination', [{ kind: 'destination' }]],
    ['count:100', [{ kind: 'count', requests: 100 }]],
    ['time:300', [{ kind: 'time', seconds: 300 }]],
    ['bytes:1048576', [{ kind: 'bytes', bytes: 1048576 }]],
    ['count:9007199254740992', [{ kind: 'count', requests: 2 ** 53 }]],
  ];
  for (const [spec, triggers] of cases) assert.deepEqual(parseRekeyPolicy(spec).triggers, triggers, spec);
});

test('policy: any combination parses, in canonical order, spaces around items ignored', () => {
  const p = parseRekeyPolicy(' bytes:10 , time:5,destination,count:3 ,request');
  assert.deepEqual(p.triggers, [
    { kind: 'request' },
    { kind: 'destination' },
    { kind: 'count', requests: 3 },
    { kind: 'time', seconds: 5 },
    { kind: 'bytes', bytes: 10 },
  ]);
  assert.ok(Object.isFrozen(p) && Object.isFrozen(p.triggers) && Object.isFrozen(p.triggers[0]));
});

test('policy: the default is the patent S102 test (destination), frozen', () => {
  assert.deepEqual(DEFAULT_REKEY_POLICY.triggers, [{ kind: 'destination' }]);
  assert.equal(formatRekeyPolicy(DEFAULT_REKEY_POLICY), 'destination');
  assert.ok(Object.isFrozen(DEFAULT_REKEY_POLICY.triggers));
});

test('policy: bad specs are rejected with SWS_ERR_POLICY, naming the bad item and listing what is allowed', () => {
  const bad: [spec: string, named: string][] = [
    ['', 'empty'],
    ['   ', 'empty'],
    [',', 'item 1 is empty'],
    ['destination,', 'item 2 is empty'],
    [',destination', 'item 1 is empty'],
    ['destination,,count:5', 'item 2 is empty'],
    ['destination, ,count:5', 'item 2 is empty'],
    ['count:0', '"count:0"'],
    ['time:0', '"time:0"'],
    ['bytes:0', '"bytes:0"'],
    ['count:-1', '"count:-1"'],
    ['count:+5', '"count:+5"'],
    ['count:1.5', '"count:1.5"'],
    ['time:2.5', '"time:2.5"'],
    ['count:1e3', '"count:1e3"'],
    ['bytes:0x10', '"bytes:0x10"'],
    ['count: 5', '"count: 5"'],
    ['count:', '"count:"'],
    ['count', '"count"'],
    ['time', '"time"'],
    ['count:9007199254740993', '"count:9007199254740993"'],
    ['bytes:99999999999999999999999999', '"bytes:99999999999999999999999999"'],
    ['count:NaN', '"count:NaN"'],
    ['count:Infinity', '"count:Infinity"'],
    ['destination,destination', 'item 2 "destination"'],
    ['count:5,count:6', 'item 2 "count:6"'],
    ['hourly', '"hourly"'],
    ['Destination', '"Destination"'],
    ['request:1', '"request:1"'],
    ['destination:x', '"destination:x"'],
    ['destination;count:5', '"destination;count:5"'],
    ['destination,never', 'item 2 "never"'],
    ['x\u0000y', '"x\\u0000y"'],
  ];
  for (const [spec, named] of bad) {
    assert.throws(
      () => parseRekeyPolicy(spec),
      (err: unknown) => {
        assert.ok(err instanceof SwsError, JSON.stringify(spec));
        assert.equal(err.code, ErrorCodes.POLICY, JSON.stringify(spec));
        assert.ok(err.message.includes(named), `${JSON.stringify(spec)}: ${err.message}`);
        assert.ok(err.message.includes('count:N') && err.message.includes('time:SECONDS'), err.message);
        return true;
      },
    );
  }
});

test('policy: an echoed item is length-capped', () => {
  assert.throws(
    () => parseRekeyPolicy('x'.repeat(5000)),
    (err: SwsError) => err.code === ErrorCodes.POLICY && err.message.length < 400,
  );
});

test('policy: the canonical form round-trips', () => {
  const cases: [spec: string, canonical: string][] = [
    ['destination', 'destination'],
    ['request', 'request'],
    ['time:60,count:10', 'count:10,time:60'],
    ['bytes:1000 , destination', 'destination,bytes:1000'],
    ['bytes:1,time:2,count:3,destination,request', 'request,destination,count:3,time:2,bytes:1'],
    ['count:007', 'count:7'],
  ];
  for (const [spec, canonical] of cases) {
    const p = parseRekeyPolicy(spec);
    assert.equal(formatRekeyPolicy(p), canonical);
    assert.deepEqual(parseRekeyPolicy(formatRekeyPolicy(p)), p);
  }
});

test('policy: format rejects a hand-built policy that parse would reject', () => {
  const bad: RekeyPolicy[] = [
    { triggers: [] },
    { triggers: [{ kind: 'count', requests: 0 }] },
    { triggers: [{ kind: 'time', seconds: 1.5 }] },
    { triggers: [{ kind: 'bytes', bytes: Number.NaN }] },
    { triggers: [{ kind: 'count', requests: 2 ** 60 }] },
    { triggers: [{ kind: 'destination' }, { kind: 'destination' }] },
  ];
  for (const p of bad) assert.throws(() => formatRekeyPolicy(p), { code: ErrorCodes.POLICY });
});

// ---------------------------------------------------------------------------------------
// decideRekey: S101–S105 as a pure function
// ---------------------------------------------------------------------------------------

test('S101: the first request exchanges, whatever the policy', () => {
  for (const spec of ['destination', 'request', 'count:1000', 'time:3600', 'bytes:1000000']) {
    assert.deepEqual(decide(spec, undefined), exchange('first-request'), spec);
  }
});

test('S102 → S105: the same destination reuses the key', () => {
  assert.deepEqual(decide('destination', usage({ requests: 500 })), REUSE);
  assert.deepEqual(decideRekey(DEFAULT_REKEY_POLICY, usage(), { destination: A, now: T0 + 1 }), REUSE);
});

test('S102 → S103: another destination exchanges', () => {
  assert.deepEqual(decide('destination', usage(), B), exchange('destination-changed'));
  assert.deepEqual(decide('destination', usage({ lastDestination: B }), A), exchange('destination-changed'));
});

test('S102: a key that carried no request yet has no previous destination', () => {
  assert.deepEqual(decide('destination', usage({ requests: 0, lastDestination: '' }), B), REUSE);
});

test('replaceable S102 "every request": each request exchanges (most secure, slowest)', () => {
  assert.deepEqual(decide('request', usage()), exchange('every-request'));
  assert.deepEqual(decide('request', usage(), B), exchange('every-request'));
});

test('replaceable S102 "count:N": a key serves at most N requests', () => {
  assert.deepEqual(decide('count:3', usage({ requests: 2 })), REUSE);
  assert.deepEqual(decide('count:3', usage({ requests: 3 })), exchange('request-count'));
  assert.deepEqual(decide('count:1', usage({ requests: 1 })), exchange('request-count'));
  // count alone ignores the destination
  assert.deepEqual(decide('count:3', usage({ requests: 1 }), B), REUSE);
});

test('replaceable S102 "time:S": no request goes on a key S seconds old', () => {
  assert.deepEqual(decide('time:60', usage(), A, T0 + 59_999), REUSE);
  assert.deepEqual(decide('time:60', usage(), A, T0 + 60_000), exchange('time-elapsed'));
  assert.deepEqual(decide('time:60', usage(), B, T0 + 1), REUSE);
});

test('replaceable S102 "bytes:N": once N bytes were used, the next request rekeys', () => {
  assert.deepEqual(decide('bytes:1000', usage({ bytes: 999 })), REUSE);
  assert.deepEqual(decide('bytes:1000', usage({ bytes: 1000 })), exchange('byte-count'));
  assert.deepEqual(decide('bytes:1000', usage({ bytes: 5000 })), exchange('byte-count'));
});

test('triggers combine: any one fires, and the first in canonical order names the reason', () => {
  const spec = 'bytes:1000,time:60,count:3,destination';
  const young = T0 + 1000;
  assert.deepEqual(decide(spec, usage(), A, young), REUSE);
  assert.deepEqual(decide(spec, usage(), B, young), exchange('destination-changed'));
  assert.deepEqual(decide(spec, usage({ requests: 3 }), A, young), exchange('request-count'));
  assert.deepEqual(decide(spec, usage(), A, T0 + 60_000), exchange('time-elapsed'));
  assert.deepEqual(decide(spec, usage({ bytes: 1000 }), A, young), exchange('byte-count'));
  assert.deepEqual(decide(spec, usage({ requests: 3, bytes: 1000 }), B, T0 + 60_000), exchange('destination-changed'));
  assert.deepEqual(decide(`request,${spec}`, usage(), A, young), exchange('every-request'));
});

test('property 6: AEAD_CEILINGS are the per-key limits of RFC 8446 §5.5 and the CFRG aead-limits draft', () => {
  assert.deepEqual(
    { ...AEAD_CEILINGS },
    { records: 2 ** 23, bytes: 2 ** 36, failedOpens: 2 ** 20, ageMs: 24 * 3600 * 1000 },
  );
});

test('property 6: each ceiling forces an exchange under policy destination with the same destination', () => {
  const cases: [ExchangeReason, (v: number) => SessionUsage, number, number][] = [
    ['ceiling-records', (v) => usage({ records: v }), AEAD_CEILINGS.records, REKEY_MARGIN.records],
    ['ceiling-bytes', (v) => usage({ bytes: v }), AEAD_CEILINGS.bytes, REKEY_MARGIN.bytes],
    ['ceiling-failures', (v) => usage({ failedOpens: v }), AEAD_CEILINGS.failedOpens, REKEY_MARGIN.failedOpens],
    ['ceiling-age', (v) => usage({ establishedAt: T0 - v }), AEAD_CEILINGS.ageMs, REKEY_MARGIN.ageMs],
  ];
  for (const [reason, at, ceiling, margin] of cases) {
    const soft = ceiling - margin;
    assert.deepEqual(decide('destination', at(soft - 1), A, T0), REUSE, `${reason} below`);
    assert.deepEqual(decide('destination', at(soft), A, T0), exchange(reason), `${reason} at the rotation point`);
    assert.deepEqual(decide('destination', at(ceiling), A, T0), exchange(reason), `${reason} at the hard ceiling`);
    assert.deepEqual(decide('destination', at(ceiling * 4), A, T0), exchange(reason), `${reason} past it`);
  }
});

test('property 6: ceilings are checked before the policy, whatever it says', () => {
  const worn = usage({ records: AEAD_CEILINGS.records });
  assert.deepEqual(decide('destination', worn, B), exchange('ceiling-records'));
  assert.deepEqual(decide('request', worn), exchange('ceiling-records'));
  assert.deepEqual(decide('count:1', worn), exchange('ceiling-records'));
  assert.deepEqual(decide('bytes:1', usage({ bytes: AEAD_CEILINGS.bytes })), exchange('ceiling-bytes'));
});

test('granted limits from the signed confirmation are hard: maxRequests, maxBytes, expiresAt', () => {
  const granted = { maxRequests: 10, maxBytes: 5000, expiresAt: T0 + 60_000 };
  const now = T0 + 1000;
  assert.deepEqual(decide('destination', usage({ requests: 9, bytes: 4999, granted }), A, now), REUSE);
  assert.deepEqual(decide('destination', usage({ requests: 10, granted }), A, now), exchange('granted-limit'));
  assert.deepEqual(decide('destination', usage({ bytes: 5000, granted }), A, now), exchange('granted-limit'));
  const edge = granted.expiresAt - REKEY_MARGIN.grantExpiryMs;
  assert.deepEqual(decide('destination', usage({ granted }), A, edge - 1), REUSE);
  assert.deepEqual(decide('destination', usage({ granted }), A, edge), exchange('granted-limit'));
  // checked before the policy, after the AEAD ceilings
  assert.deepEqual(decide('destination', usage({ requests: 10, granted }), B, now), exchange('granted-limit'));
  assert.deepEqual(
    decide('destination', usage({ requests: 10, failedOpens: AEAD_CEILINGS.failedOpens, granted }), A, now),
    exchange('ceiling-failures'),
  );
});

test('fail closed: a counter that is not a number, or a clock before establishedAt, exchanges', () => {
  assert.deepEqual(decide('destination', usage({ records: Number.NaN })), exchange('ceiling-records'));
  assert.deepEqual(decide('destination', usage({ bytes: Number.NaN })), exchange('ceiling-bytes'));
  assert.deepEqual(decide('destination', usage({ failedOpens: Number.NaN })), exchange('ceiling-failures'));
  assert.deepEqual(decide('destination', usage({ establishedAt: Number.NaN })), exchange('ceiling-age'));
  assert.deepEqual(decide('destination', usage(), A, T0 - 1), exchange('ceiling-age'));
  assert.deepEqual(decide('count:5', usage({ requests: Number.NaN })), exchange('request-count'));
  const granted = { maxRequests: Number.NaN, maxBytes: 10, expiresAt: T0 + 60_000 };
  assert.deepEqual(decide('destination', usage({ granted })), exchange('granted-limit'));
});

// ---------------------------------------------------------------------------------------
// KeyRotation: the coordinator (property 7)
// ---------------------------------------------------------------------------------------

type Mutable<T> = { -readonly [K in keyof T]: T[K] };
interface Session {
  readonly id: number;
  readonly usage: Mutable<SessionUsage>;
}

interface Deferred {
  resolve(): void;
  reject(err: unknown): void;
}

/**
 * A fake outer: `exchange` creates a numbered session (resolved at once, or held until the
 * test releases it); `send` records usage on the session as the sidecar would.
 */
function harness(policy: RekeyPolicy | string, opts: { hold?: boolean; granted?: SessionUsage['granted'] } = {}) {
  const h = {
    clock: T0,
    reasons: [] as ExchangeReason[],
    sessions: [] as Session[],
    held: [] as Deferred[],
    failWith: undefined as unknown,
    rot: undefined as unknown as KeyRotation<Session>,
    send(s: Session, destination: string, bytes = 0): void {
      s.usage.requests++;
      s.usage.lastDestination = destination;
      s.usage.bytes += bytes;
      s.usage.records += 2;
    },
    /** Releases held exchange i (in start order, 0-based). */
    release(i: number): void {
      h.held[i]!.resolve();
    },
  };
  h.rot = new KeyRotation<Session>({
    policy: typeof policy === 'string' ? parseRekeyPolicy(policy) : policy,
    now: () => h.clock,
    usageOf: (s) => s.usage,
    exchange: (reason) => {
      h.reasons.push(reason);
      const session: Session = {
        id: h.sessions.length + 1,
        usage: { establishedAt: h.clock, requests: 0, bytes: 0, records: 0, failedOpens: 0, lastDestination: '' },
      };
      if (opts.granted) session.usage.granted = opts.granted;
      h.sessions.push(session);
      const failure = h.failWith;
      if (!opts.hold) return failure === undefined ? Promise.resolve(session) : Promise.reject(failure);
      return new Promise<Session>((resolve, reject) => {
        h.held.push({ resolve: () => (failure === undefined ? resolve(session) : reject(failure)), reject });
      });
    },
  });
  return h;
}

/** Lets every pending promise reaction run (one event-loop turn; no delay). */
const settle = () => nextTurn();

test('S101 → S103 → S105 → S102: first request exchanges, same destination reuses, new destination exchanges', async () => {
  const h = harness('destination');
  assert.equal(h.rot.current(), undefined);

  const r1 = await h.rot.acquire(A);
  assert.deepEqual(r1.decision, exchange('first-request'));
  assert.equal(r1.shared, false);
  assert.equal(h.rot.current(), r1.session);
  h.send(r1.session, A);

  const r2 = await h.rot.acquire(A);
  assert.deepEqual(r2.decision, REUSE);
  assert.equal(r2.session, r1.session);
  h.send(r2.session, A);

  const r3 = await h.rot.acquire(B);
  assert.deepEqual(r3.decision, exchange('destination-changed'));
  assert.notEqual(r3.session, r1.session);
  assert.equal(h.rot.current(), r3.session);
  assert.deepEqual(h.reasons, ['first-request', 'destination-changed']);
});

test('S102 compares with the previous acquire even before the sidecar records usage', async () => {
  const h = harness('destination');
  const r1 = await h.rot.acquire(A); // sidecar has not called send() yet
  const r2 = await h.rot.acquire(B);
  assert.deepEqual(r2.decision, exchange('destination-changed'));
  assert.notEqual(r1.session, r2.session);
});

test('count:N counts acquires handed out, so concurrent requests cannot overrun N', async () => {
  const h = harness('count:2');
  const results = await Promise.all([A, A, A, A, A].map((d) => h.rot.acquire(d)));
  const perSession = new Map<Session, number>();
  for (const r of results) perSession.set(r.session, (perSession.get(r.session) ?? 0) + 1);
  assert.deepEqual([...perSession.values()], [2, 2, 1]);
  assert.equal(h.reasons.length, 3);
});

test('time:S and ceilings through the coordinator: the injected clock and the sidecar usage force a rekey', async () => {
  const h = harness('destination,time:60');
  const r1 = await h.rot.acquire(A);
  h.clock += 59_999;
  assert.deepEqual((await h.rot.acquire(A)).decision, REUSE);
  h.clock += 1;
  const r3 = await h.rot.acquire(A);
  assert.deepEqual(r3.decision, exchange('time-elapsed'));
  r3.session.usage.records = AEAD_CEILINGS.records;
  const r4 = await h.rot.acquire(A);
  assert.deepEqual(r4.decision, exchange('ceiling-records'));
  assert.equal(new Set([r1.session, r3.session, r4.session]).size, 3);
});

test('property 7: 50 concurrent acquires share exactly 1 exchange', async () => {
  const h = harness('destination', { hold: true });
  const all = Promise.all(Array.from({ length: 50 }, () => h.rot.acquire(A)));
  await settle();
  assert.equal(h.reasons.length, 1);
  h.release(0);
  const results = await all;
  assert.equal(h.reasons.length, 1);
  assert.ok(results.every((r) => r.session === h.sessions[0]));
  assert.ok(results.every((r) => r.decision.kind === 'exchange' && r.decision.reason === 'first-request'));
  assert.equal(results.filter((r) => !r.shared).length, 1);
  assert.equal(results.filter((r) => r.shared).length, 49);
  assert.equal(h.rot.current(), h.sessions[0]);
});

test('property 7: under "request" concurrent acquires do not share: each gets its own key', async () => {
  const h = harness('request');
  const results = await Promise.all(Array.from({ length: 5 }, () => h.rot.acquire(A)));
  assert.equal(new Set(results.map((r) => r.session)).size, 5);
  assert.equal(h.reasons.length, 5);
  assert.ok(results.every((r) => !r.shared));
});

test('S104: a failed exchange rejects every waiter with the same error, then the next acquire retries', async () => {
  const h = harness('destination', { hold: true });
  const boom = new Error('inner said exchange-failed');
  h.failWith = boom;
  const all = Array.from({ length: 50 }, () => h.rot.acquire(A));
  await settle();
  h.release(0);
  const outcomes = await Promise.allSettled(all);
  assert.ok(outcomes.every((o) => o.status === 'rejected' && o.reason === boom));
  assert.equal(h.reasons.length, 1);
  assert.equal(h.rot.current(), undefined);

  h.failWith = undefined;
  const retry = h.rot.acquire(A);
  await settle();
  assert.equal(h.reasons.length, 2, 'the failure was not cached');
  h.release(1);
  const r = await retry;
  assert.deepEqual(r.decision, exchange('first-request'));
  assert.equal(r.session, h.sessions[1]);
});

test('S104: a failed rekey keeps the old key for requests it still serves, and retries on the next acquire', async () => {
  const h = harness('destination');
  const r1 = await h.rot.acquire(A);
  h.failWith = new Error('down');
  await assert.rejects(h.rot.acquire(B), /down/);
  assert.equal(h.rot.current(), r1.session);
  assert.equal((await h.rot.acquire(A)).session, r1.session);
  h.failWith = undefined;
  const r3 = await h.rot.acquire(B);
  assert.deepEqual(r3.decision, exchange('destination-changed'));
  assert.deepEqual(h.reasons, ['first-request', 'destination-changed', 'destination-changed']);
});

test('S104: an exchange function that throws synchronously rejects the acquire; the next acquire retries', async () => {
  const err = new Error('sync');
  let calls = 0;
  const rot = new KeyRotation<string>({
    policy: DEFAULT_REKEY_POLICY,
    now: () => T0,
    usageOf: () => usage(),
    exchange: () => {
      calls++;
      if (calls === 1) throw err;
      return Promise.resolve('s2');
    },
  });
  await assert.rejects(rot.acquire(A), (e) => e === err);
  assert.equal((await rot.acquire(A)).session, 's2');
});

test('a request that may reuse the key does not wait for an exchange in flight for another destination', async () => {
  const h = harness('destination', { hold: true });
  const first = h.rot.acquire(A);
  await settle();
  h.release(0);
  const s1 = (await first).session;

  const toB = h.rot.acquire(B); // starts exchange #2, held
  await settle();
  assert.equal(h.reasons.length, 2);
  const toA = await h.rot.acquire(A); // resolves while #2 is still held
  assert.equal(toA.session, s1);
  assert.deepEqual(toA.decision, REUSE);

  h.release(1);
  const rb = await toB;
  assert.equal(rb.session, h.sessions[1]);
  assert.equal(h.rot.current(), h.sessions[1]);
});

test('invalidate: the inner lost the session, the next acquire exchanges with reason session-lost', async () => {
  const h = harness('destination');
  const r1 = await h.rot.acquire(A);
  h.rot.invalidate(r1.session, 'session-lost');
  assert.equal(h.rot.current(), undefined);
  const r2 = await h.rot.acquire(A);
  assert.deepEqual(r2.decision, exchange('session-lost'));
  assert.notEqual(r2.session, r1.session);
  // and once replaced, the next request reuses as usual
  assert.deepEqual((await h.rot.acquire(A)).decision, REUSE);
});

test('invalidate of an old session does not drop the newer one', async () => {
  const h = harness('destination');
  const old = (await h.rot.acquire(A)).session;
  const newer = (await h.rot.acquire(B)).session;
  h.rot.invalidate(old, 'session-lost'); // a late exchange-needed about the old key
  assert.equal(h.rot.current(), newer);
  const r = await h.rot.acquire(B);
  assert.deepEqual(r.decision, REUSE);
  assert.equal(r.session, newer);
  assert.equal(h.reasons.length, 2);
});

test('invalidate while an exchange to another origin is in flight: the next request to the old origin exchanges (session-lost) in parallel', async () => {
  const h = harness('destination', { hold: true });
  const p1 = h.rot.acquire(A);
  await settle();
  h.release(0);
  const old = (await p1).session;

  const toB = h.rot.acquire(B); // exchange #2 in flight, for B
  await settle();
  h.rot.invalidate(old, 'session-lost');
  assert.equal(h.rot.current(), undefined);
  const toA = h.rot.acquire(A); // #2's key will serve B: A gets its own
  await settle();
  assert.deepEqual(h.reasons, ['first-request', 'destination-changed', 'session-lost']);
  h.release(2);
  const ra = await toA;
  assert.deepEqual(ra.decision, exchange('session-lost'));
  assert.equal(ra.session, h.sessions[2]);
  h.release(1); // #2 resolves after the invalidate and after #3
  const rb = await toB;
  assert.equal(rb.session, h.sessions[1]);
  assert.equal(h.rot.current(), h.sessions[2], 'the exchange started last stays current');
});

test('invalidate while an exchange is in flight, same destination: the waiter uses the new session, shared', async () => {
  const h = harness('destination', { hold: true });
  const p1 = h.rot.acquire(A);
  await settle();
  h.release(0);
  const old = (await p1).session;
  old.usage.records = AEAD_CEILINGS.records; // forces exchange #2
  const starter = h.rot.acquire(A);
  await settle();
  h.rot.invalidate(old, 'session-lost');
  const waiter = h.rot.acquire(A);
  await settle();
  h.release(1);
  const [rs, rw] = await Promise.all([starter, waiter]);
  assert.deepEqual(rs.decision, exchange('ceiling-records'));
  assert.equal(rw.session, rs.session);
  assert.deepEqual(rw.decision, exchange('ceiling-records'));
  assert.equal(rw.shared, true);
  assert.equal(h.reasons.length, 2);
});

test('overlapping exchanges: the one started last stays current, whatever order they finish in', async () => {
  const h = harness('request', { hold: true });
  const all = Promise.all(Array.from({ length: 3 }, () => h.rot.acquire(A)));
  await settle();
  assert.equal(h.reasons.length, 3, 'under "request" nothing is shared: three exchanges in flight');
  h.release(2);
  await settle();
  assert.equal(h.rot.current(), h.sessions[2]);
  h.release(0);
  h.release(1);
  const results = await all;
  assert.equal(h.rot.current(), h.sessions[2], 'older exchanges finishing later do not replace it');
  assert.deepEqual(
    results.map((r) => r.session.id),
    [1, 2, 3],
  );
});

test('property 7: concurrent first requests to two origins under destination make one exchange per origin', async () => {
  const h = harness('destination', { hold: true });
  const all = Promise.all([A, B, A, B, A].map((d) => h.rot.acquire(d)));
  await settle();
  assert.deepEqual(h.reasons, ['first-request', 'first-request']);
  h.release(1);
  h.release(0);
  const results = await all;
  assert.deepEqual(
    results.map((r) => [r.session.id, r.shared]),
    [
      [1, false],
      [2, false],
      [1, true],
      [2, true],
      [1, true],
    ],
  );
  assert.equal(h.rot.current(), h.sessions[1]);
});

test('a joiner the new key cannot serve (granted maxRequests) gets an exchange of its own, never waits again', async () => {
  const h = harness('destination', { hold: true, granted: { maxRequests: 2, maxBytes: 2 ** 40, expiresAt: T0 + 3_600_000 } });
  const all = Promise.all(Array.from({ length: 4 }, () => h.rot.acquire(A)));
  await settle();
  assert.equal(h.reasons.length, 1, 'the policy alone would let all four share');
  h.release(0);
  await settle();
  // the inner granted 2 requests per key: the starter and the first joiner fit, the other two start their own
  assert.deepEqual(h.reasons, ['first-request', 'granted-limit', 'granted-limit']);
  h.release(1);
  h.release(2);
  const results = await all;
  assert.deepEqual(
    results.map((r) => [r.session.id, r.shared, r.decision.kind === 'exchange' ? r.decision.reason : 'reuse']),
    [
      [1, false, 'first-request'],
      [1, true, 'first-request'],
      [2, false, 'granted-limit'],
      [3, false, 'granted-limit'],
    ],
  );
});


for (const spec of ['destination', 'destination,count:3', 'count:4', 'request']) {
  test(`property 7, random schedule (${spec}): every acquire settles, keys never overrun the policy`, async () => {
    const rand = prng(0x5eed + spec.length);
    const h = harness(spec, { hold: true });
    const policy = parseRekeyPolicy(spec);
    const count = policy.triggers.find((t) => t.kind === 'count');
    const perKey = count?.kind === 'count' ? count.requests : policy.triggers.some((t) => t.kind === 'request') ? 1 : Infinity;
    const byDestination = policy.triggers.some((t) => t.kind === 'destination');
    const hands = new Map<Session, string[]>();
    const released = new Set<number>();
    const destinations = [A, B, C];

    const all: Promise<void>[] = [];
    const releaseOne = () => {
      const open = h.held.map((_, i) => i).filter((i) => !released.has(i));
      if (open.length === 0) return;
      const i = open[Math.floor(rand() * open.length)]!;
      released.add(i);
      h.release(i);
    };
    for (let i = 0; i < 300; i++) {
      const d = destinations[Math.floor(rand() * (rand() < 0.7 ? 1 : 3))]!;
      all.push(
        h.rot.acquire(d).then(({ session }) => {
          hands.set(session, [...(hands.get(session) ?? []), d]);
          h.send(session, d, 100);
        }),
      );
      if (rand() < 0.3) releaseOne();
      if (rand() < 0.2) await settle();
    }
    let done = false;
    const finished = Promise.all(all).then(() => {
      done = true;
    });
    for (let turns = 0; !done; turns++) {
      assert.ok(turns < 10_000, 'every acquire must settle');
      releaseOne();
      await settle();
    }
    await finished;

    assert.equal([...hands.values()].reduce((n, ds) => n + ds.length, 0), 300);
    for (const [session, ds] of hands) {
      assert.ok(ds.length <= perKey, `session ${session.id} served ${ds.length} > ${perKey}`);
      if (byDestination) assert.equal(new Set(ds).size, 1, `session ${session.id} served one origin only`);
    }
    assert.ok(h.reasons.length <= 300);
    // all exchanges finished: the one started last is current
    assert.equal(h.rot.current(), h.sessions.at(-1));
  });
}

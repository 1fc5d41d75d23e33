/**
 * The cache store alone (claim 4): what RFC 9111 lets each kind of cache keep, byte-bounded
 * LRU eviction, bodies streamed in and given up past the object limit, Vary, revalidation
 * with 304, partitions.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import CachePolicy from 'http-cache-semantics';
import type { FieldLine } from '../core/bhttp.ts';
import { HttpCache, headerRecord, notModified, parseByteSize, teeInto, type CacheRequest } from './cache.ts';

const req = (url: string, headers: Record<string, string> = {}, method = 'GET'): CacheRequest => ({ method, url, headers: { host: 'a.example', ...headers } });

function put<M>(c: HttpCache<M>, p: string, r: CacheRequest, fields: FieldLine[], body: string, meta: M, status = 200): boolean {
  const w = c.admit(p, r.url, r, status, fields, meta);
  if (!w) return false;
  const ok = w.write(Buffer.from(body));
  w.commit();
  return ok;
}

/** Stores `body` and looks it up again: the entry, which the caller's fields make stale. */
function storedStale<M>(c: HttpCache<M>, p: string, r: CacheRequest, fields: FieldLine[], body: string, meta: M) {
  put(c, p, r, fields, body, meta);
  const s = c.lookup(p, r.url, r);
  assert.equal(s.kind, 'stale');
  if (s.kind !== 'stale') throw new Error('not stale');
  return s.entry;
}

const shared = () => new HttpCache<null>({ name: 'inner', shared: true, limits: { maxBytes: 1 << 20, maxObjectBytes: 64 << 10 }, refuseSetCookie: true });
const privateCache = () => new HttpCache<null>({ name: 'outer', shared: false, limits: { maxBytes: 1 << 20, maxObjectBytes: 64 << 10 } });

test('a fresh response is kept and answered with Age; HEAD is answered from the GET entry without a body', () => {
  const c = shared();
  const r = req('http://a.example/x');
  assert.ok(put(c, '', r, [['cache-control', 'public, max-age=60'], ['content-type', 'text/plain']], 'hello', null));
  const found = c.lookup('', r.url, r);
  assert.equal(found.kind, 'fresh');
  if (found.kind !== 'fresh') return;
  const a = c.answer(found.entry, r);
  assert.equal(a.status, 200);
  assert.equal(Buffer.from(a.body as Uint8Array).toString(), 'hello');
  assert.ok(a.fields.some(([n, v]) => n === 'age' && /^\d+$/.test(v)));
  const head = req(r.url, {}, 'HEAD');
  const h = c.lookup('', r.url, head);
  assert.equal(h.kind, 'fresh');
  if (h.kind === 'fresh') assert.equal(c.answer(h.entry, head).body, null);
});

test('RFC 9111: no-store is never kept; private only in a private cache; s-maxage only in a shared one; Authorization needs public in a shared one', () => {
  const r = req('http://a.example/x');
  assert.equal(put(shared(), '', r, [['cache-control', 'no-store, max-age=60']], 'x', null), false);
  assert.equal(put(privateCache(), '', r, [['cache-control', 'no-store, max-age=60']], 'x', null), false);
  assert.equal(put(shared(), '', r, [['cache-control', 'private, max-age=60']], 'x', null), false);
  assert.equal(put(privateCache(), '', r, [['cache-control', 'private, max-age=60']], 'x', null), true);
  const s = shared();
  put(s, '', r, [['cache-control', 's-maxage=60, max-age=0']], 'x', null);
  assert.equal(s.lookup('', r.url, r).kind, 'fresh', 'a shared cache honours s-maxage');
  assert.equal(put(privateCache(), '', r, [['cache-control', 's-maxage=60, max-age=0']], 'x', null), false, 'a private cache ignores s-maxage (stale, no validator)');
  const authed = req(r.url, { authorization: 'Basic x' });
  assert.equal(put(shared(), '', authed, [['cache-control', 'max-age=60']], 'x', null), false);
  assert.equal(put(shared(), '', authed, [['cache-control', 'public, max-age=60']], 'x', null), true);
  // RFC 9111 §3.5: must-revalidate and s-maxage also let a shared cache keep an authenticated answer.
  assert.equal(put(shared(), '', authed, [['cache-control', 'max-age=60, must-revalidate']], 'x', null), true);
  assert.equal(put(shared(), '', authed, [['cache-control', 's-maxage=60']], 'x', null), true);
  assert.equal(put(shared(), '', r, [['cache-control', 'public, max-age=60'], ['set-cookie', 'a=b']], 'x', null), false, 'a shared cache never keeps a cookie');
  assert.equal(put(shared(), '', r, [['cache-control', 'public, max-age=60'], ['vary', '*']], 'x', null), false);
});

test('heuristic freshness: Last-Modified ten days ago and no explicit lifetime is fresh for a while', () => {
  const c = privateCache();
  const r = req('http://a.example/h');
  put(c, 'u', r, [['last-modified', new Date(Date.now() - 10 * 86400_000).toUTCString()], ['date', new Date().toUTCString()]], 'h', null);
  assert.equal(c.lookup('u', r.url, r).kind, 'fresh');
});

test('LRU by bytes: the least recently used entry goes first', () => {
  const c = new HttpCache<null>({ name: 'outer', shared: false, limits: { maxBytes: 3 * 2048, maxObjectBytes: 4096 } });
  const body = 'x'.repeat(1200);
  const fields: FieldLine[] = [['cache-control', 'max-age=60']];
  for (const n of ['a', 'b', 'c']) assert.ok(put(c, 'u', req(`http://a.example/${n}`), fields, body, null));
  assert.equal(c.size, 3);
  assert.equal(c.lookup('u', 'http://a.example/a', req('http://a.example/a')).kind, 'fresh', 'a is now the most recently used');
  put(c, 'u', req('http://a.example/d'), fields, body, null);
  assert.equal(c.lookup('u', 'http://a.example/b', req('http://a.example/b')).kind, 'miss', 'b was the least recently used');
  assert.equal(c.lookup('u', 'http://a.example/a', req('http://a.example/a')).kind, 'fresh');
  assert.ok(c.bytes <= 3 * 2048);
});

test('LRU: hits on the newest entry keep the order; once the newest is gone, a hit still moves an entry to the end', () => {
  const c = new HttpCache<null>({ name: 'outer', shared: false, limits: { maxBytes: 3 * 2048, maxObjectBytes: 4096 } });
  const body = 'x'.repeat(1200);
  const fields: FieldLine[] = [['cache-control', 'max-age=60']];
  const hit = (n: string) => c.lookup('u', `http://a.example/${n}`, req(`http://a.example/${n}`)).kind;
  for (const n of ['a', 'b', 'c']) put(c, 'u', req(`http://a.example/${n}`), fields, body, null);
  for (let i = 0; i < 5; i++) assert.equal(hit('c'), 'fresh'); // c is the newest already
  assert.equal(hit('a'), 'fresh'); // order now b, c, a
  put(c, 'u', req('http://a.example/d'), fields, body, null); // evicts b
  assert.equal(hit('b'), 'miss');
  c.clear('test');
  for (const n of ['e', 'f', 'g']) put(c, 'u', req(`http://a.example/${n}`), fields, body, null);
  assert.equal(hit('e'), 'fresh'); // order f, g, e
  put(c, 'u', req('http://a.example/h'), fields, body, null); // evicts f
  assert.equal(hit('f'), 'miss');
  assert.equal(hit('g'), 'fresh');
  assert.equal(hit('e'), 'fresh');
});

test('a streamed body past the object limit is given up, never truncated; an aborted body leaves nothing', async () => {
  const c = new HttpCache<null>({ name: 'inner', shared: true, limits: { maxBytes: 1 << 20, maxObjectBytes: 10_000 } });
  const r = req('http://a.example/big');
  const w = c.admit('', r.url, r, 200, [['cache-control', 'public, max-age=60']], null)!;
  async function* source() {
    for (let i = 0; i < 5; i++) yield new Uint8Array(4000).fill(i);
  }
  let passed = 0;
  for await (const chunk of teeInto(source(), w)) passed += chunk.length;
  assert.equal(passed, 20_000, 'the client still gets every octet');
  assert.equal(c.lookup('', r.url, r).kind, 'miss');
  assert.equal(c.bytes, 0);
  const declared = c.admit('', r.url, r, 200, [['cache-control', 'public, max-age=60'], ['content-length', '50000']], null);
  assert.equal(declared, undefined, 'a declared length past the limit is not even started');

  const w2 = c.admit('', r.url, r, 200, [['cache-control', 'public, max-age=60']], null)!;
  async function* broken() {
    yield new Uint8Array(100);
    throw new Error('upstream died');
  }
  await assert.rejects(async () => {
    for await (const _ of teeInto(broken(), w2)) void _;
  });
  assert.equal(c.lookup('', r.url, r).kind, 'miss');
  assert.equal(c.bytes, 0);
});

test('Vary: each variant is kept and found by the request headers it names', () => {
  const c = shared();
  const en = req('http://a.example/v', { 'accept-language': 'en' });
  const fr = req('http://a.example/v', { 'accept-language': 'fr' });
  const fields: FieldLine[] = [['cache-control', 'public, max-age=60'], ['vary', 'Accept-Language']];
  put(c, '', en, fields, 'hello', null);
  assert.equal(c.lookup('', en.url, fr).kind, 'miss');
  put(c, '', fr, fields, 'bonjour', null);
  const f = c.lookup('', fr.url, fr);
  assert.equal(f.kind, 'fresh');
  if (f.kind === 'fresh') assert.equal(Buffer.from(c.answer(f.entry, fr).body as Uint8Array).toString(), 'bonjour');
  assert.equal(c.size, 2);
});

test('revalidation: a stale entry asks with its validator; a matching 304 refreshes it; the client gets 200 or its own 304', () => {
  const c = privateCache();
  const r = req('http://a.example/n');
  put(c, 'u', r, [['cache-control', 'no-cache'], ['etag', '"v1"']], 'body-v1', null);
  const s = c.lookup('u', r.url, r);
  assert.equal(s.kind, 'stale');
  if (s.kind !== 'stale') return;
  const fields = c.revalidationFields(s.entry, r, [['accept', '*/*']]);
  assert.deepEqual(fields, [['accept', '*/*'], ['if-none-match', '"v1"']]);
  assert.equal(c.revalidated(s.entry, r, [['etag', '"v1"'], ['cache-control', 'max-age=60']], null), 'fresh');
  const a = c.answer(s.entry, r);
  assert.equal(a.status, 200);
  assert.equal(Buffer.from(a.body as Uint8Array).toString(), 'body-v1');
  assert.equal(c.lookup('u', r.url, r).kind, 'fresh', 'the new max-age applies');
  const cond = req(r.url, { 'if-none-match': 'W/"v1"' });
  assert.equal(c.answer(s.entry, cond).status, 304);
  const asksOther = req(r.url, { 'if-none-match': '"other"' });
  assert.equal(c.revalidated(s.entry, asksOther, [['etag', '"other"']], null), 'passthrough', "a 304 about the client's own validator is not this entry's: the client gets it");
});

test('RFC 9111 §3.2: a 304 adds the fields only it carries and replaces the others, but never the stored body\'s length', () => {
  const c = privateCache();
  const r = req('http://a.example/m');
  const entry = storedStale(c, 'u', r, [['cache-control', 'no-cache'], ['etag', '"v1"'], ['content-type', 'text/plain'], ['content-length', '7']], 'body-v1', null);
  const lm = 'Tue, 01 Jul 2025 00:00:00 GMT';
  const expires = 'Wed, 01 Jul 2099 00:00:00 GMT';
  const notModifiedFields: FieldLine[] = [['etag', '"v1"'], ['cache-control', 'max-age=60'], ['expires', expires], ['x-new', 'from-304'], ['last-modified', lm], ['content-length', '0']];
  assert.equal(c.revalidated(entry, r, notModifiedFields, null), 'fresh');
  const a = c.answer(entry, r);
  const served = new Map(a.fields.map(([n, v]) => [n, v]));
  assert.equal(served.get('x-new'), 'from-304');
  assert.equal(served.get('last-modified'), lm);
  assert.equal(served.get('expires'), expires);
  assert.equal(served.get('cache-control'), 'max-age=60', 'the stored no-cache is replaced');
  assert.equal(served.get('content-length'), '7', "a 304's Content-Length is about no body");
  assert.equal(served.get('content-type'), 'text/plain');
  assert.equal(a.fields.filter(([n]) => n === 'cache-control').length, 1);
  assert.equal(Buffer.from(a.body as Uint8Array).toString(), 'body-v1');
  assert.equal(c.lookup('u', r.url, r).kind, 'fresh');
});

test('revalidation by If-Modified-Since: a 304 without validators refreshes the entry when the conditional was the cache\'s own', () => {
  const lm = 'Tue, 01 Jul 2025 00:00:00 GMT';
  const c = privateCache();
  const r = req('http://a.example/lm');
  const entry = storedStale(c, 'u', r, [['cache-control', 'no-cache'], ['last-modified', lm]], 'body-lm', null);
  assert.deepEqual(c.revalidationFields(entry, r, []), [['if-modified-since', lm]]);
  // The client asked unconditionally: a bare 304 must not reach it (RFC 9110 §15.4.5).
  assert.equal(c.revalidated(entry, r, [['date', 'Wed, 02 Jul 2025 00:00:00 GMT'], ['cache-control', 'max-age=30']], null), 'fresh');
  const a = c.answer(entry, r);
  assert.equal(a.status, 200);
  assert.equal(Buffer.from(a.body as Uint8Array).toString(), 'body-lm');
  assert.equal(c.lookup('u', r.url, r).kind, 'fresh');
  // A client with its own If-Modified-Since sent that date upstream: a 304 may be about it, and it may have a 304.
  const own = req(r.url, { 'if-modified-since': 'Thu, 03 Jul 2025 00:00:00 GMT' });
  assert.equal(c.revalidated(entry, own, [['cache-control', 'max-age=30']], null), 'passthrough');
  // A 304 naming another version, though only this entry's validator was sent: the client still
  // gets the stored answer, not a bare 304, and the entry is not kept.
  assert.equal(c.revalidated(entry, r, [['last-modified', 'Fri, 04 Jul 2025 00:00:00 GMT']], null), 'fresh');
  assert.equal(c.answer(entry, r).status, 200);
  assert.equal(Buffer.from(c.answer(entry, r).body as Uint8Array).toString(), 'body-lm');
  assert.equal(c.lookup('u', r.url, r).kind, 'miss');
});

test('a 304 that sets a cookie: the asking user gets it once, and a cache that keeps no cookies stops keeping the entry', () => {
  const c = shared();
  const r = req('http://a.example/ck');
  const entry = storedStale(c, '', r, [['cache-control', 'public, no-cache'], ['etag', '"c1"']], 'body-c1', null);
  assert.equal(c.revalidated(entry, r, [['etag', '"c1"'], ['set-cookie', 'sid=alice']], null), 'fresh');
  assert.ok(c.answer(entry, r).fields.some(([n, v]) => n === 'set-cookie' && v === 'sid=alice'));
  assert.equal(c.lookup('', r.url, r).kind, 'miss', "nobody else is handed alice's cookie");
  assert.equal(c.size, 0);
});

test('conditional requests: If-None-Match (weak comparison, *) takes precedence over If-Modified-Since', () => {
  const lm = 'Tue, 01 Jul 2025 00:00:00 GMT';
  const f: FieldLine[] = [['etag', '"a"'], ['last-modified', lm]];
  assert.equal(notModified(req('u', { 'if-none-match': '"b", W/"a"' }), f), true);
  assert.equal(notModified(req('u', { 'if-none-match': '*' }), f), true);
  assert.equal(notModified(req('u', { 'if-none-match': '"b"', 'if-modified-since': lm }), f), false);
  assert.equal(notModified(req('u', { 'if-modified-since': lm }), f), true);
  assert.equal(notModified(req('u', { 'if-modified-since': 'Mon, 30 Jun 2025 00:00:00 GMT' }), f), false);
});

test('partitions: dropping one user leaves the others', () => {
  const c = privateCache();
  const r = req('http://a.example/p');
  put(c, 'alice', r, [['cache-control', 'max-age=60']], 'a', null);
  put(c, 'bob', r, [['cache-control', 'max-age=60']], 'b', null);
  assert.equal(c.dropPartition('alice', 'user'), 1);
  assert.equal(c.lookup('alice', r.url, r).kind, 'miss');
  assert.equal(c.lookup('bob', r.url, r).kind, 'fresh');
});

test('sizes: 64MiB, 512KiB, 1000000, 0; nonsense is refused', () => {
  assert.equal(parseByteSize('64MiB'), 64 * 1024 * 1024);
  assert.equal(parseByteSize('512KiB'), 512 * 1024);
  assert.equal(parseByteSize('1000000'), 1_000_000);
  assert.equal(parseByteSize('0'), 0);
  assert.equal(parseByteSize('1.5GiB'), 1.5 * 1024 ** 3);
  assert.equal(parseByteSize('lots'), undefined);
  assert.equal(parseByteSize('-1'), undefined);
});

const T0 = Date.parse('2026-03-01T12:00:00Z');
const httpDate = (ms: number) => new Date(ms).toUTCString();

test("hits' fast path agrees with http-cache-semantics: fresh exactly when the library says so, whatever the request's Cache-Control or Pragma and the time", (t) => {
  let now = T0;
  t.mock.method(Date, 'now', () => now);
  const responses: FieldLine[][] = [
    [['cache-control', 'max-age=60']],
    [['cache-control', 'max-age=60'], ['age', '50']],
    [['cache-control', 'max-age=60, must-revalidate']],
    [['cache-control', 'no-cache']],
    [['cache-control', 's-maxage=60, max-age=0']],
    [['cache-control', 'max-age=60, stale-while-revalidate=30']],
    [['cache-control', 'max-age=60, immutable']],
    [['expires', httpDate(T0 + 60_000)], ['date', httpDate(T0)]],
    [['last-modified', httpDate(T0 - 10 * 86400_000)], ['date', httpDate(T0)]],
    [['cache-control', 'max-age=60'], ['vary', 'Accept-Language']],
  ];
  const requests: Record<string, string>[] = [
    {},
    { 'cache-control': 'no-cache' },
    { 'cache-control': 'max-age=0' },
    { 'cache-control': 'max-age=30' },
    { pragma: 'no-cache' },
    { 'cache-control': 'max-stale' },
    { 'cache-control': 'min-fresh=20' },
    { 'if-none-match': '"e"' },
    { 'accept-language': 'fr' },
  ];
  const offsets = [0, 1, 9_999, 10_000, 29_999, 30_000, 59_998, 59_999, 60_000, 60_001, 89_999, 90_000, 86_400_000, 86_400_001];
  let compared = 0;
  for (const fields of responses) {
    for (const storing of [{}, { 'cache-control': 'no-cache' }] as Record<string, string>[]) {
      for (const asked of requests) {
        for (const offset of offsets) {
          now = T0;
          const c = privateCache();
          const stored = req('http://a.example/f', { 'accept-language': 'en', ...storing });
          const all: FieldLine[] = [...fields, ['etag', '"e"']];
          if (!put(c, 'u', stored, all, 'x', null)) continue;
          const reference = new CachePolicy(stored, { status: 200, headers: headerRecord(all) }, { shared: false });
          now = T0 + offset;
          const r = req(stored.url, { 'accept-language': 'en', ...asked });
          const expected = reference.evaluateRequest(r).revalidation ? 'stale' : 'fresh';
          const found = c.lookup('u', r.url, r).kind;
          const label = `${JSON.stringify(fields)} stored by ${JSON.stringify(storing)}, asked ${JSON.stringify(asked)} at +${offset} ms`;
          // A different Vary value is another variant: a miss, which the library would call a revalidation.
          assert.equal(found === 'miss' ? 'stale' : found, expected, label);
          compared++;
        }
      }
    }
  }
  assert.ok(compared > 1000, `compared ${compared} cases`);
});

test('Age grows with the time spent in the cache; a 304 refresh gives the fast path the new lifetime', (t) => {
  let now = T0;
  t.mock.method(Date, 'now', () => now);
  const c = privateCache();
  const r = req('http://a.example/age');
  put(c, 'u', r, [['cache-control', 'max-age=60'], ['etag', '"v1"'], ['age', '5']], 'aged', null);
  const ageAt = (ms: number) => {
    now = T0 + ms;
    const f = c.lookup('u', r.url, r);
    assert.equal(f.kind, 'fresh', `fresh at +${ms} ms`);
    return f.kind === 'fresh' ? c.answer(f.entry, r).fields.filter(([n]) => n === 'age') : [];
  };
  assert.deepEqual(ageAt(0), [['age', '5']], 'the Age it came with');
  assert.deepEqual(ageAt(30_500), [['age', '35']]);
  assert.deepEqual(ageAt(54_999), [['age', '59']]);
  now = T0 + 55_000;
  const s = c.lookup('u', r.url, r);
  assert.equal(s.kind, 'stale', 'max-age 60 minus the 5 it arrived with');
  if (s.kind !== 'stale') return;
  assert.equal(c.revalidated(s.entry, r, [['etag', '"v1"'], ['cache-control', 'max-age=10']], null), 'fresh');
  // max-age 10 from the refresh, less the stored Age of 5 that a 304 does not replace (as the library counts it).
  now = T0 + 59_998;
  assert.equal(c.lookup('u', r.url, r).kind, 'fresh', 'the new lifetime, counted from the refresh');
  now = T0 + 60_000;
  assert.equal(c.lookup('u', r.url, r).kind, 'stale');
});

test('a 304 that shortens the lifetime (a reload answered max-age=0) ends hits at once', (t) => {
  let now = T0;
  t.mock.method(Date, 'now', () => now);
  const c = privateCache();
  const r = req('http://a.example/short');
  put(c, 'u', r, [['cache-control', 'max-age=600'], ['etag', '"v1"']], 'long', null);
  now = T0 + 1_000;
  const reload = req(r.url, { 'cache-control': 'no-cache' });
  const s = c.lookup('u', r.url, reload);
  assert.equal(s.kind, 'stale', 'a reload revalidates a fresh entry');
  if (s.kind !== 'stale') return;
  assert.equal(c.revalidated(s.entry, reload, [['etag', '"v1"'], ['cache-control', 'max-age=0']], null), 'fresh');
  now = T0 + 2_000;
  assert.equal(c.lookup('u', r.url, r).kind, 'stale', 'the plain request that follows asks again');
});

test('Vary: a field absent from the request matches only its absence, not an empty value (RFC 9111 §4.1)', () => {
  const c = shared();
  const fields: FieldLine[] = [['cache-control', 'public, max-age=60'], ['vary', 'Accept-Language']];
  const absent = req('http://a.example/va');
  const empty = req('http://a.example/va', { 'accept-language': '' });
  put(c, '', absent, fields, 'none', null);
  assert.equal(c.lookup('', absent.url, empty).kind, 'miss');
  put(c, '', empty, fields, 'empty', null);
  assert.equal(c.size, 2, 'two variants');
  for (const [r, body] of [[absent, 'none'], [empty, 'empty']] as const) {
    const f = c.lookup('', r.url, r);
    assert.equal(f.kind, 'fresh');
    if (f.kind === 'fresh') assert.equal(Buffer.from(c.answer(f.entry, r).body as Uint8Array).toString(), body);
  }
});

/**
 * Claim 4 (patent 0066–0068) end to end: the outer's private per-user caches and the inner's
 * shared cache, with RFC 9111 semantics, revalidation through the tunnel, limits, metrics,
 * and revocation reaching both caches. Real `sws` processes and a real origin on loopback;
 * what the origin and each sidecar's /metrics saw is the evidence.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { metricValue, sws, startChain, startOrigin, startSidecar, swsOk, viaProxy, type Chain, type Origin, type ProxiedAnswer, type SidecarProcess } from '../helpers/e2e.ts';

const HOST = 'intranet.example';
const TEN_DAYS_AGO = new Date(Date.now() - 10 * 86400_000).toUTCString();
let origin: Origin;
let chain: Chain;
const extra: SidecarProcess[] = [];

before(async () => {
  origin = await startOrigin((req, res) => {
    const url = new URL(req.url!, 'http://x');
    const p = url.pathname;
    const etag = `"${p.replace(/[^a-z0-9]/gi, '-')}"`;
    const conditional = req.headers['if-none-match'] === etag;
    const send = (cc: Record<string, string>, body = `body of ${p}`) => {
      if (conditional && cc.etag) return void res.writeHead(304, cc).end();
      res.writeHead(200, { 'content-type': 'text/plain', ...cc }).end(body);
    };
    if (p.startsWith('/shared/pub/') || p.startsWith('/secret/')) send({ 'cache-control': 'public, max-age=300', etag });
    else if (p.startsWith('/shared/priv/') || p.startsWith('/docs/')) send({ 'cache-control': 'private, max-age=300', etag });
    else if (p.startsWith('/shared/maxage/')) send({ 'cache-control': 'max-age=300' });
    else if (p.startsWith('/shared/nostore/')) send({ 'cache-control': 'no-store' });
    else if (p.startsWith('/shared/nocache/')) send({ 'cache-control': 'no-cache', etag });
    else if (p.startsWith('/shared/pubnocache/')) send({ 'cache-control': 'public, no-cache', etag });
    else if (p.startsWith('/shared/smax/')) send({ 'cache-control': 's-maxage=300, max-age=0', etag });
    else if (p.startsWith('/shared/privsmax/')) send({ 'cache-control': 'private, s-maxage=300, max-age=300', etag });
    else if (p === '/shared/vary') send({ 'cache-control': 'public, max-age=300', vary: 'Accept-Language' }, `lang ${req.headers['accept-language']}`);
    else if (p === '/shared/heur') send({ 'last-modified': TEN_DAYS_AGO });
    else if (p.startsWith('/shared/lastmod/')) {
      // Validated by date only, and its 304 names no validator (RFC 9110 §15.4.5 allows that).
      if (req.headers['if-modified-since'] === TEN_DAYS_AGO) return void res.writeHead(304, { 'cache-control': 'public, no-cache', 'x-refreshed': 'yes' }).end();
      res.writeHead(200, { 'content-type': 'text/plain', 'cache-control': 'public, no-cache', 'last-modified': TEN_DAYS_AGO }).end(`body of ${p}`);
    }
    else if (p === '/shared/big') {
      const size = Number(url.searchParams.get('size'));
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'cache-control': 'public, max-age=300', 'content-length': String(size) });
      res.end(Buffer.alloc(size, 7));
    } else res.writeHead(404).end('nope');
  });
  chain = await startChain({
    originUrl: origin.url,
    host: HOST,
    grants: [
      ['alice', '/**'],
      ['bob', '/shared/**'],
    ],
  });
});

after(async () => {
  await Promise.all(extra.map((p) => p.stop()));
  await chain?.stop();
  await origin?.close();
});

function get(path: string, opts: { user?: 'alice' | 'bob'; headers?: Record<string, string>; proxy?: string } = {}): Promise<ProxiedAnswer> {
  return viaProxy(opts.proxy ?? chain.proxy, HOST, path, opts);
}

const seen = (path: string) => origin.requests.filter((r) => r.url === path).length;
const metric = async (p: SidecarProcess, name: string, labels: Record<string, string> = {}) => metricValue(await p.metrics(), name, labels);
const innerRequests = () => metric(chain.inner, 'sws_requests_total');

test('claim 4, outer: a fresh page asked again is answered by the outer alone (no envelope, no WWW request)', async () => {
  const first = await get('/shared/pub/1');
  assert.equal(first.status, 200);
  assert.equal(first.headers['sws-acl-epoch'], undefined, 'the epoch field never reaches the client');
  const innerBefore = await innerRequests();
  const hitsBefore = await metric(chain.outer, 'sws_cache_hits_total', { cache: 'outer' });
  const second = await get('/shared/pub/1');
  assert.equal(second.status, 200);
  assert.equal(second.body.toString(), first.body.toString());
  assert.match(String(second.headers.age), /^\d+$/, 'a cached answer carries Age');
  assert.equal(seen('/shared/pub/1'), 1, 'the WWW server saw one request');
  assert.equal(await innerRequests(), innerBefore, 'the inner saw nothing');
  assert.equal((await metric(chain.outer, 'sws_cache_hits_total', { cache: 'outer' })) - hitsBefore, 1);
});

test("claim 4, inner: another user's request is served from the shared cache, only after the ACL allowed it", async () => {
  const hitsBefore = await metric(chain.inner, 'sws_cache_hits_total', { cache: 'inner' });
  const bob = await get('/shared/pub/1', { user: 'bob' });
  assert.equal(bob.status, 200);
  assert.equal(bob.body.toString(), 'body of /shared/pub/1');
  assert.equal(seen('/shared/pub/1'), 1, 'the WWW server saw no request for bob');
  assert.equal((await metric(chain.inner, 'sws_cache_hits_total', { cache: 'inner' })) - hitsBefore, 1);

  // alice puts a public page into the shared cache; bob may not see it, and the cache does not change that.
  assert.equal((await get('/secret/plan')).status, 200);
  const hits = await metric(chain.inner, 'sws_cache_hits_total', { cache: 'inner' });
  const denied = await get('/secret/plan', { user: 'bob' });
  assert.equal(denied.status, 403);
  assert.equal(await metric(chain.inner, 'sws_cache_hits_total', { cache: 'inner' }), hits, 'the shared cache was not even consulted');
});

test("private answers stay in the user's own cache and never enter the shared one, s-maxage or not", async () => {
  // private, s-maxage=300: without private, s-maxage would let the inner keep it for everyone.
  for (const path of ['/shared/priv/1', '/shared/privsmax/1']) {
    await get(path);
    await get(path);
    assert.equal(seen(path), 1, `${path}: alice's second request came from her cache`);
    assert.equal((await get(path, { user: 'bob' })).status, 200);
    assert.equal(seen(path), 2, `${path}: bob's went to the WWW server, the inner kept no copy`);
  }
});

test('the user name the inner forwards counts as Authorization: a bare max-age is not shared (RFC 9111 §3.5)', async () => {
  await get('/shared/maxage/1');
  await get('/shared/maxage/1');
  assert.equal(seen('/shared/maxage/1'), 1);
  await get('/shared/maxage/1', { user: 'bob' });
  assert.equal(seen('/shared/maxage/1'), 2);
});

test('no-store is never cached, at either sidecar', async () => {
  for (let i = 0; i < 3; i++) assert.equal((await get('/shared/nostore/1')).status, 200);
  assert.equal(seen('/shared/nostore/1'), 3);
});

test('no-cache: each use is revalidated with If-None-Match through the tunnel; the 304 becomes a full answer at the outer', async () => {
  const a = await get('/shared/nocache/1');
  const before = await metric(chain.outer, 'sws_cache_revalidations_total', { cache: 'outer', result: 'not-modified' });
  const b = await get('/shared/nocache/1');
  assert.equal(b.status, 200);
  assert.equal(b.body.toString(), a.body.toString());
  const reqs = origin.requests.filter((r) => r.url === '/shared/nocache/1');
  assert.equal(reqs.length, 2);
  assert.equal(reqs[1]!.headers['if-none-match'], '"-shared-nocache-1"', 'the conditional request reached the WWW server');
  assert.equal((await metric(chain.outer, 'sws_cache_revalidations_total', { cache: 'outer', result: 'not-modified' })) - before, 1);
});

test('If-Modified-Since through the tunnel: a 304 naming no validator still gives the client the stored page, with the 304\'s new fields', async () => {
  const a = await get('/shared/lastmod/1');
  assert.equal(a.status, 200);
  assert.equal(a.headers['x-refreshed'], undefined);
  const b = await get('/shared/lastmod/1');
  assert.equal(b.status, 200, 'a client that asked unconditionally never gets a bare 304');
  assert.equal(b.body.toString(), a.body.toString());
  assert.equal(b.headers['x-refreshed'], 'yes', 'fields only the 304 carried are served (RFC 9111 §3.2)');
  assert.equal(b.headers['last-modified'], TEN_DAYS_AGO);
  const reqs = origin.requests.filter((r) => r.url === '/shared/lastmod/1');
  assert.equal(reqs.length, 2);
  assert.equal(reqs[1]!.headers['if-modified-since'], TEN_DAYS_AGO, 'the conditional request reached the WWW server');
});

test('s-maxage: fresh in the shared cache, stale in the private one; the inner answers the outer\'s revalidation with 304 from its cache', async () => {
  await get('/shared/smax/1');
  const innerHits = await metric(chain.inner, 'sws_cache_hits_total', { cache: 'inner' });
  const again = await get('/shared/smax/1');
  assert.equal(again.status, 200);
  assert.equal(again.body.toString(), 'body of /shared/smax/1');
  assert.equal(seen('/shared/smax/1'), 1, 'the WWW server was not asked again');
  assert.equal((await metric(chain.inner, 'sws_cache_hits_total', { cache: 'inner' })) - innerHits, 1);
});

test('Vary: one entry per Accept-Language', async () => {
  for (const lang of ['en', 'fr', 'en', 'fr']) assert.equal((await get('/shared/vary', { headers: { 'accept-language': lang } })).body.toString(), `lang ${lang}`);
  assert.equal(seen('/shared/vary'), 2);
});

test('heuristic freshness: Last-Modified ten days ago and no Cache-Control is reused', async () => {
  await get('/shared/heur');
  await get('/shared/heur');
  assert.equal(seen('/shared/heur'), 1);
});

test("a client's own conditional request is answered 304 from the outer's cache", async () => {
  const r = await get('/shared/pub/1', { headers: { 'if-none-match': '"-shared-pub-1"' } });
  assert.equal(r.status, 304);
  assert.equal(r.body.length, 0);
  assert.equal(seen('/shared/pub/1'), 1);
});

test('a body larger than the largest cacheable object passes through whole and uncached', async () => {
  const size = 9 * 1024 * 1024;
  for (let i = 0; i < 2; i++) {
    const r = await get(`/shared/big?size=${size}`);
    assert.equal(r.body.length, size);
  }
  assert.equal(seen(`/shared/big?size=${size}`), 2);
  assert.ok((await metric(chain.outer, 'sws_cache_bytes', { cache: 'outer' })) < 1024 * 1024);
});

test('revocation, epoch: the next answer from the inner carries the new ACL epoch and the outer drops the user\'s entries', async () => {
  await get('/docs/r1');
  assert.equal((await get('/docs/r1')).status, 200);
  assert.equal(seen('/docs/r1'), 1, 'cached');
  await swsOk(['acl', 'grant', 'alice', '/shared/**', '--data', chain.innerData]);
  await swsOk(['acl', 'revoke', 'alice', '/**', '--data', chain.innerData]);
  const dropsBefore = await metric(chain.outer, 'sws_cache_evictions_total', { cache: 'outer', reason: 'acl' });
  // Probe until the inner has seen the change (its store watcher); any answer for alice carries the epoch.
  const until = Date.now() + 10_000;
  let status = 0;
  while (Date.now() < until) {
    await get('/shared/nostore/ping');
    status = (await get('/docs/r1')).status;
    if (status === 403) break;
  }
  assert.equal(status, 403, 'the cached page is no longer served');
  assert.ok((await metric(chain.outer, 'sws_cache_evictions_total', { cache: 'outer', reason: 'acl' })) > dropsBefore, 'dropped by the epoch, not by time');
  assert.equal(seen('/docs/r1'), 1, 'and the WWW server never saw alice again');
  await swsOk(['acl', 'grant', 'alice', '/**', '--data', chain.innerData]);
});

test('revocation, recheck cap: with --cache-recheck 1 a revoked user stops getting cached pages within about a second, even without other traffic', async () => {
  const outer = await startSidecar(['outer', 'start', '--data', chain.outerData, '--cache-recheck', '1']);
  extra.push(outer);
  await get('/docs/r2', { proxy: outer.url });
  assert.equal((await get('/docs/r2', { proxy: outer.url })).status, 200);
  assert.equal(await metric(outer, 'sws_cache_hits_total', { cache: 'outer' }), 1);
  await swsOk(['acl', 'revoke', 'alice', '/**', '--data', chain.innerData]);
  const revokedAt = Date.now();
  let status = 0;
  while (Date.now() - revokedAt < 10_000) {
    status = (await get('/docs/r2', { proxy: outer.url })).status;
    if (status === 403) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.equal(status, 403);
  assert.ok(Date.now() - revokedAt < 6000, 'within the recheck cap (1 s) plus the store watcher, with room for a loaded machine');
  assert.ok((await metric(outer, 'sws_cache_revalidations_total', { cache: 'outer' })) >= 1, 'the outer asked the inner, which checked the ACL');
  await swsOk(['acl', 'grant', 'alice', '/**', '--data', chain.innerData]);
});

test('--no-cache turns the outer cache off; bad sizes are refused with exit 2 naming the flag', async () => {
  const outer = await startSidecar(['outer', 'start', '--data', chain.outerData, '--no-cache']);
  extra.push(outer);
  const before = await innerRequests();
  for (let i = 0; i < 3; i++) assert.equal((await get('/shared/pub/1', { proxy: outer.url })).status, 200);
  assert.equal((await innerRequests()) - before, 3, 'every request went to the inner');
  assert.equal(await metric(outer, 'sws_cache_hits_total', { cache: 'outer' }), 0);
  const bad = await sws(['inner', 'start', '--data', chain.innerData, '--listen', '127.0.0.1:0', '--cache-size', 'lots']);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /--cache-size/);
});

test('--cache-size bounds the outer cache by octets: least recently used entries are evicted (counted), and 0 turns it off', async () => {
  const small = await startSidecar(['outer', 'start', '--data', chain.outerData, '--cache-size', '3KiB']);
  const off = await startSidecar(['outer', 'start', '--data', chain.outerData, '--cache-size', '0']);
  extra.push(small, off);
  for (let i = 1; i <= 8; i++) assert.equal((await get(`/shared/pub/size-${i}`, { proxy: small.url })).status, 200);
  const entries = await metric(small, 'sws_cache_entries', { cache: 'outer' });
  assert.ok(entries >= 1 && entries < 8, `some entries were kept, not all 8 (${entries})`);
  assert.ok((await metric(small, 'sws_cache_bytes', { cache: 'outer' })) <= 3 * 1024, 'the octet bound holds');
  assert.equal(await metric(small, 'sws_cache_evictions_total', { cache: 'outer', reason: 'size' }), 8 - entries, 'every entry that left was counted as evicted for size');
  const before = await innerRequests();
  assert.equal((await get('/shared/pub/size-8', { proxy: small.url })).status, 200);
  assert.equal((await innerRequests()) - before, 0, 'the most recent page is still a hit');
  assert.equal((await get('/shared/pub/size-1', { proxy: small.url })).status, 200);
  assert.equal((await innerRequests()) - before, 1, 'the least recent one was evicted and went to the inner again');
  for (let i = 0; i < 2; i++) assert.equal((await get('/shared/pub/size-1', { proxy: off.url })).status, 200);
  assert.equal(await metric(off, 'sws_cache_hits_total', { cache: 'outer' }), 0, '--cache-size 0: no hit at all');
  assert.equal((await innerRequests()) - before, 3);
});

test('metrics: hits, misses, revalidations, evictions, bytes and entries on both sidecars', async () => {
  for (const side of [chain.outer, chain.inner]) {
    const m = await side.metrics();
    for (const name of ['sws_cache_hits_total', 'sws_cache_misses_total', 'sws_cache_revalidations_total', 'sws_cache_evictions_total', 'sws_cache_bytes', 'sws_cache_entries']) {
      assert.match(m, new RegExp(`^# TYPE ${name} `, 'm'), name);
    }
  }
  assert.ok((await metric(chain.outer, 'sws_cache_entries', { cache: 'outer' })) > 0);
  assert.ok((await metric(chain.inner, 'sws_cache_bytes', { cache: 'inner' })) > 0);
  assert.ok((await metric(chain.outer, 'sws_cache_misses_total', { cache: 'outer' })) > 0);
});

test('revocation, key: after `sws client remove alice` the first request that reaches the inner is refused, and from then on her cached pages are not served (no outer hit)', async () => {
  const hits = () => metric(chain.outer, 'sws_cache_hits_total', { cache: 'outer' });
  await get('/docs/k1');
  const h0 = await hits();
  assert.equal((await get('/docs/k1')).status, 200);
  assert.equal((await hits()) - h0, 1, 'control: the page is an outer cache hit (default --cache-recheck 30 s)');
  await swsOk(['client', 'remove', 'alice', '--data', chain.innerData]);
  try {
    // A request that misses the cache reaches the inner; once its watcher saw the removal (100 ms poll) it refuses alice.
    // A request in flight at that moment is cut off instead (revocation aborts it: a 502 without the code): ask again.
    const until = Date.now() + 5000;
    let refused: ProxiedAnswer | undefined;
    for (let i = 0; Date.now() < until; i++) {
      const r = await get(`/shared/nostore/k${i}`);
      if (r.status === 502 && r.body.toString().includes('SWS_ERR_UNKNOWN_USER')) {
        refused = r;
        break;
      }
      await new Promise((res) => setTimeout(res, 20));
    }
    assert.ok(refused, 'the inner refused alice');
    assert.match(refused.body.toString(), /SWS_ERR_UNKNOWN_USER/);
    const h1 = await hits();
    const dropped = await metric(chain.outer, 'sws_cache_evictions_total', { cache: 'outer', reason: 'refused' });
    assert.ok(dropped >= 1, 'the refusal dropped her entries');
    for (let i = 0; i < 2; i++) {
      const r = await get('/docs/k1');
      assert.equal(r.status, 502, 'the cached page now goes to the inner, which refuses it');
      assert.match(r.body.toString(), /SWS_ERR_UNKNOWN_USER/);
    }
    assert.equal(await hits(), h1, 'no outer cache hit after the refusal');
    assert.equal(seen('/docs/k1'), 1);
  } finally {
    await swsOk(['client', 'add', 'alice', '--key', `${chain.dir}/alice.pem`, '--data', chain.innerData]);
  }
});

test('inner revalidation: a stale shared entry with an ETag is revalidated with If-None-Match; the WWW server answers 304 and the inner serves the stored body', async () => {
  // The outer's cache is off, so the client's unconditional request reaches the inner as is.
  const outer = await startSidecar(['outer', 'start', '--data', chain.outerData, '--no-cache']);
  extra.push(outer);
  const path = '/shared/pubnocache/1';
  const first = await get(path, { proxy: outer.url });
  assert.equal(first.status, 200);
  const notModified = () => metric(chain.inner, 'sws_cache_revalidations_total', { cache: 'inner', result: 'not-modified' });
  const before = await notModified();
  const second = await get(path, { proxy: outer.url });
  assert.equal(second.status, 200, 'the client asked unconditionally and gets a full answer');
  assert.equal(second.body.toString(), `body of ${path}`, 'the body came from the inner cache');
  const reqs = origin.requests.filter((r) => r.url === path);
  assert.equal(reqs.length, 2, 'the WWW server was asked to revalidate');
  assert.equal(reqs[0]!.headers['if-none-match'], undefined);
  assert.equal(reqs[1]!.headers['if-none-match'], '"-shared-pubnocache-1"', 'a conditional request with the stored ETag');
  assert.equal((await notModified()) - before, 1);
});

test('--no-cache on the inner: the WWW server sees every request (control: the same page through a caching inner is fetched once)', async () => {
  const outer = await startSidecar(['outer', 'start', '--data', chain.outerData, '--no-cache']);
  extra.push(outer);
  for (let i = 0; i < 3; i++) assert.equal((await get('/shared/pub/nc-control', { proxy: outer.url })).status, 200);
  assert.equal(seen('/shared/pub/nc-control'), 1, 'control: the caching inner answered twice from its cache');
  const uncached = await startChain({ originUrl: origin.url, host: HOST, innerArgs: ['--no-cache'], outerArgs: ['--no-cache'] });
  try {
    for (let i = 0; i < 3; i++) {
      const r = await get('/shared/pub/nc', { proxy: uncached.proxy });
      assert.equal(r.status, 200);
      assert.equal(r.body.toString(), 'body of /shared/pub/nc');
    }
    assert.equal(seen('/shared/pub/nc'), 3, 'every request reached the WWW server');
    const m = await uncached.inner.metrics();
    assert.equal(metricValue(m, 'sws_cache_hits_total', { cache: 'inner' }) + metricValue(m, 'sws_cache_misses_total', { cache: 'inner' }), 0, 'the inner cache was never consulted');
  } finally {
    await uncached.stop();
  }
});

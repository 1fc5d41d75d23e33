/**
 * Outer-cache hits (claim 4) on keep-alive connections, the way browsers and load generators
 * use a proxy: what the hit path remembers per connection (the proven Proxy-Authorization)
 * and per entry (its freshness) must not change what a request gets. A wrong password on an
 * authenticated connection is a 407; a password change or a removed user is honoured at the
 * next request after the store change; a reload (no-cache, max-age=0, Pragma) still
 * revalidates a fresh entry; Age grows; every hit still writes its access line and metrics.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { Agent, request as httpRequest, type IncomingMessage } from 'node:http';
import { basic, eventually, metricValue, PASSWORDS, startChain, startOrigin, swsOk, type Chain, type Origin } from '../helpers/e2e.ts';

const HOST = 'intranet.example';
const BIG = Buffer.alloc(400 * 1024, 'b');
let origin: Origin;
let chain: Chain;
const agents: Agent[] = [];

before(async () => {
  origin = await startOrigin((req, res) => {
    const etag = '"v1"';
    if (req.headers['if-none-match'] === etag) return void res.writeHead(304, { etag, 'cache-control': 'max-age=300' }).end();
    res.writeHead(200, { 'content-type': 'text/plain', 'cache-control': 'max-age=300', etag });
    // Above the size the outer reads whole (sidecar-shared/write.ts AT_HAND_ENVELOPE): streamed, and stored in pieces.
    if (req.url === '/big') for (let i = 0; i < 5; i++) res.write(BIG.subarray(i * 65536, (i + 1) * 65536));
    res.end(req.url === '/big' ? BIG.subarray(5 * 65536) : `page ${req.url}`);
  });
  chain = await startChain({ originUrl: origin.url, host: HOST, grants: [['alice', '/**'], ['bob', '/**']] });
});

after(async () => {
  for (const a of agents) a.destroy();
  await chain?.stop();
  await origin?.close();
});

/** One keep-alive connection to the outer: every request on it reuses the same socket. */
function connection(): Agent {
  const a = new Agent({ keepAlive: true, maxSockets: 1 });
  agents.push(a);
  return a;
}

interface Answer {
  status: number;
  headers: IncomingMessage['headers'];
  body: string;
  reused: boolean;
}

function get(agent: Agent, path: string, auth: string | undefined, headers: Record<string, string> = {}): Promise<Answer> {
  const proxy = new URL(chain.proxy);
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: proxy.hostname, port: proxy.port, path: `http://${HOST}${path}`, agent, headers: { host: HOST, ...(auth ? { 'proxy-authorization': auth } : {}), ...headers } }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body, reused: req.reusedSocket }));
      res.on('error', reject);
    });
    req.on('error', reject).end();
  });
}

const metric = async (name: string, labels: Record<string, string> = {}) => metricValue(await chain.outer.metrics(), name, labels);
const innerSaw = async () => metricValue(await chain.inner.metrics(), 'sws_requests_total');

/** Asks on `agent` until the answer's status is `status` (the store watcher polls every 100 ms). */
async function until(agent: Agent, path: string, auth: string, status: number): Promise<Answer> {
  const end = Date.now() + 10_000;
  for (;;) {
    const a = await get(agent, path, auth);
    if (a.status === status || Date.now() > end) return a;
    await new Promise((r) => setTimeout(r, 20));
  }
}

test('one keep-alive connection: hits as alice; a wrong password on it, even of the same length, is a 407; the right one works again', async () => {
  const conn = connection();
  const alice = basic('alice', PASSWORDS.alice);
  assert.equal((await get(conn, '/kc', alice)).status, 200);
  const hit = await get(conn, '/kc', alice);
  assert.equal(hit.status, 200);
  assert.equal(hit.reused, true, 'the same connection');
  const sameLength = basic('alice', PASSWORDS.alice.replace(/.$/, (c) => (c === 'x' ? 'y' : 'x')));
  for (const wrong of [sameLength, basic('alice', 'nope'), basic('bob', PASSWORDS.alice), undefined]) {
    const a = await get(conn, '/kc', wrong);
    assert.equal(a.status, 407, String(wrong));
    assert.equal(a.reused, true);
    assert.match(String(a.headers['proxy-authenticate']), /^Basic /);
  }
  const again = await get(conn, '/kc', alice);
  assert.equal(again.status, 200);
  assert.equal(again.body, 'page /kc');
});

test('`sws user passwd` and `sws user remove` apply to connections that already authenticated, at the next request after the store change', async () => {
  const aliceConn = connection();
  const bobConn = connection();
  const oldAlice = basic('alice', PASSWORDS.alice);
  const bob = basic('bob', PASSWORDS.bob);
  assert.equal((await get(aliceConn, '/pw', oldAlice)).status, 200);
  assert.equal((await get(aliceConn, '/pw', oldAlice)).status, 200, 'a hit on a proven connection');
  assert.equal((await get(bobConn, '/pw', bob)).status, 200);
  assert.equal((await get(bobConn, '/pw', bob)).status, 200);
  const changed = 'a brand new password for alice';
  await swsOk(['user', 'passwd', 'alice', '--password-stdin', '--data', chain.outerData], { stdin: `${changed}\n` });
  await swsOk(['user', 'remove', 'bob', '--data', chain.outerData]);
  const refused = await until(aliceConn, '/pw', oldAlice, 407);
  assert.equal(refused.status, 407, 'the old password no longer works on the connection that proved it');
  assert.equal(refused.reused, true);
  assert.equal((await get(aliceConn, '/pw', basic('alice', changed))).status, 200, 'the new one does');
  const gone = await until(bobConn, '/pw', bob, 407);
  assert.equal(gone.status, 407, 'a removed user is refused on a proven connection');
  assert.equal(gone.reused, true);
  await swsOk(['user', 'passwd', 'alice', '--password-stdin', '--data', chain.outerData], { stdin: `${PASSWORDS.alice}\n` });
  await until(connection(), '/pw', oldAlice, 200);
});

test('a reload of a fresh entry (Cache-Control no-cache or max-age=0, Pragma no-cache) revalidates through the inner; a plain request is a hit with a growing Age', async () => {
  const conn = connection();
  const alice = basic('alice', PASSWORDS.alice);
  assert.equal((await get(conn, '/reload', alice)).status, 200);
  const plain = async () => {
    const inner0 = await innerSaw();
    const a = await get(conn, '/reload', alice);
    assert.equal(a.status, 200);
    assert.equal(a.body, 'page /reload');
    assert.equal(await innerSaw(), inner0, 'a hit: the inner saw nothing');
    return Number(a.headers.age);
  };
  await plain();
  for (const headers of [{ 'cache-control': 'no-cache' }, { 'cache-control': 'max-age=0' }, { pragma: 'no-cache' }] as Record<string, string>[]) {
    const inner0 = await innerSaw();
    const reval0 = await metric('sws_cache_revalidations_total', { cache: 'outer', result: 'not-modified' });
    const a = await get(conn, '/reload', alice, headers);
    assert.equal(a.status, 200, JSON.stringify(headers));
    assert.equal(a.body, 'page /reload');
    assert.equal((await innerSaw()) - inner0, 1, `${JSON.stringify(headers)}: asked the inner`);
    assert.equal((await metric('sws_cache_revalidations_total', { cache: 'outer', result: 'not-modified' })) - reval0, 1, 'as a conditional request');
    assert.equal(origin.requests.at(-1)?.headers['if-none-match'], '"v1"', 'with the stored validator');
  }
  assert.equal(await plain(), 0, 'the 304 refreshed the entry: its Age starts over');
  // Age counts whole seconds in the cache: ask until it moves (hits all along).
  const end = Date.now() + 5000;
  let age = 0;
  while (age < 1 && Date.now() < end) {
    await new Promise((r) => setTimeout(r, 100));
    age = await plain();
  }
  assert.ok(age >= 1, 'Age grew');
});

test('every hit writes its access line, in the same key order as before, and counts in sws_requests_total and the latency histogram', async () => {
  const conn = connection();
  const alice = basic('alice', PASSWORDS.alice);
  await get(conn, '/logged', alice);
  const req0 = await metric('sws_requests_total', { outcome: 'ok', status: '200' });
  const dur0 = await metric('sws_request_duration_seconds_count', { outcome: 'ok' });
  const hits0 = await metric('sws_cache_hits_total', { cache: 'outer' });
  const lines0 = chain.outer.logs.length;
  for (let i = 0; i < 3; i++) assert.equal((await get(conn, '/logged', alice)).status, 200);
  assert.equal((await get(conn, '/logged', basic('alice', 'wrong'))).status, 407);
  assert.equal((await metric('sws_cache_hits_total', { cache: 'outer' })) - hits0, 3);
  assert.equal((await metric('sws_requests_total', { outcome: 'ok', status: '200' })) - req0, 3);
  assert.equal((await metric('sws_request_duration_seconds_count', { outcome: 'ok' })) - dur0, 3);
  const lines = await eventually(() => {
    const l = chain.outer.logs.slice(lines0).filter((r) => r.msg === 'request' && r.path === '/logged');
    return l.filter((x) => x.cache === 'hit').length >= 3 && l.some((x) => x.status === 407) ? l : undefined;
  }, 5000, 'the access lines of three hits and a 407');
  const hits = lines.filter((l) => l.cache === 'hit');
  assert.equal(hits.length, 3);
  for (const l of hits) {
    assert.deepEqual(Object.keys(l), ['level', 'time', 'role', 'pid', 'method', 'remote', 'host', 'path', 'user', 'inner', 'cache', 'decision', 'status', 'ms', 'outcome', 'msg']);
    assert.deepEqual({ ...l, time: 0, pid: 0, ms: 0, remote: 0 }, { level: 30, time: 0, role: 'outer', pid: 0, method: 'GET', remote: 0, host: HOST, path: '/logged', user: 'alice', inner: 'main', cache: 'hit', decision: 'allow', status: 200, ms: 0, outcome: 'ok', msg: 'request' });
    assert.equal(typeof l.ms, 'number');
  }
  const denied = lines.find((l) => l.status === 407)!;
  assert.deepEqual(Object.keys(denied), ['level', 'time', 'role', 'pid', 'method', 'remote', 'host', 'path', 'decision', 'status', 'ms', 'outcome', 'code', 'msg']);
  assert.equal(denied.code, 'SWS_ERR_PROXY_AUTH');
  assert.ok(!JSON.stringify(lines).includes(PASSWORDS.alice), 'never a password');
});

test('a hit whose origin sent its body chunked is answered with a Content-Length (no chunked framing), small or stored in pieces; HEAD hits get none added', async () => {
  const conn = connection();
  const alice = basic('alice', PASSWORDS.alice);
  const miss = await get(conn, '/cl', alice);
  assert.equal(miss.status, 200);
  assert.equal(miss.headers['content-length'], undefined, 'the origin declared no length: the miss streams');
  const hit = await get(conn, '/cl', alice);
  assert.equal(hit.body, 'page /cl');
  assert.equal(hit.headers['content-length'], String(Buffer.byteLength('page /cl')));
  assert.equal(hit.headers['transfer-encoding'], undefined);
  assert.ok(Number(hit.headers.age) >= 0, 'answered from the cache');
  const head = await new Promise<IncomingMessage>((resolve, reject) => {
    const proxy = new URL(chain.proxy);
    httpRequest({ host: proxy.hostname, port: proxy.port, method: 'HEAD', path: `http://${HOST}/cl`, agent: conn, headers: { host: HOST, 'proxy-authorization': alice } }, (res) => resolve(res.resume()))
      .on('error', reject)
      .end();
  });
  assert.equal(head.statusCode, 200);
  assert.ok(head.headers.age !== undefined, 'the HEAD was answered from the cache');
  assert.equal(head.headers['content-length'], undefined);

  // A body the outer streamed from the inner is stored in several pieces; its hit declares their sum.
  const bigMiss = await get(conn, '/big', alice);
  assert.equal(bigMiss.body.length, BIG.length);
  assert.equal(bigMiss.headers['content-length'], undefined);
  const bigHit = await get(conn, '/big', alice);
  assert.ok(bigHit.headers.age !== undefined, 'answered from the cache');
  assert.equal(bigHit.body, BIG.toString());
  assert.equal(bigHit.headers['content-length'], String(BIG.length));
  assert.equal(bigHit.headers['transfer-encoding'], undefined);
});

/**
 * Claims 1 and 2 end to end: real `sws` processes, a real origin (node:http), real clients
 * (node:http as a proxy client, and curl where installed), all on OS-chosen loopback ports.
 * The outer reaches the inner through a recording relay: what it records is what an
 * eavesdropper on the untrusted network sees.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ProxyAgent, request as undiciRequest } from 'undici';
import { basic, closedPort, eventually, pattern, metricValue, PASSWORDS, startChain, startOrigin, startSidecar, swsOk, viaProxy, type Chain, type Origin, type ProxiedAnswer } from '../helpers/e2e.ts';
import { startForger, type Forger } from '../helpers/forger.ts';
import { startRelay, type RecordingRelay } from '../helpers/relay.ts';

const HOST = 'intranet.example';
let origin: Origin;
let chain: Chain;
let relay: RecordingRelay;
/** outer → forger → relay → inner: an active attacker that can replace one answer of the inner. */
let forger: Forger;
/** /hold requests the web server received and has not answered, with a promise for each one's socket closing. */
const held: { closed: Promise<void> }[] = [];
/** Resolvers the /sse route waits on between events. */
const sseGates: (() => void)[] = [];
let uploadAborted: Promise<void> = Promise.resolve();
let markUploadAborted = () => undefined as void;

before(async () => {
  origin = await startOrigin((req, res) => {
    const url = new URL(req.url!, 'http://x');
    if (url.pathname === '/port') {
      res.writeHead(200, { 'content-type': 'text/plain' }).end(String(req.socket.remotePort));
    } else if (url.pathname === '/hop') {
      // Hop-by-hop fields in the answer: those Connection names and Keep-Alive must stop at the inner.
      res.writeHead(200, { 'content-type': 'text/plain', connection: 'x-hop-secret', 'x-hop-secret': 'hop', 'keep-alive': 'timeout=99', 'proxy-authenticate': 'Basic realm="from-the-web-server"', 'x-end': 'end-to-end' }).end('hop');
    } else if (url.pathname === '/headers') {
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ headers: req.headers, url: req.url, method: req.method }));
    } else if (url.pathname.startsWith('/docs/')) {
      res.writeHead(200, { 'content-type': 'text/html', 'x-origin': 'yes' }).end(`<h1>doc ${url.pathname}</h1>`);
    } else if (url.pathname === '/echo') {
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      req.pipe(res);
    } else if (url.pathname === '/big') {
      const size = Number(url.searchParams.get('size'));
      const block = pattern(1 << 20);
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(size) });
      let sent = 0;
      const pump = () => {
        while (sent < size) {
          const n = Math.min(block.length, size - sent);
          sent += n;
          if (!res.write(n === block.length ? block : block.subarray(0, n))) return void res.once('drain', pump);
        }
        res.end();
      };
      pump();
    } else if (url.pathname === '/upload') {
      const h = createHash('sha256');
      let n = 0;
      let done = false;
      req.on('data', (c: Buffer) => (h.update(c), (n += c.length)));
      req.on('end', () => ((done = true), res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ sha256: h.digest('hex'), bytes: n }))));
      req.on('close', () => {
        if (!done) markUploadAborted();
      });
    } else if (url.pathname === '/sse') {
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
      res.write('data: one\n\n');
      sseGates.push(() => {
        res.write('data: two\n\n');
        res.end();
      });
    } else if (url.pathname === '/hold') {
      // Holds the response head; records when its request's connection goes away.
      held.push({ closed: once(res, 'close').then(() => undefined) });
    } else if (url.pathname === '/once') {
      // A non-idempotent action: tests count how often it ran by its query.
      req.resume();
      req.on('end', () => res.writeHead(201, { 'content-type': 'text/plain' }).end(`done ${url.searchParams.get('id')}`));
    } else if (url.pathname === '/slow') {
      // Never answers: the inner must give up with 504.
    } else if (url.pathname === '/die') {
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(1 << 20) });
      res.write(pattern(100_000), () => res.destroy());
    } else {
      res.writeHead(404).end('nope');
    }
  });
  chain = await startChain({
    originUrl: origin.url,
    host: HOST,
    extraSites: { 'down.example': `http://127.0.0.1:${await closedPort()}` },
    grants: [
      ['alice', '/**'],
      ['bob', '/docs/**', '--methods', 'GET,HEAD'],
    ],
    innerArgs: ['--upstream-timeout', '1500'],
    // The shipped interval, pinned against the caller's environment (the 64 MiB test counts collections).
    env: { SWS_YOUNG_GC_MIB: '2' },
    via: async (innerUrl) => {
      const u = new URL(innerUrl);
      relay = await startRelay({ host: u.hostname, port: Number(u.port) });
      const r = new URL(relay.url);
      forger = await startForger({ host: r.hostname, port: Number(r.port) });
      return forger.url;
    },
  });
});

after(async () => {
  await chain?.stop();
  await forger?.close();
  await relay?.close();
  await origin?.close();
});

type Answer = ProxiedAnswer;

function proxied(path: string, opts: Parameters<typeof viaProxy>[3] & { host?: string } = {}): Promise<Answer> {
  return viaProxy(chain.proxy, opts.host ?? HOST, path, opts);
}

test('claim 1: an allowed request reaches the unchanged web server and the answer comes back', async () => {
  const r = await proxied('/docs/a.html?x=1');
  assert.equal(r.status, 200);
  assert.equal(r.body.toString(), '<h1>doc /docs/a.html</h1>');
  assert.equal(r.headers['x-origin'], 'yes', 'the web server headers come back');
  const seen = origin.requests.at(-1)!;
  assert.equal(seen.url, '/docs/a.html?x=1', 'the web server sees the original path and query');
  assert.equal(seen.headers.host, HOST, 'and the original Host');
});

test('ACL: a denied request gets 403 with a short message, and the web server sees nothing', async () => {
  const before = origin.requests.length;
  const r = await proxied('/admin/x', { user: 'bob' });
  assert.equal(r.status, 403);
  assert.match(r.body.toString(), /access denied/);
  assert.equal(origin.requests.length, before);
  const bobPost = await proxied('/docs/a.html', { user: 'bob', method: 'POST', body: 'x' });
  assert.equal(bobPost.status, 403, 'bob may only GET/HEAD under /docs');
});

test('ACL bypass attempts through the whole chain: dot-segments, encoded separators, NUL and bad escapes never reach the web server', async () => {
  // bob may GET /docs/** only. Each target below either normalizes to a path outside /docs
  // (denied, 403) or cannot be normalized unambiguously (refused, 400); none is guessed.
  const attempts = ['/docs/../admin/x', '/docs/%2e%2e/admin/x', '/docs/%2E%2E/%2e%2e/admin/x', '/docs/..%2fadmin/x', '/docs%2f..%2fadmin/x', '/docs/%5c..%5cadmin/x', '/docs/a%00b', '/docs/%zz', '/docs/../../../admin/x'];
  const before = origin.requests.length;
  const statuses: Record<string, number> = {};
  for (const path of attempts) statuses[path] = (await proxied(path, { user: 'bob' })).status;
  for (const [path, status] of Object.entries(statuses)) assert.ok(status === 400 || status === 403, `${path}: ${status}`);
  assert.equal(origin.requests.length, before, `the web server saw none of them (${JSON.stringify(statuses)})`);
  // The baseline: the same user, a plain path inside the grant, does reach it.
  assert.equal((await proxied('/docs/inside.html', { user: 'bob' })).status, 200);
  assert.equal(origin.requests.length, before + 1);
});

test('outer authentication: missing or wrong credentials get 407 with a Basic challenge', async () => {
  const none = await proxied('/docs/a.html', { user: null });
  assert.equal(none.status, 407);
  assert.match(String(none.headers['proxy-authenticate']), /^Basic realm="sws"/);
  const wrong = await proxied('/docs/a.html', { user: 'alice', password: 'not it' });
  assert.equal(wrong.status, 407);
  assert.match(String(wrong.headers['proxy-authenticate']), /^Basic realm="sws"/, 'a wrong password is challenged again');
  const unknown = await proxied('/docs/a.html', { user: 'alice', password: PASSWORDS.bob });
  assert.equal(unknown.status, 407);
  assert.match(String(unknown.headers['proxy-authenticate']), /^Basic realm="sws"/);
});

test('identity: the web server sees X-Forwarded-User; spoofed identity and path-override headers are removed', async () => {
  const r = await proxied('/headers', {
    headers: {
      'X-Forwarded-User': 'admin',
      'x_forwarded_user': 'admin',
      'X-Original-URL': '/admin',
      'X-Rewrite-URL': '/admin',
      'X-Forwarded-Uri': '/admin',
      'Connection': 'x-drop-me',
      'X-Drop-Me': 'hop',
      'X-Keep': 'end-to-end',
    },
  });
  assert.equal(r.status, 200);
  const seen = JSON.parse(r.body.toString()) as { headers: Record<string, string> };
  assert.equal(seen.headers['x-forwarded-user'], 'alice');
  for (const h of ['x_forwarded_user', 'x-original-url', 'x-rewrite-url', 'x-forwarded-uri', 'x-drop-me', 'proxy-authorization']) {
    assert.equal(seen.headers[h], undefined, `${h} must not reach the web server`);
  }
  assert.equal(seen.headers['x-keep'], 'end-to-end');
});

test("hop-by-hop and Proxy-* fields of the web server's answer (Keep-Alive, those its Connection names) do not reach the client", async () => {
  const r = await proxied('/hop');
  assert.equal(r.status, 200);
  assert.equal(r.body.toString(), 'hop');
  assert.equal(r.headers['x-end'], 'end-to-end');
  assert.equal(r.headers['x-hop-secret'], undefined, 'a field the answer\'s Connection names is not carried');
  assert.doesNotMatch(String(r.headers['connection'] ?? ''), /x-hop-secret/i);
  assert.doesNotMatch(String(r.headers['keep-alive'] ?? ''), /timeout=99/, "the web server's Keep-Alive is about its own connection");
  assert.equal(r.headers['proxy-authenticate'], undefined, "a web server's proxy challenge would pass for the outer's");
});

test('keep-alive pools on both hops: sequential requests from new client connections reuse one connection to the inner and one to the web server', async () => {
  assert.equal((await proxied('/port')).status, 200);
  relay.clear();
  const ports = new Set<string>();
  for (let i = 0; i < 6; i++) {
    const r = await proxied('/port');
    assert.equal(r.status, 200);
    ports.add(r.body.toString());
  }
  assert.equal(relay.connections(), 0, 'the outer reused its pooled connection to the inner');
  assert.equal(ports.size, 1, `the inner reused its pooled connection to the web server (ports ${[...ports].join(', ')})`);
});

test('a host that no inner fronts: 502 and nothing is sent anywhere in clear', async () => {
  relay.clear();
  const r = await proxied('/x', { host: 'nowhere.example' });
  assert.equal(r.status, 502);
  assert.match(r.body.toString(), /no inner server/);
  assert.equal(relay.recorded().length, 0);
});

test('claim 2 / property 1: the network between outer and inner sees no path, header value, body or password', async () => {
  relay.clear();
  const secretPath = '/docs/very-secret-path-7f3a';
  const secretHeader = 'header-value-c0ffee';
  const secretBody = 'body-text-deadbeef'.repeat(10);
  const r = await proxied(`${secretPath}?q=query-9b1d`, { method: 'GET', headers: { 'x-note': secretHeader } });
  assert.equal(r.status, 200);
  const up = await proxied('/echo', { method: 'POST', body: secretBody, headers: { 'x-note': secretHeader } });
  assert.equal(up.body.toString(), secretBody);
  const wire = relay.recorded().toString('latin1');
  assert.ok(wire.length > 0, 'the relay saw the traffic');
  const credential = basic('alice', PASSWORDS.alice).slice('Basic '.length);
  for (const needle of ['very-secret-path', 'query-9b1d', secretHeader, 'deadbeef', 'alice', PASSWORDS.alice, credential, 'intranet.example', 'x-note', 'doc /docs']) {
    assert.ok(!wire.includes(needle), `"${needle}" crossed the network in clear`);
  }
  assert.match(wire, /POST \/\.sws\/v1 HTTP\/1\.1/, 'envelopes are plain HTTP/1.1 POSTs (claim 2)');
  // Patent 0064: each answer of the inner, not only the outer's requests, forbids caching on the way.
  const answers = relay.recorded('from-inner').toString('latin1').split(/(?=HTTP\/1\.1 \d{3} )/).filter((a) => a.startsWith('HTTP/1.1 '));
  assert.ok(answers.length >= 2, `the relay saw the inner's answers (${answers.length})`);
  for (const a of answers) assert.match(a.slice(0, a.indexOf('\r\n\r\n')), /\r\ncache-control: no-store/i, `an answer of the inner without no-store: ${a.slice(0, 80)}`);
  const requests = relay.recorded('to-inner').toString('latin1').split(/(?=POST \/\.sws\/v1 HTTP\/1\.1\r\n)/).filter((q) => q.startsWith('POST '));
  for (const q of requests) assert.match(q.slice(0, q.indexOf('\r\n\r\n')), /\r\ncache-control: no-store/i, 'every envelope request forbids caching too');
});

test('curl through the outer as a proxy (skipped if curl is not installed)', async (t) => {
  const exec = promisify(execFile);
  try {
    await exec('curl', ['--version']);
  } catch {
    t.skip('curl is not installed');
    return;
  }
  const { stdout } = await exec('curl', ['-sS', '-x', chain.proxy, '-U', `alice:${PASSWORDS.alice}`, '-w', '\n%{http_code}', `http://${HOST}/docs/curl.html`]);
  assert.equal(stdout, '<h1>doc /docs/curl.html</h1>\n200');
  const denied = await exec('curl', ['-sS', '-o', '/dev/null', '-w', '%{http_code}', '-x', chain.proxy, `http://${HOST}/docs/curl.html`]);
  assert.equal(denied.stdout, '407');
});

/** The bound on how much either sidecar's peak RSS may grow while it moves 64 MiB down and 32 MiB up (streamed, never buffered whole). */
const RSS_GROWTH_BOUND = 48 << 20;

test('64 MiB download and 32 MiB upload arrive intact (sha-256), and neither sidecar buffers them (peak RSS bounded)', async (t) => {
  const size = 64 << 20;
  const expected = createHash('sha256');
  const block = pattern(1 << 20);
  // Warm-up: the same paths with 4 MiB each way, so JIT, pools and buffers reach their steady size first.
  assert.equal((await proxied(`/big?size=${4 << 20}`)).body.length, 4 << 20);
  assert.equal((await proxied('/upload', { method: 'POST', body: Buffer.concat(Array.from({ length: 4 }, () => block)) })).status, 200);
  const warm = { outer: chain.outer.peakRss(), inner: chain.inner.peakRss() };
  assert.ok(warm.outer > 0 && warm.inner > 0, 'VmHWM is readable (Linux /proc)');
  const youngBefore = await Promise.all([chain.outer.metrics(), chain.inner.metrics()].map(async (m) => metricValue(await m, 'sws_young_gc_requested_total')));
  for (let s = 0; s < size; s += block.length) expected.update(block);
  const down = await proxied(`/big?size=${size}`);
  assert.equal(down.status, 200);
  assert.equal(down.body.length, size);
  assert.equal(createHash('sha256').update(down.body).digest('hex'), expected.digest('hex'));

  const upload = Buffer.concat(Array.from({ length: 32 }, () => block));
  const up = await proxied('/upload', { method: 'POST', body: upload });
  assert.equal(up.status, 200);
  const got = JSON.parse(up.body.toString()) as { sha256: string; bytes: number };
  assert.equal(got.bytes, upload.length);
  assert.equal(got.sha256, createHash('sha256').update(upload).digest('hex'));
  // Each sidecar sealed or opened 96 MiB of records: a young collection asked for every 2 MiB (sidecar-shared/young-gc.ts).
  const youngAfter = await Promise.all([chain.outer.metrics(), chain.inner.metrics()].map(async (m) => metricValue(await m, 'sws_young_gc_requested_total')));
  for (const [i, side] of ['outer', 'inner'].entries()) {
    const asked = youngAfter[i]! - youngBefore[i]!;
    assert.ok(asked >= 47 && asked <= 49, `${side} asked for ${asked} young collections over 96 MiB of records`);
  }
  const mib = (n: number) => (n / 1048576).toFixed(1);
  const growth = { outer: chain.outer.peakRss() - warm.outer, inner: chain.inner.peakRss() - warm.inner };
  t.diagnostic(`peak RSS after warm-up: outer ${mib(warm.outer)} MiB, inner ${mib(warm.inner)} MiB; growth over 96 MiB moved: outer ${mib(growth.outer)} MiB, inner ${mib(growth.inner)} MiB`);
  assert.ok(growth.outer < RSS_GROWTH_BOUND, `the outer's peak RSS grew ${mib(growth.outer)} MiB (bound ${mib(RSS_GROWTH_BOUND)})`);
  assert.ok(growth.inner < RSS_GROWTH_BOUND, `the inner's peak RSS grew ${mib(growth.inner)} MiB (bound ${mib(RSS_GROWTH_BOUND)})`);
});

test('server-sent events flow as the web server writes them (nothing waits for a buffer to fill)', async () => {
  const proxy = new URL(chain.proxy);
  const events: string[] = [];
  await new Promise<void>((resolve, reject) => {
    const req = httpRequest({ host: proxy.hostname, port: proxy.port, path: `http://${HOST}/sse`, headers: { host: HOST, 'proxy-authorization': basic('alice', PASSWORDS.alice) }, agent: false }, (res) => {
      res.setEncoding('utf8');
      res.on('data', (d: string) => {
        events.push(d);
        // The web server sends the second event only after the client saw the first.
        if (events.join('').includes('data: one') && sseGates.length > 0) sseGates.shift()!();
      });
      res.on('end', resolve);
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
  assert.equal(events.join(''), 'data: one\n\ndata: two\n\n');
});

test('upstream too slow: 504 in words; upstream down: 502 in words', async () => {
  const slow = await proxied('/slow');
  assert.equal(slow.status, 504);
  assert.match(slow.body.toString(), /did not answer in time/);
  // A site whose upstream refuses connections.
  const down = await proxied('/x', { host: 'down.example' });
  assert.equal(down.status, 502);
  assert.match(down.body.toString(), /could not be reached/);
});

test('an upstream that dies mid-body gives the client a cut connection, never a short body that looks complete', async () => {
  await assert.rejects(proxied('/die'), /aborted|socket hang up|ECONNRESET|terminated/);
});

test('a client that disconnects mid-upload aborts the upstream request', async () => {
  uploadAborted = new Promise<void>((r) => (markUploadAborted = () => r()));
  const proxy = new URL(chain.proxy);
  const req = httpRequest({
    host: proxy.hostname,
    port: proxy.port,
    method: 'POST',
    path: `http://${HOST}/upload`,
    headers: { host: HOST, 'proxy-authorization': basic('alice', PASSWORDS.alice), 'content-length': String(8 << 20) },
    agent: false,
  });
  req.on('error', () => undefined);
  const uploadsBefore = origin.requests.filter((r) => r.url === '/upload').length;
  req.write(pattern(1 << 20));
  // Probe until the web server has started receiving this upload, then vanish mid-body.
  while (origin.requests.filter((r) => r.url === '/upload').length === uploadsBefore) await new Promise((r) => setTimeout(r, 5));
  req.destroy();
  await uploadAborted;
});

test('malformed requests to the outer get a clear 4xx and never reach the inner', async () => {
  relay.clear();
  const raw = (text: string) =>
    new Promise<string>((resolve) => {
      const s = connect(Number(new URL(chain.proxy).port), '127.0.0.1');
      let out = '';
      s.on('data', (d) => (out += d.toString('latin1')));
      s.on('close', () => resolve(out));
      s.on('error', () => resolve(out));
      s.end(text);
    });
  const auth = `Proxy-Authorization: ${basic('alice', PASSWORDS.alice)}\r\n`;
  assert.match(await raw('GARBAGE\r\n\r\n'), /^HTTP\/1\.1 400/);
  assert.match(await raw(`POST http://${HOST}/echo HTTP/1.1\r\nHost: ${HOST}\r\n${auth}Content-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n`), /^HTTP\/1\.1 400/);
  assert.match(await raw(`GET http://${HOST}/ HTTP/1.1\r\nHost: ${HOST}\r\n${auth}X-Big: ${'a'.repeat(40_000)}\r\n\r\n`), /^HTTP\/1\.1 431/);
  assert.match(await raw(`GET http://user:pw@${HOST}/ HTTP/1.1\r\nHost: ${HOST}\r\n${auth}\r\n`), /^HTTP\/1\.1 400[\s\S]*user information/);
  assert.match(await raw(`CONNECT ${HOST}:443 HTTP/1.1\r\nHost: ${HOST}:443\r\n${auth}\r\n`), /^HTTP\/1\.1 405[\s\S]*CONNECT/);
  assert.match(await raw(`GET /docs/a.html HTTP/1.1\r\nHost: ${HOST}\r\n${auth}\r\n`), /^HTTP\/1\.1 400[\s\S]*proxy/);
  assert.equal(relay.recorded().length, 0, 'nothing reached the inner');
});

test('malformed envelopes to the inner are refused with problem+json and counted', async () => {
  const inner = new URL(chain.inner.url);
  const post = (headers: Record<string, string>, body: Buffer) =>
    new Promise<Answer>((resolve, reject) => {
      const req = httpRequest({ host: inner.hostname, port: inner.port, method: 'POST', path: '/.sws/v1', headers, agent: false }, (res) => {
        const parts: Buffer[] = [];
        res.on('data', (c: Buffer) => parts.push(c));
        res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(parts) }));
      });
      req.on('error', reject);
      req.end(body);
    });
  const garbage = await post({ 'content-type': 'application/vnd.sws.v1' }, Buffer.from('not an envelope at all, definitely not 38 octets'));
  assert.equal(garbage.status, 400);
  assert.equal(garbage.headers['sws-key-state'], 'rejected');
  assert.equal(garbage.headers['cache-control'], 'no-store');
  assert.equal(JSON.parse(garbage.body.toString()).code, 'SWS_ERR_MALFORMED');
  const wrongType = await post({ 'content-type': 'text/plain' }, Buffer.from('x'));
  assert.equal(wrongType.status, 415);
  const m = await chain.inner.metrics();
  assert.ok(metricValue(m, 'sws_rejections_total', { code: 'SWS_ERR_MALFORMED' }) >= 1);
});

test('admin endpoints: /healthz, /readyz and /metrics with the contract metrics', async () => {
  for (const side of [chain.outer, chain.inner]) {
    for (const path of ['/healthz', '/readyz']) {
      const r = await fetch(`${side.adminUrl}${path}`);
      assert.equal(r.status, 200, `${path}`);
    }
    const m = await side.metrics();
    for (const name of ['sws_requests_total', 'sws_key_exchanges_total', 'sws_cache_hits_total', 'sws_rejections_total', 'sws_request_duration_seconds']) {
      assert.match(m, new RegExp(`^# TYPE ${name} `, 'm'), `${name} on ${side.url}`);
    }
  }
  const outerM = await chain.outer.metrics();
  assert.ok(metricValue(outerM, 'sws_requests_total', { outcome: 'ok' }) > 5);
  assert.ok(metricValue(outerM, 'sws_key_exchanges_total', { result: 'ok' }) >= 2);
});

test('access log: one JSON line per request with user, host, method, path, status and duration; no secrets, bodies or header values', async () => {
  await proxied('/docs/logged.html');
  const secretBody = 'logged-body-5ea1ed'.repeat(4);
  assert.equal((await proxied('/echo?token=query-secret-77', { method: 'POST', body: secretBody, headers: { 'x-note': 'header-value-a11ce' } })).body.toString(), secretBody);
  await eventually(() => chain.inner.logs.findLast((l) => l.msg === 'request' && l.path === '/echo'), 5000, 'the access line of the POST');
  const line = await eventually(() => chain.inner.logs.findLast((l) => l.msg === 'request' && l.path === '/docs/logged.html'), 5000, 'the access log line');
  assert.equal(line.user, 'alice');
  assert.equal(line.host, HOST);
  assert.equal(line.method, 'GET');
  assert.equal(line.status, 200);
  assert.equal(typeof line.ms, 'number');
  const all = JSON.stringify([...chain.inner.logs, ...chain.outer.logs]);
  assert.ok(!all.includes(PASSWORDS.alice) && !all.includes(PASSWORDS.bob), 'no password in any log line');
  assert.ok(!all.includes(basic('alice', PASSWORDS.alice).slice(6)), 'nor the Basic credential');
  assert.ok(!/PRIVATE KEY/.test(all));
  for (const needle of ['logged-body-5ea1ed', 'query-secret-77', 'header-value-a11ce']) assert.ok(!all.includes(needle), `"${needle}" (a body, a query, a header value) is in a log line`);
});

test('inner restart between two requests: the outer exchanges again and the GET succeeds, invisibly', async () => {
  const first = await proxied('/docs/before.html');
  assert.equal(first.status, 200);
  const exchangesBefore = metricValue(await chain.outer.metrics(), 'sws_key_exchanges_total', { result: 'ok' });
  await chain.restartInner();
  const count = origin.requests.length;
  const second = await proxied('/docs/after.html');
  assert.equal(second.status, 200);
  assert.equal(origin.requests.length, count + 1, 'the web server saw the request exactly once');
  const after = await chain.outer.metrics();
  assert.ok(metricValue(after, 'sws_key_exchanges_total', { reason: 'session-lost', result: 'ok' }) >= 1);
  assert.ok(metricValue(after, 'sws_key_exchanges_total', { result: 'ok' }) > exchangesBefore);
});

test('property 4: a recorded exchange replayed to a restarted inner is refused and nothing reaches the web server', async () => {
  await chain.restartInner();
  relay.clear();
  // The outer's session is gone with the old inner: this GET makes it exchange again (recorded).
  assert.equal((await proxied('/docs/replay-me.html')).status, 200);
  const sent = relay.recorded('to-inner').toString('latin1');
  const start = sent.lastIndexOf('POST /.sws/v1 HTTP/1.1');
  assert.ok(start >= 0 && /sws-key-state: exchange\r\n/i.test(sent.slice(start)), 'recorded an envelope that starts with an exchange');
  const envelope = relay.recorded('to-inner').subarray(Buffer.byteLength(sent.slice(0, start), 'latin1'));
  await chain.restartInner();
  const seen = origin.requests.length;
  const answer = await new Promise<string>((resolve) => {
    const s = connect(chain.inner.port, '127.0.0.1');
    let out = '';
    s.on('data', (d) => (out += d.toString('latin1')));
    s.on('close', () => resolve(out));
    s.on('error', () => resolve(out));
    // Write without half-closing, as a client does; the inner answers and closes (connection: close).
    s.write(envelope);
  });
  assert.match(answer, /^HTTP\/1\.1 400/);
  assert.match(answer, /sws-key-state: exchange-failed/i);
  assert.match(answer, /SWS_ERR_REPLAY/);
  assert.equal(origin.requests.length, seen, 'the web server saw nothing');
});

test('SIGTERM: the inner finishes in-flight requests, then exits 0', async () => {
  const pending = proxied('/sse');
  while (sseGates.length === 0) await new Promise((r) => setTimeout(r, 5));
  const stopping = chain.inner.stop('SIGTERM');
  sseGates.shift()!();
  const r = await pending;
  assert.equal(r.status, 200);
  assert.equal(r.body.toString(), 'data: one\n\ndata: two\n\n');
  assert.equal(await stopping, 0);
  await chain.restartInner();
});

test('SIGTERM past --grace: new connections are refused at once, a stream still open is cut (the client sees it truncated), the databases are closed, exit 0', async () => {
  const own = await startChain({ originUrl: origin.url, host: HOST, innerArgs: ['--grace', '400'] });
  const gates = sseGates.length;
  try {
    const streamed = viaProxy(own.proxy, HOST, '/sse').then(
      () => 'whole',
      () => 'cut',
    );
    await eventually(() => (sseGates.length > gates ? true : undefined), 5000, 'the web server to start the stream');
    assert.ok(existsSync(join(own.innerData, 'sws.db-wal')), 'control: a running inner has its database open (WAL)');
    const exited = own.inner.stop('SIGTERM');
    const tryConnect = () =>
      new Promise<string>((r) => {
        const sock = connect(own.inner.port, '127.0.0.1');
        sock.once('connect', () => (sock.destroy(), r('accepted'))).once('error', (e: NodeJS.ErrnoException) => r(e.code ?? 'error'));
      });
    let outcome = await tryConnect();
    // The signal is handled within a few ms; poll until the listener is gone (no fixed sleep).
    for (const end = Date.now() + 5000; outcome === 'accepted' && Date.now() < end; outcome = await tryConnect()) await new Promise((r) => setTimeout(r, 10));
    assert.equal(outcome, 'ECONNREFUSED', 'a draining inner accepts no new connection');
    assert.equal(await within(streamed, 10_000, 'the stream to be cut after the grace period'), 'cut', 'the stream never released by the web server is cut, not ended as if whole');
    assert.equal(await exited, 0);
    for (const db of ['sws.db', 'replay.db']) assert.equal(existsSync(join(own.innerData, `${db}-wal`)), false, `${db} was closed (its WAL checkpointed and removed)`);
  } finally {
    sseGates.splice(gates).forEach((release) => release());
    await own.stop();
  }
});

/** Rejects with `what` unless `p` settles within `ms`: for events that must happen promptly (no sleeping). */
async function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([p, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what} did not happen within ${ms} ms`)), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}

/** The outer's access line for `path` (logs are written asynchronously). */
function outerLine(path: string): Promise<Record<string, unknown>> {
  return eventually(() => chain.outer.logs.findLast((l) => l.msg === 'request' && l.path === path), 5000, `the outer's access line for ${path}`);
}

test('curl uploads 2 MiB with Expect: 100-continue: the outer answers it itself and the web server gets the exact bytes', async () => {
  const exec = promisify(execFile);
  const dir = mkdtempSync(join(tmpdir(), 'sws-expect-'));
  try {
    const file = join(dir, 'upload.bin');
    const data = randomBytes((2 << 20) + 123);
    writeFileSync(file, data);
    // A fresh session first: a streamed body cannot be repeated if the inner lost the session (earlier tests restart it).
    assert.equal((await proxied('/docs/before-upload.html')).status, 200);
    const args = ['-sS', '-v', '-x', chain.proxy, '--data-binary', `@${file}`, '-H', 'content-type: application/octet-stream', `http://${HOST}/upload`];
    const ok = await exec('curl', ['-U', `alice:${PASSWORDS.alice}`, ...args]);
    assert.match(ok.stderr, /^> Expect: 100-continue/im, 'curl asked whether to send the body');
    assert.match(ok.stderr, /^< HTTP\/1\.1 100 Continue/im, 'the outer told it to go on');
    const got = JSON.parse(ok.stdout) as { sha256: string; bytes: number };
    assert.equal(got.bytes, data.length);
    assert.equal(got.sha256, createHash('sha256').update(data).digest('hex'));
    assert.equal(origin.requests.findLast((r) => r.url === '/upload')!.headers.expect, undefined, 'Expect is not carried past the outer');
    // Refused before the body: no "100 Continue" for a request that would be refused anyway.
    const refused = await exec('curl', ['-U', 'alice:wrong', '-o', '/dev/null', '-w', '%{http_code}', ...args]);
    assert.equal(refused.stdout, '407');
    assert.doesNotMatch(refused.stderr, /^< HTTP\/1\.1 100 Continue/im);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('undici as the proxy client: ProxyAgent with a Proxy-Authorization token', async () => {
  const agent = new ProxyAgent({ uri: chain.proxy, token: basic('alice', PASSWORDS.alice), proxyTunnel: false });
  const anonymous = new ProxyAgent({ uri: chain.proxy, proxyTunnel: false });
  try {
    const get = await undiciRequest(`http://${HOST}/docs/undici.html`, { dispatcher: agent });
    assert.equal(get.statusCode, 200);
    assert.equal(await get.body.text(), '<h1>doc /docs/undici.html</h1>');
    const body = randomBytes(200_000);
    const post = await undiciRequest(`http://${HOST}/echo`, { dispatcher: agent, method: 'POST', body });
    assert.equal(post.statusCode, 200);
    assert.ok(Buffer.from(await post.body.arrayBuffer()).equals(body), 'the 200 kB body made the round trip intact');
    // undici's ProxyAgent turns the outer's 407 into an error of its own.
    await assert.rejects(undiciRequest(`http://${HOST}/docs/undici-anonymous.html`, { dispatcher: anonymous }), /Proxy Authentication Required \(407\)/);
    assert.equal((await outerLine('/docs/undici-anonymous.html')).status, 407, 'refused at the outer');
  } finally {
    await Promise.all([agent.close(), anonymous.close()]);
  }
});

test("outer access line and metrics: decision and outcome for allowed, denied and unauthenticated requests; each rejection counted once", async () => {
  // Sessions first: an earlier test restarted the inner, and the invisible re-exchange it causes is counted there.
  for (const user of ['alice', 'bob'] as const) assert.equal((await proxied('/docs/warm.html', { user })).status, 200);
  const [outer0, inner0] = await Promise.all([chain.outer.metrics(), chain.inner.metrics()]);
  assert.equal((await proxied('/docs/decided-allow.html')).status, 200);
  assert.equal((await proxied('/admin/decided-deny', { user: 'bob' })).status, 403);
  assert.equal((await proxied('/docs/decided-anonymous.html', { user: null })).status, 407);
  const allow = await outerLine('/docs/decided-allow.html');
  assert.deepEqual([allow.user, allow.host, allow.method, allow.status, allow.decision, allow.outcome, allow.code], ['alice', HOST, 'GET', 200, 'allow', 'ok', undefined]);
  assert.equal(allow.keyState, 'established', 'the key state of the warm session is in the line');
  assert.equal(typeof allow.ms, 'number');
  const deny = await outerLine('/admin/decided-deny');
  assert.deepEqual([deny.user, deny.status, deny.decision, deny.outcome], ['bob', 403, 'deny', 'denied']);
  const anon = await outerLine('/docs/decided-anonymous.html');
  assert.deepEqual([anon.user, anon.status, anon.decision, anon.outcome, anon.code], [undefined, 407, 'unauthenticated', 'unauthenticated', 'SWS_ERR_PROXY_AUTH']);
  const [outer1, inner1] = await Promise.all([chain.outer.metrics(), chain.inner.metrics()]);
  const delta = (a: string, b: string, name: string, labels: Record<string, string> = {}) => metricValue(b, name, labels) - metricValue(a, name, labels);
  assert.equal(delta(outer0, outer1, 'sws_requests_total', { outcome: 'ok', status: '200' }), 1);
  assert.equal(delta(outer0, outer1, 'sws_requests_total', { outcome: 'denied', status: '403' }), 1);
  assert.equal(delta(outer0, outer1, 'sws_requests_total', { outcome: 'unauthenticated', status: '407' }), 1);
  assert.equal(delta(outer0, outer1, 'sws_rejections_total', { code: 'SWS_ERR_PROXY_AUTH' }), 1, 'the 407 is one rejection at the outer');
  assert.equal(delta(outer0, outer1, 'sws_rejections_total'), 1, 'and the only one there: the denial is the inner’s');
  assert.equal(delta(inner0, inner1, 'sws_rejections_total', { code: 'SWS_ERR_ACL_DENIED' }), 1, 'the ACL denial is one rejection at the inner');
  const codes = (text: string) => text.split('\n').filter((l) => l.startsWith('sws_rejections_total'));
  assert.equal(delta(inner0, inner1, 'sws_rejections_total'), 1, `inner rejections before ${codes(inner0).join(' ')} after ${codes(inner1).join(' ')}`);
});

test('a client that leaves before the answer head cancels the request at the web server', async () => {
  const rejections = metricValue(await chain.outer.metrics(), 'sws_rejections_total');
  const n = held.length;
  const proxy = new URL(chain.proxy);
  const req = httpRequest({ host: proxy.hostname, port: proxy.port, path: `http://${HOST}/hold`, headers: { host: HOST, 'proxy-authorization': basic('alice', PASSWORDS.alice) }, agent: false });
  req.on('error', () => undefined);
  req.end();
  await eventually(() => (held.length > n ? true : undefined), 5000, 'the web server to receive /hold');
  req.destroy();
  // The inner's own upstream timeout (1.5 s here) would close it too, later: the bound is below that.
  await within(held[n]!.closed, 1000, "the web server's request closing after the client left");
  const line = await outerLine('/hold');
  assert.deepEqual([line.outcome, line.code], ['aborted', 'SWS_ERR_CLIENT_GONE']);
  assert.equal(metricValue(await chain.outer.metrics(), 'sws_rejections_total'), rejections, 'a client leaving is no rejection');
});

test('property 7: a POST after an inner restart is repeated only once the new signed confirmation proves it never ran; the web server sees it once', async () => {
  assert.equal((await proxied('/docs/session.html')).status, 200, 'the outer holds a session with this inner');
  const inner = await chain.restartInner();
  const listening = inner.logs.find((l) => typeof l.msg === 'string' && l.msg.endsWith('sidecar listening'))!;
  // The retry rule: safe when the new inner's incarnation (before it listened) + 1 s skew < when the POST was sent.
  // That is a point on the clock, not a readiness condition: wait for it, with margin.
  const safeFrom = Date.parse(listening.time as string) + 1000 + 300;
  while (Date.now() < safeFrom) await new Promise((r) => setTimeout(r, safeFrom - Date.now()));
  const sessionLost = metricValue(await chain.outer.metrics(), 'sws_key_exchanges_total', { reason: 'session-lost', result: 'ok' });
  const r = await proxied('/once?id=after-restart', { method: 'POST', body: 'pay 10' });
  assert.equal(r.status, 201, 'proved unsent, so retried invisibly');
  assert.equal(r.body.toString(), 'done after-restart');
  assert.equal(origin.requests.filter((q) => q.url === '/once?id=after-restart').length, 1, 'the web server ran it exactly once');
  assert.ok(metricValue(await chain.outer.metrics(), 'sws_key_exchanges_total', { reason: 'session-lost', result: 'ok' }) > sessionLost, 'after a new exchange');
});

test('property 7: a forged "exchange-needed" after a POST ran does not make the outer run it twice: 502 with Retry-After', async () => {
  assert.equal((await proxied('/docs/session2.html')).status, 200);
  const rejections = metricValue(await chain.outer.metrics(), 'sws_rejections_total', { code: 'SWS_ERR_NOT_RETRIED' });
  const forged = forger.armExchangeNeeded();
  const r = await proxied('/once?id=forged', { method: 'POST', body: 'pay 10' });
  await forged;
  assert.equal(r.status, 502);
  assert.equal(r.headers['retry-after'], '1');
  assert.match(r.body.toString(), /may have reached the web server, so it was not repeated/);
  assert.equal(origin.requests.filter((q) => q.url === '/once?id=forged').length, 1, 'the web server ran it once, never twice');
  assert.equal(metricValue(await chain.outer.metrics(), 'sws_rejections_total', { code: 'SWS_ERR_NOT_RETRIED' }) - rejections, 1);
  // The same forgery against a GET: idempotent, so repeated after a new exchange, and it works.
  const get = forger.armExchangeNeeded();
  assert.equal((await proxied('/docs/forged-get.html')).status, 200);
  await get;
});

test('SIGTERM: the outer turns unready, finishes the in-flight request, then exits 0', async () => {
  const outer = await startSidecar(['outer', 'start', '--data', chain.outerData]);
  let stopped = false;
  try {
    const gates = sseGates.length;
    const pending = viaProxy(outer.url, HOST, '/sse');
    await eventually(() => (sseGates.length > gates ? true : undefined), 5000, 'the web server to start the stream');
    const exited = outer.stop('SIGTERM');
    stopped = true;
    const readyz = async () => {
      const r = await undiciRequest(`${outer.adminUrl}/readyz`);
      await r.body.dump();
      return r.statusCode;
    };
    let status = await readyz();
    for (const end = Date.now() + 5000; status === 200 && Date.now() < end; status = await readyz()) await new Promise((r) => setTimeout(r, 10));
    assert.equal(status, 503, '/readyz says not ready while draining');
    sseGates.splice(gates, 1)[0]!();
    const r = await pending;
    assert.equal(r.status, 200);
    assert.equal(r.body.toString(), 'data: one\n\ndata: two\n\n', 'the in-flight stream finished whole');
    assert.equal(await exited, 0);
  } finally {
    if (!stopped) await outer.stop();
  }
});

test('live changes: revoking a grant cuts a stream in flight within a second; removing a client ends its sessions', async () => {
  const proxy = new URL(chain.proxy);
  const outcome = await new Promise<string>((resolve) => {
    const req = httpRequest({ host: proxy.hostname, port: proxy.port, path: `http://${HOST}/sse`, headers: { host: HOST, 'proxy-authorization': basic('alice', PASSWORDS.alice) }, agent: false }, (res) => {
      let revoked = false;
      res.on('data', () => {
        if (revoked) return;
        revoked = true;
        // The first event arrived: now take alice's access away while the stream is open.
        void swsOk(['acl', 'revoke', 'alice', '/**', '--data', chain.innerData]);
      });
      res.on('end', () => resolve('ended normally'));
      res.on('aborted', () => resolve('cut'));
      res.on('error', () => resolve('cut'));
    });
    req.on('error', () => resolve('cut'));
    req.end();
  });
  assert.equal(outcome, 'cut');
  sseGates.splice(0).forEach((release) => release());
  const denied = await proxied('/docs/after-revoke.html');
  assert.equal(denied.status, 403);
  await swsOk(['acl', 'grant', 'alice', '/**', '--data', chain.innerData]);

  assert.equal((await proxied('/docs/b.html', { user: 'bob' })).status, 200);
  await swsOk(['client', 'remove', 'bob', '--data', chain.innerData]);
  // Probe until the inner's store watcher (100 ms poll) has seen the removal; bounded at 2 s.
  let last = 0;
  const until = Date.now() + 2000;
  while (Date.now() < until) {
    last = (await proxied('/docs/b.html', { user: 'bob' })).status;
    if (last !== 200) break;
    await new Promise((r) => setTimeout(r, 20));
  }
  assert.equal(last, 502, "bob's session ended and a new exchange is refused");
  const after = origin.requests.length;
  const rejections = metricValue(await chain.outer.metrics(), 'sws_rejections_total');
  assert.equal((await proxied('/docs/b.html', { user: 'bob' })).status, 502);
  assert.equal(origin.requests.length, after, 'nothing of bob reaches the web server any more');
  assert.equal(metricValue(await chain.outer.metrics(), 'sws_rejections_total') - rejections, 1, "the inner's refusal is one rejection at the outer, not two");
});

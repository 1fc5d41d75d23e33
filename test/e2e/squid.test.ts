/**
 * Claim 2 / patent 0064: nothing is cached on the network. Debian's Squid runs on loopback
 * between outer and inner (`sws outer start --inner-proxy`), with a disk cache that it uses
 * for anything it may keep: a control request shows it caches a cacheable GET. Repeated
 * cacheable requests through sws all work and all reach the WWW server, Squid's access log
 * shows every envelope as a miss, a second access log (custom format) shows that every
 * envelope request carried `Cache-Control: no-store` and every envelope answer
 * `no-store, private`, its store log shows no envelope stored, and no file in its cache
 * directory holds one. Skipped, saying why, only when squid is not installed
 * (`.ci/run` installs it).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { basic, eventually, PASSWORDS, startChain, startOrigin, type Chain, type Origin } from '../helpers/e2e.ts';

const HOST = 'intranet.example';
const SQUID = ['/usr/sbin/squid', '/usr/bin/squid'].find((p) => existsSync(p));
let origin: Origin;
let chain: Chain;
let squid: ChildProcess | undefined;
let squidUrl = '';
let dir = '';

async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  const port = (srv.address() as { port: number }).port;
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

/** GET through a proxy (absolute-form), optionally with Basic proxy credentials. */
function viaProxy(proxy: string, url: string, opts: { user?: 'alice'; method?: string; body?: string } = {}): Promise<{ status: number; body: string }> {
  const p = new URL(proxy);
  const u = new URL(url);
  const headers: Record<string, string> = { host: u.host };
  if (opts.user) headers['proxy-authorization'] = basic(opts.user, PASSWORDS[opts.user]);
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: p.hostname, port: p.port, method: opts.method ?? 'GET', path: url, headers, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode!, body }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(opts.body);
  });
}

function files(root: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(root)) {
    const p = join(root, name);
    if (statSync(p).isDirectory()) out.push(...files(p));
    else out.push(p);
  }
  return out;
}

before(async () => {
  if (!SQUID) return;
  origin = await startOrigin((req, res) => {
    if (req.method === 'POST') {
      let n = 0;
      req.on('data', (c: Buffer) => (n += c.length)).on('end', () => res.writeHead(200, { 'content-type': 'text/plain' }).end(`got ${n}`));
      return;
    }
    res.writeHead(200, { 'content-type': 'text/plain', 'cache-control': 'public, max-age=300', 'last-modified': new Date(Date.now() - 86400_000).toUTCString() }).end(`page ${req.url}`);
  });
  dir = mkdtempSync(join(tmpdir(), 'sws-squid-'));
  const port = await freePort();
  writeFileSync(
    join(dir, 'squid.conf'),
    [
      `http_port 127.0.0.1:${port}`,
      'http_access allow localhost',
      'http_access deny all',
      // A disk cache only, so that everything Squid keeps shows up in the store log and on disk.
      `cache_dir ufs ${join(dir, 'cache')} 16 4 4`,
      'cache_mem 0 MB',
      'maximum_object_size_in_memory 0 KB',
      `access_log stdio:${join(dir, 'access.log')} squid`,
      // Per exchange: the Cache-Control the outer sent and the one the inner answered with.
      'logformat swscc %ts.%03tu %Ss/%03>Hs %rm %ru req-cc=[%{Cache-Control}>h] resp-cc=[%{Cache-Control}<h]',
      `access_log stdio:${join(dir, 'headers.log')} swscc`,
      `cache_store_log stdio:${join(dir, 'store.log')}`,
      `cache_log ${join(dir, 'cache.log')}`,
      `pid_filename ${join(dir, 'squid.pid')}`,
      `coredump_dir ${dir}`,
      'dns_nameservers 127.0.0.1',
      'visible_hostname sws-test',
      'pinger_enable off',
      'shutdown_lifetime 0 seconds',
      '',
    ].join('\n'),
  );
  // As root Squid drops to the `proxy` user, which must own its files.
  if (process.getuid?.() === 0) {
    const uid = Number(execFileSync('id', ['-u', 'proxy']).toString().trim());
    const gid = Number(execFileSync('id', ['-g', 'proxy']).toString().trim());
    chownSync(dir, uid, gid);
  }
  execFileSync(SQUID, ['-z', '-N', '-f', join(dir, 'squid.conf')], { stdio: 'ignore' });
  squid = spawn(SQUID, ['-N', '-f', join(dir, 'squid.conf')], { stdio: 'ignore' });
  squidUrl = `http://127.0.0.1:${port}`;
  // Ready when it proxies a request (probe, no sleep-and-hope).
  for (let i = 0; ; i++) {
    try {
      await viaProxy(squidUrl, `${origin.url}/warm-up`);
      break;
    } catch (err) {
      if (i > 400 || squid.exitCode !== null) throw new Error(`squid did not start: ${String(err)}\n${existsSync(join(dir, 'cache.log')) ? readFileSync(join(dir, 'cache.log'), 'utf8') : ''}`);
      await new Promise((r) => setTimeout(r, 25));
    }
  }
  // Both sws caches off: every request must cross Squid.
  chain = await startChain({ originUrl: origin.url, host: HOST, outerArgs: ['--inner-proxy', squidUrl, '--no-cache'], innerArgs: ['--no-cache'] });
});

after(async () => {
  await chain?.stop();
  if (squid && squid.exitCode === null && squid.signalCode === null) {
    const exited = new Promise<void>((r) => squid!.once('exit', () => r()));
    squid.kill('SIGTERM');
    const timer = setTimeout(() => squid!.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(timer);
  }
  await origin?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test('control: this Squid caches what it may (a cacheable GET is stored and then served as a hit)', async (t) => {
  if (!SQUID) return t.skip('squid is not installed (.ci/run installs it with apt-get install squid)');
  const url = `${origin.url}/control`;
  assert.equal((await viaProxy(squidUrl, url)).status, 200);
  await eventually(() => (readFileSync(join(dir, 'store.log'), 'utf8').includes(`SWAPOUT`) ? true : undefined), 10_000, 'the control object stored');
  const seen = origin.requests.filter((r) => r.url === '/control').length;
  assert.equal((await viaProxy(squidUrl, url)).body, 'page /control');
  assert.equal(origin.requests.filter((r) => r.url === '/control').length, seen, 'the second GET was answered by Squid');
  await eventually(() => (/TCP_\w*HIT\/200 \d+ GET http:\/\/127\.0\.0\.1:\d+\/control/.test(readFileSync(join(dir, 'access.log'), 'utf8')) ? true : undefined), 10_000, 'a HIT in the access log');
});

test('claim 2 / patent 0064: repeated cacheable requests through Squid all work, all reach the WWW server, and Squid stores no envelope', async (t) => {
  if (!SQUID) return t.skip('squid is not installed (.ci/run installs it with apt-get install squid)');
  const rounds = 8;
  for (let i = 0; i < rounds; i++) {
    const r = await viaProxy(chain.proxy, `http://${HOST}/docs/cacheable.html`, { user: 'alice' });
    assert.equal(r.status, 200);
    assert.equal(r.body, 'page /docs/cacheable.html');
  }
  const post = await viaProxy(chain.proxy, `http://${HOST}/form`, { user: 'alice', method: 'POST', body: 'x'.repeat(1000) });
  assert.equal(post.body, 'got 1000');
  assert.equal(origin.requests.filter((r) => r.url === '/docs/cacheable.html').length, rounds, 'every request reached the WWW server: nothing in the middle answered');

  const innerUrl = `${chain.inner.url}/.sws/v1`;
  const envelopes = await eventually(() => {
    const lines = readFileSync(join(dir, 'access.log'), 'utf8').split('\n').filter((l) => l.includes(innerUrl));
    return lines.length >= rounds + 1 ? lines : undefined;
  }, 10_000, 'the envelopes in the access log');
  for (const line of envelopes) {
    assert.match(line, / TCP_MISS\/200 \d+ POST /, `every envelope is a POST Squid passed on: ${line}`);
    assert.doesNotMatch(line, /HIT/);
  }
  // Per envelope, not "at least one": every request the outer sent and every answer the inner
  // gave that crossed Squid says no-store (the property that keeps a GET-capable cache out).
  const withHeaders = await eventually(() => {
    const lines = readFileSync(join(dir, 'headers.log'), 'utf8').split('\n').filter((l) => l.includes(innerUrl));
    return lines.length >= envelopes.length ? lines : undefined;
  }, 10_000, 'the envelopes in the header log');
  assert.equal(withHeaders.length, envelopes.length);
  for (const line of withHeaders) {
    const [, req, resp] = /req-cc=\[([^\]]*)\] resp-cc=\[([^\]]*)\]/.exec(line) ?? [];
    assert.match(decodeURIComponent(req ?? ''), /^no-store$/, `the envelope request carries Cache-Control: no-store: ${line}`);
    assert.match(decodeURIComponent(resp ?? ''), /^no-store, private$/, `the envelope answer carries Cache-Control: no-store, private: ${line}`);
  }
  const stored = readFileSync(join(dir, 'store.log'), 'utf8').split('\n').filter((l) => l.includes('/.sws/v1') && l.includes('SWAPOUT'));
  assert.deepEqual(stored, [], 'the store log shows no envelope written to the cache');
  const cacheFiles = files(join(dir, 'cache')).filter((f) => !f.endsWith('swap.state') && !f.endsWith('swap.state.last-clean'));
  for (const f of cacheFiles) assert.ok(!readFileSync(f).includes('/.sws/v1'), `${f} holds an envelope`);
  t.diagnostic(`squid: ${envelopes.length} envelopes, all TCP_MISS and all no-store both ways; ${cacheFiles.length} object(s) in its cache dir, none an envelope`);
});

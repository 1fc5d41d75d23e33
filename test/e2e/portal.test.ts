/**
 * Claim 5 (patent 0069) with an HTTP client: portal mode (login page, session cookie,
 * logout and change of user erasing the browser's data with Clear-Site-Data) and, in
 * forward-proxy mode, Clear-Site-Data "cache" once per origin after a client address changes
 * user. The real browser's side of it is test/e2e/browser.test.ts.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { basic, metricValue, PASSWORDS, startChain, startOrigin, startSidecar, swsOk, type Chain, type Origin, type SidecarProcess } from '../helpers/e2e.ts';
import { openssl } from '../helpers/pki.ts';

const SITE = 'intranet.example';
let origin: Origin;
let chain: Chain;
let portalHost = '';
const extra: SidecarProcess[] = [];

before(async () => {
  origin = await startOrigin((req, res) => {
    if (req.url === '/headers') return void res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' }).end(JSON.stringify(req.headers));
    if (req.url === '/redirect') return void res.writeHead(302, { location: `http://${SITE}/docs/page` }).end();
    res.writeHead(200, { 'content-type': 'text/html', 'cache-control': 'private, max-age=3600' }).end(`<p>page ${req.url}</p>`);
  });
  chain = await startChain({
    originUrl: origin.url,
    host: SITE,
    extraSites: { 'b.example': origin.url },
    grants: [
      ['alice', '/**'],
      ['bob', '/**'],
    ],
    outerArgs: ['--portal', '--portal-suffix', '.localhost'],
  });
  portalHost = `${SITE}.localhost:${chain.outer.port}`;
});

let pkiDir = '';

after(async () => {
  await Promise.all(extra.map((p) => p.stop()));
  await chain?.stop();
  await origin?.close();
  if (pkiDir) rmSync(pkiDir, { recursive: true, force: true });
});

interface Answer {
  status: number;
  headers: IncomingMessage['headers'];
  body: string;
  /** name → value of each Set-Cookie. */
  cookies: Map<string, string>;
  setCookie: string[];
}

function portal(path: string, opts: { method?: string; cookie?: string; form?: Record<string, string>; headers?: Record<string, string>; host?: string; port?: number; from?: string } = {}): Promise<Answer> {
  const headers: Record<string, string> = { host: opts.host ?? portalHost, ...opts.headers };
  if (opts.cookie) headers.cookie = opts.cookie;
  const body = opts.form ? new URLSearchParams(opts.form).toString() : undefined;
  if (body !== undefined) headers['content-type'] = 'application/x-www-form-urlencoded';
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port: opts.port ?? chain.outer.port, method: opts.method ?? (body ? 'POST' : 'GET'), path, headers, agent: false, ...(opts.from ? { localAddress: opts.from } : {}) }, (res) => {
      let text = '';
      res.setEncoding('utf8').on('data', (d: string) => (text += d));
      res.on('end', () => {
        const setCookie = res.headers['set-cookie'] ?? [];
        const cookies = new Map(setCookie.map((c) => c.split(';')[0]!.split('=') as [string, string]));
        resolve({ status: res.statusCode!, headers: res.headers, body: text, cookies, setCookie });
      });
    });
    req.on('error', reject);
    req.end(body);
  });
}

const jar = (a: Answer) => [...a.cookies].map(([n, v]) => `${n}=${v}`).join('; ');

async function login(user: 'alice' | 'bob', cookie?: string): Promise<Answer> {
  return portal('/.sws/login', { form: { user, password: PASSWORDS[user], next: '/docs/page' }, ...(cookie ? { cookie } : {}) });
}

test('portal: without a session a page redirects to the login page, which is never cached and cannot be framed', async () => {
  const r = await portal('/docs/page?x=1');
  assert.equal(r.status, 303);
  assert.equal(r.headers.location, '/.sws/login?next=%2Fdocs%2Fpage%3Fx%3D1');
  const page = await portal('/.sws/login?next=%2Fdocs%2Fpage');
  assert.equal(page.status, 200);
  assert.match(page.body, /<form method="post" action="\/\.sws\/login">/);
  assert.equal(page.headers['cache-control'], 'no-store');
  assert.match(String(page.headers['content-security-policy']), /frame-ancestors 'none'/);
  assert.equal(origin.requests.length, 0, 'nothing reached the web server');
});

test('portal: a wrong password gets 403 and no cookie; a login POST from another origin is refused', async () => {
  const wrong = await portal('/.sws/login', { form: { user: 'alice', password: 'nope', next: '/' } });
  assert.equal(wrong.status, 403);
  assert.equal(wrong.setCookie.length, 0);
  assert.match(wrong.body, /Wrong user name or password/);
  assert.ok(!wrong.body.includes('nope'));
  const csrf = await portal('/.sws/login', { form: { user: 'alice', password: PASSWORDS.alice, next: '/' }, headers: { origin: 'http://evil.example' } });
  assert.equal(csrf.status, 403);
  assert.equal(csrf.setCookie.length, 0);
});

test('portal: past 10 wrong passwords from one address its logins get 429 with Retry-After, right password included; each refusal is counted', async () => {
  const from = '127.0.0.3'; // its own address: the other tests' allowance is untouched
  const counted = async (code: string) => metricValue(await chain.outer.metrics(), 'sws_rejections_total', { code });
  const [failedBefore, limitedBefore] = [await counted('SWS_ERR_LOGIN_FAILED'), await counted('SWS_ERR_AUTH_RATE_LIMITED')];
  for (let i = 0; i < 10; i++) assert.equal((await portal('/.sws/login', { form: { user: 'alice', password: `guess-${i}`, next: '/' }, from })).status, 403, `guess ${i}`);
  const limited = await portal('/.sws/login', { form: { user: 'alice', password: PASSWORDS.alice, next: '/' }, from });
  assert.equal(limited.status, 429);
  assert.ok(Number(limited.headers['retry-after']) >= 1, `Retry-After: ${limited.headers['retry-after']}`);
  assert.match(limited.body, /Too many wrong passwords from this address/);
  assert.equal(limited.setCookie.length, 0);
  assert.equal((await counted('SWS_ERR_LOGIN_FAILED')) - failedBefore, 10);
  assert.equal((await counted('SWS_ERR_AUTH_RATE_LIMITED')) - limitedBefore, 1);
  assert.equal((await login('alice')).status, 303, 'another address logs in');
});

test('portal: login sets an HttpOnly, SameSite=Strict session cookie (no Secure over plain HTTP) and requests go to the site as that user', async () => {
  const r = await login('alice');
  assert.equal(r.status, 303);
  assert.equal(r.headers.location, '/docs/page');
  assert.equal(r.headers['clear-site-data'], undefined, 'a first login has nothing to erase');
  const session = r.setCookie.find((c) => c.startsWith('sws_session='))!;
  assert.match(session, /; HttpOnly/);
  assert.match(session, /; SameSite=Strict/);
  assert.doesNotMatch(session, /Secure/);
  const page = await portal('/headers', { cookie: `${jar(r)}; site_pref=blue` });
  assert.equal(page.status, 200);
  const seen = JSON.parse(page.body) as Record<string, string>;
  assert.equal(seen['x-forwarded-user'], 'alice');
  assert.equal(seen.host, SITE, 'the web server sees its own host name');
  assert.equal(seen.cookie, 'site_pref=blue', "the site's own cookies pass, the portal's never do");
  const redirect = await portal('/redirect', { cookie: jar(r) });
  assert.equal(redirect.headers.location, `http://${portalHost}/docs/page`, 'redirects to the site stay on the portal host');
});

test('portal: logout ends the session and answers Clear-Site-Data "cache", "cookies", "storage"', async () => {
  const r = await login('alice');
  const out = await portal('/.sws/logout', { method: 'POST', cookie: jar(r), headers: { origin: `http://${portalHost}` } });
  assert.equal(out.status, 200);
  assert.equal(out.headers['clear-site-data'], '"cache", "cookies", "storage"');
  assert.ok(out.setCookie.every((c) => /Max-Age=0/.test(c)), 'and expires the cookies for browsers that ignore Clear-Site-Data');
  const after = await portal('/docs/page', { cookie: jar(r) });
  assert.equal(after.status, 303, 'the old session cookie no longer works');
});

test("portal: logging in as someone else first erases the previous user's data, on a redirect that sets no cookie; a one-time ticket then starts the session", async () => {
  const a = await login('alice');
  const b = await login('bob', jar(a));
  assert.equal(b.status, 303);
  assert.equal(b.headers['clear-site-data'], '"cache", "cookies", "storage"');
  assert.equal(b.setCookie.length, 0, 'nothing the erasure could remove');
  assert.match(String(b.headers.location), /^\/\.sws\/login\/continue\?t=[\w-]{43}$/);
  const cont = await portal(String(b.headers.location));
  assert.equal(cont.status, 303);
  assert.equal(cont.headers.location, '/docs/page');
  const page = await portal('/headers', { cookie: jar(cont) });
  assert.equal((JSON.parse(page.body) as Record<string, string>)['x-forwarded-user'], 'bob');
  assert.equal((await portal('/docs/page', { cookie: jar(a) })).status, 303, "alice's session ended");
  assert.equal((await portal(String(b.headers.location))).status, 403, 'a ticket works once');
  // The same user again: nothing to erase.
  const again = await login('bob', jar(cont));
  assert.equal(again.headers['clear-site-data'], undefined);
  assert.ok(again.cookies.has('sws_session'));
});

test('portal: unknown host names get a 404 page and nothing is forwarded', async () => {
  const before = origin.requests.length;
  assert.equal((await portal('/docs/page', { host: `nowhere.example.localhost:${chain.outer.port}` })).status, 404);
  assert.equal((await portal('/docs/page', { host: `${SITE}:${chain.outer.port}` })).status, 404, 'the portal host is the site plus the suffix');
  assert.equal(origin.requests.length, before);
});

test('portal: --portal-cookie-secure always marks the cookies Secure (with the __Host- prefix)', async () => {
  const outer = await startSidecar(['outer', 'start', '--data', chain.outerData, '--portal', '--portal-suffix', '.localhost', '--portal-cookie-secure', 'always']);
  extra.push(outer);
  const r = await portal('/.sws/login', { form: { user: 'alice', password: PASSWORDS.alice, next: '/' }, port: outer.port, host: `${SITE}.localhost:${outer.port}` });
  const session = r.setCookie.find((c) => c.startsWith('__Host-sws_session='));
  assert.ok(session, 'the session cookie has the __Host- prefix');
  assert.match(session, /; Secure/);
  assert.match(session, /; Path=\//);
});

test('portal over HTTPS (--tls-cert/--tls-key with a certificate made by `sws ca sign --server`): with the default --portal-cookie-secure auto the session cookie is __Host-, Secure, HttpOnly, SameSite=Strict', async () => {
  pkiDir = mkdtempSync(join(tmpdir(), 'sws-portal-tls-'));
  const p = (n: string) => join(pkiDir, n);
  const name = `${SITE}.localhost`;
  await swsOk(['ca', 'init', '--key-bits', '2048', '--data', chain.innerData]);
  writeFileSync(p('ca.pem'), await swsOk(['ca', 'cert', '--data', chain.innerData]));
  openssl(['req', '-new', '-newkey', 'rsa:2048', '-nodes', '-keyout', p('portal.key'), '-subj', '/CN=portal', '-out', p('portal.csr')]);
  await swsOk(['ca', 'sign', '--csr', p('portal.csr'), '--server', `${name},127.0.0.1`, '--days', '7', '--out', p('portal.pem'), '--data', chain.innerData]);
  assert.equal(openssl(['verify', '-CAfile', p('ca.pem'), '-purpose', 'sslserver', '-verify_hostname', name, p('portal.pem')]).trim(), `${p('portal.pem')}: OK`);
  const outer = await startSidecar(['outer', 'start', '--data', chain.outerData, '--portal', '--portal-suffix', '.localhost', '--tls-cert', p('portal.pem'), '--tls-key', p('portal.key')]);
  extra.push(outer);
  const host = `${name}:${outer.port}`;
  const ca = readFileSync(p('ca.pem'), 'utf8');
  const tls = (path: string, opts: { form?: Record<string, string>; cookie?: string } = {}) =>
    new Promise<Answer>((resolve, reject) => {
      const body = opts.form ? new URLSearchParams(opts.form).toString() : undefined;
      const headers: Record<string, string> = { host, ...(body ? { 'content-type': 'application/x-www-form-urlencoded', origin: `https://${host}` } : {}), ...(opts.cookie ? { cookie: opts.cookie } : {}) };
      // Verified TLS: the client trusts only the sws CA and checks the portal host name.
      const req = httpsRequest({ host: '127.0.0.1', port: outer.port, servername: name, ca, method: body ? 'POST' : 'GET', path, headers, agent: false }, (res) => {
        let text = '';
        res.setEncoding('utf8').on('data', (d: string) => (text += d));
        res.on('end', () => {
          const setCookie = res.headers['set-cookie'] ?? [];
          resolve({ status: res.statusCode!, headers: res.headers, body: text, cookies: new Map(setCookie.map((c) => c.split(';')[0]!.split('=') as [string, string])), setCookie });
        });
      });
      req.on('error', reject);
      req.end(body);
    });
  const r = await tls('/.sws/login', { form: { user: 'alice', password: PASSWORDS.alice, next: '/headers' } });
  assert.equal(r.status, 303);
  const session = r.setCookie.find((c) => c.startsWith('__Host-sws_session='));
  assert.ok(session, `the session cookie has the __Host- prefix: ${r.setCookie.join(' | ')}`);
  const attrs = session.split(';').map((a) => a.trim());
  assert.ok(attrs.includes('Secure'), 'Secure');
  assert.ok(attrs.includes('HttpOnly'), 'HttpOnly');
  assert.ok(attrs.includes('SameSite=Strict'), 'SameSite=Strict');
  assert.ok(attrs.includes('Path=/'), 'Path=/');
  assert.ok(!attrs.some((a) => /^Domain=/i.test(a)), 'no Domain (required by __Host-)');
  for (const c of r.setCookie) assert.match(c, /; Secure/, `every portal cookie is Secure over TLS: ${c}`);
  const page = await tls('/headers', { cookie: jar(r) });
  assert.equal(page.status, 200);
  assert.equal((JSON.parse(page.body) as Record<string, string>)['x-forwarded-user'], 'alice', 'the session works over HTTPS');
});

function proxied(host: string, path: string, user: 'alice' | 'bob'): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port: chain.outer.port, path: `http://${host}${path}`, headers: { host, 'proxy-authorization': basic(user, PASSWORDS[user]) }, agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve(res));
    });
    req.on('error', reject);
    req.end();
  });
}

test('forward-proxy mode: after an address changes user, the next response to each origin carries Clear-Site-Data "cache", once', async () => {
  assert.equal((await proxied(SITE, '/docs/p1', 'alice')).headers['clear-site-data'], undefined);
  assert.equal((await proxied(SITE, '/docs/p1', 'alice')).headers['clear-site-data'], undefined, 'same user: nothing');
  const first = await proxied(SITE, '/docs/p1', 'bob');
  assert.equal(first.statusCode, 200);
  assert.equal(first.headers['clear-site-data'], '"cache"');
  assert.equal((await proxied(SITE, '/docs/p2', 'bob')).headers['clear-site-data'], undefined, 'once per origin');
  assert.equal((await proxied('b.example', '/x', 'bob')).headers['clear-site-data'], '"cache"', 'and once for each other origin');
  assert.equal((await proxied('b.example', '/y', 'bob')).headers['clear-site-data'], undefined);
  assert.equal((await proxied(SITE, '/docs/p1', 'alice')).headers['clear-site-data'], '"cache"', 'a cache hit for alice carries it too');
});

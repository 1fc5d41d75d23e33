/**
 * Claim 3 end to end: the inner accepts users by certificate. Real sidecars; certificates
 * made by `sws ca` and by openssl in the test. Each refusal (expired, not yet valid, wrong CA,
 * revoked) has its own code, seen by the client and counted in both sidecars' metrics; a
 * revocation ends the user's session and cuts a response in flight within a second.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { auditLog, clients, openStore, outerUsers, type Store } from '../../store/index.ts';
import { certificateAuthority } from '../../store/ca.ts';
import { userCertificates } from '../../store/usercerts.ts';
import { basic, eventually, metricValue, PASSWORDS, startChain, startOrigin, swsOk, type Chain, type Origin } from '../helpers/e2e.ts';
import { CLIENT_EXT, opensslCa, opensslSign } from '../helpers/pki.ts';

const HOST = 'intranet.example';
const DAY = 86_400_000;
let origin: Origin;
let chain: Chain;
let inner: Store;
let outer: Store;
let pki: string;
let aliceSerial: string;
const gates: (() => void)[] = [];

type User = keyof typeof PASSWORDS;

function get(user: User, path: string): Promise<{ status: number; body: string }> {
  const proxy = new URL(chain.proxy);
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      { host: proxy.hostname, port: proxy.port, path: `http://${HOST}${path}`, headers: { host: HOST, 'proxy-authorization': basic(user, PASSWORDS[user]) }, agent: false },
      (res) => {
        let body = '';
        res.setEncoding('utf8').on('data', (c: string) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode!, body }));
      },
    );
    req.on('error', reject);
    req.end();
  });
}

/** Registers `certPem` for `user` at the inner, then probes until a request shows `expect` (the watcher polls every 100 ms). */
async function registerAndExpect(user: User, certPem: string, expect: RegExp | 200): Promise<{ status: number; body: string }> {
  await clients(inner).add({ user, certPem }, { replace: true });
  const until = Date.now() + 5000;
  for (;;) {
    // A request admitted under the previous registration may be cut by the change: probe again.
    const r = await get(user, '/docs/a').catch(() => ({ status: 0, body: 'cut' }));
    if (expect === 200 ? r.status === 200 : r.status === 502 && expect.test(r.body)) return r;
    if (Date.now() > until) throw new Error(`expected ${String(expect)}, got ${r.status} ${r.body}`);
    await new Promise((res) => setTimeout(res, 20));
  }
}

before(async () => {
  origin = await startOrigin((req, res) => {
    if (req.url === '/stream') {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.write('first\n');
      gates.push(() => res.end('last\n'));
    } else if (req.url!.startsWith('/cached/')) {
      res.writeHead(200, { 'content-type': 'text/plain', 'cache-control': 'private, max-age=600' }).end(`cached ${req.url} for ${String(req.headers['x-forwarded-user'])}`);
    } else {
      res.writeHead(200, { 'content-type': 'text/plain' }).end(`page ${req.url} for ${String(req.headers['x-forwarded-user'])}`);
    }
  });
  chain = await startChain({ originUrl: origin.url, host: HOST, grants: [['alice', '/**'], ['bob', '/**']] });
  inner = openStore(chain.innerData, { expectRole: 'inner' });
  outer = openStore(chain.outerData, { expectRole: 'outer' });
  pki = mkdtempSync(join(tmpdir(), 'sws-certs-'));
  await certificateAuthority(inner).init({ bits: 2048 });
});

after(async () => {
  gates.splice(0).forEach((g) => g());
  inner?.close();
  outer?.close();
  await chain?.stop();
  await origin?.close();
  if (pki) rmSync(pki, { recursive: true, force: true });
});

test('claim 3: alice, registered by a certificate of the sws CA (user csr → ca sign → client add --cert), is served as alice', async () => {
  const csr = await userCertificates(outer).csr('alice');
  const issued = await certificateAuthority(inner).sign({ csrPem: csr, days: 30 });
  aliceSerial = issued.serial;
  await userCertificates(outer).install('alice', issued.certPem);
  const r = await registerAndExpect('alice', issued.certPem, 200);
  assert.equal(r.body, 'page /docs/a for alice', 'the name the web server and the ACL see is the certificate CN');
});

test('claim 3: bob, with a certificate made by openssl for his sws key, is accepted once the openssl CA is trusted', async () => {
  const foreign = opensslCa(pki, 'openssl-ca');
  writeFileSync(join(pki, 'bob.csr'), await userCertificates(outer).csr('bob'));
  const bobCert = opensslSign(pki, foreign, join(pki, 'bob.csr'), 'bob', CLIENT_EXT);
  await registerAndExpect('bob', readFileSync(bobCert, 'utf8'), /SWS_ERR_CERT_UNTRUSTED/);
  await certificateAuthority(inner).trust(foreign.cert);
  const r = await registerAndExpect('bob', readFileSync(bobCert, 'utf8'), 200);
  assert.equal(r.body, 'page /docs/a for bob');
});

test('claim 3: expired, not yet valid, wrong CA and revoked certificates are each refused with their own code, counted in metrics; nothing reaches the web server', async () => {
  const ca = certificateAuthority(inner);
  const bobKey = outerUsers(outer).get('bob')!.publicKeyPem;
  const now = Date.now();
  const expired = await ca.sign({ publicKeyPem: bobKey, user: 'bob', notBefore: new Date(now - 30 * DAY), notAfter: new Date(now - DAY) });
  const future = await ca.sign({ publicKeyPem: bobKey, user: 'bob', notBefore: new Date(now + DAY), days: 30 });
  const revoked = await ca.sign({ publicKeyPem: bobKey, user: 'bob' });
  await ca.revoke({ serial: revoked.serial });
  const stranger = opensslCa(pki, 'untrusted-ca');
  writeFileSync(join(pki, 'bob2.csr'), await userCertificates(outer).csr('bob'));
  const wrongCa = readFileSync(opensslSign(pki, stranger, join(pki, 'bob2.csr'), 'bob-untrusted', CLIENT_EXT), 'utf8');

  const cases: [string, string][] = [
    [expired.certPem, 'SWS_ERR_CERT_EXPIRED'],
    [future.certPem, 'SWS_ERR_CERT_NOT_YET_VALID'],
    [wrongCa, 'SWS_ERR_CERT_UNTRUSTED'],
    [revoked.certPem, 'SWS_ERR_CERT_REVOKED'],
  ];
  for (const [pem, code] of cases) {
    const r = await registerAndExpect('bob', pem, new RegExp(code));
    assert.match(r.body, /the inner server refused the request/, code);
    const seen = origin.requests.length;
    const again = await get('bob', '/docs/again');
    assert.equal(again.status, 502, `${code}: ${again.body}`);
    assert.match(again.body, new RegExp(code));
    assert.equal(origin.requests.length, seen, `${code}: nothing of the refused user reaches the web server`);
  }
  const [innerMetrics, outerMetrics] = await Promise.all([chain.inner.metrics(), chain.outer.metrics()]);
  for (const [, code] of cases) {
    assert.ok(metricValue(innerMetrics, 'sws_rejections_total', { code }) >= 1, `inner counts ${code}`);
    assert.ok(metricValue(outerMetrics, 'sws_rejections_total', { code }) >= 1, `outer counts ${code}`);
  }
});

test('claim 3: `sws ca revoke` ends alice\'s session and cuts her response in flight within a second; her next exchange is refused and drops her outer cache', async () => {
  assert.equal((await get('alice', '/docs/a')).status, 200);
  const hits = async () => metricValue(await chain.outer.metrics(), 'sws_cache_hits_total', { cache: 'outer' });
  const hitsBefore = await hits();
  assert.equal((await get('alice', '/cached/1')).status, 200);
  assert.equal((await get('alice', '/cached/1')).body, 'cached /cached/1 for alice');
  assert.equal((await hits()) - hitsBefore, 1, 'control: the page is served from the outer cache (default --cache-recheck 30 s)');
  const proxy = new URL(chain.proxy);
  let firstChunk!: () => void;
  const gotFirst = new Promise<void>((r) => (firstChunk = r));
  const outcome = new Promise<string>((resolve) => {
    const req = httpRequest(
      { host: proxy.hostname, port: proxy.port, path: `http://${HOST}/stream`, headers: { host: HOST, 'proxy-authorization': basic('alice', PASSWORDS.alice) }, agent: false },
      (res) => {
        res.once('data', () => firstChunk());
        res.on('end', () => resolve('ended normally'));
        res.on('aborted', () => resolve('cut'));
        res.on('error', () => resolve('cut'));
      },
    );
    req.on('error', () => resolve('cut'));
    req.end();
  });
  await gotFirst;
  await swsOk(['ca', 'revoke', aliceSerial, '--reason', 'keyCompromise', '--data', chain.innerData]);
  assert.equal(await outcome, 'cut');
  gates.splice(0).forEach((g) => g());
  const revokedAt = Date.parse(auditLog(inner).list().find((e) => e.action === 'ca.revoke' && e.subject === aliceSerial)!.at);
  const at = (l: Record<string, unknown>) => Date.parse(String(l.time));
  const seen = await eventually(() => chain.inner.logs.find((l) => l.msg === 'store changed: access re-checked' && at(l) >= revokedAt - 5), 3000, 'the inner re-checking access');
  assert.ok(at(seen) - revokedAt < 1000, `sessions ended ${at(seen) - revokedAt} ms after the revocation`);
  assert.ok((seen.sessionsEnded as number) >= 1 && (seen.streamsCut as number) >= 1);
  const r = await get('alice', '/docs/a');
  assert.equal(r.status, 502);
  assert.match(r.body, /SWS_ERR_CERT_REVOKED/);
  // That refusal dropped alice's entries at once: the cached page is not served again, well inside the 30 s recheck.
  const hitsAfter = await hits();
  const originSaw = origin.requests.length;
  for (let i = 0; i < 2; i++) {
    const c = await get('alice', '/cached/1');
    assert.equal(c.status, 502, `attempt ${i}: ${c.body}`);
    assert.match(c.body, /SWS_ERR_CERT_REVOKED/);
  }
  assert.equal(await hits(), hitsAfter, 'no outer cache hit after the refusal');
  assert.ok(metricValue(await chain.outer.metrics(), 'sws_cache_evictions_total', { cache: 'outer', reason: 'refused' }) >= 1);
  assert.equal(origin.requests.length, originSaw, 'nothing reached the web server');
});

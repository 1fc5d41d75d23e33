/**
 * Claim 3 through the command line, and interoperability with openssl both ways:
 * certificates and CRLs made by `sws ca` verify with `openssl verify` / `openssl crl`, and
 * sws signs openssl's requests and accepts certificates of an openssl-made CA it trusts.
 * `sws user csr` / `sws user cert` at the outer, `sws client add --cert` at the inner.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { expectFail, expectOk, inproc, sws, tempDir } from './helpers.ts';
import { CLIENT_EXT, openssl, opensslCa, opensslVerify as verify, opensslSign, type Pem } from '../helpers/pki.ts';

const tmp = tempDir();
after(tmp.cleanup);
const IN = join(tmp.dir, 'in');
const OUT = join(tmp.dir, 'out');
const f = (name: string) => join(tmp.dir, name);
let caPem: string;

before(async () => {
  expectOk(sws(['inner', 'init', '--data', IN]));
  expectOk(await inproc(['outer', 'init', '--data', OUT]));
  expectOk(await inproc(['ca', 'init', '--key-bits', '2048', '--name', 'Example Inner CA', '--data', IN]));
  caPem = expectOk(await inproc(['ca', 'cert', '--data', IN])).stdout;
  writeFileSync(f('ca.pem'), caPem);
  for (const u of ['alice', 'bob']) expectOk(await inproc(['user', 'add', u, '--password-stdin', '--data', OUT], { input: 'pw\n' }));
});

test('ca init makes a CA certificate (CA:TRUE, keyCertSign) that openssl reads; ca init again needs --force', async () => {
  const text = openssl(['x509', '-in', f('ca.pem'), '-noout', '-text']);
  assert.match(text, /Subject: CN ?= ?Example Inner CA/);
  assert.match(text, /CA:TRUE/);
  assert.match(text, /Certificate Sign, CRL Sign/);
  expectFail(await inproc(['ca', 'init', '--data', IN]), 1, 'SWS_ERR_EXISTS', '--force');
});

test('user csr → ca sign → openssl verify -CAfile: the certificate has CN=alice, digitalSignature, clientAuth; user cert installs it; client add --cert registers it', async () => {
  const csr = expectOk(sws(['user', 'csr', 'alice', '--data', OUT])).stdout;
  assert.match(csr, /^-----BEGIN CERTIFICATE REQUEST-----/);
  writeFileSync(f('alice.csr'), csr);
  assert.match(openssl(['req', '-in', f('alice.csr'), '-noout', '-verify', '-subject']), /subject=CN ?= ?alice/);
  const r = expectOk(sws(['ca', 'sign', '--csr', f('alice.csr'), '--days', '30', '--out', f('alice.crt'), '--data', IN]));
  assert.match(r.stderr, /issued a certificate for alice: serial [0-9a-f]+/);
  assert.equal(verify(['-CAfile', f('ca.pem'), '-purpose', 'sslclient', f('alice.crt')]).trim(), `${f('alice.crt')}: OK`);
  const text = openssl(['x509', '-in', f('alice.crt'), '-noout', '-text']);
  assert.match(text, /Subject: CN ?= ?alice/);
  assert.match(text, /Key Usage: critical\s+Digital Signature\n/);
  assert.match(text, /TLS Web Client Authentication/);
  assert.match(text, /CA:FALSE/);
  // The certificate holds alice's own key: the public key sws prints for her.
  const alicePub = expectOk(await inproc(['user', 'key', 'alice', '--data', OUT])).stdout;
  assert.equal(openssl(['x509', '-in', f('alice.crt'), '-noout', '-pubkey']), alicePub);

  assert.match(expectOk(await inproc(['user', 'cert', 'alice', f('alice.crt'), '--data', OUT])).stdout, /installed the certificate of alice/);
  assert.equal(expectOk(await inproc(['user', 'cert', 'alice', '--data', OUT])).stdout, readFileSync(f('alice.crt'), 'utf8'));
  const reg = expectOk(sws(['client', 'add', 'alice', '--cert', f('alice.crt'), '--data', IN]));
  assert.match(reg.stdout, /registered alice: sha256:[0-9a-f]{64} \(certificate, valid until /);
  assert.doesNotMatch(reg.stderr, /warning/);
  const listed = JSON.parse(expectOk(await inproc(['ca', 'list', '--json', '--data', IN])).stdout) as { issued: { user: string; revoked: boolean }[] };
  assert.deepEqual(listed.issued.map((c) => [c.user, c.revoked]), [['alice', false]]);
});

test('sws signs a request made by openssl (its own key and CN), and openssl verifies the result', async () => {
  openssl(['req', '-new', '-newkey', 'rsa:2048', '-nodes', '-keyout', f('olga.key'), '-subj', '/CN=olga', '-out', f('olga.csr')]);
  expectOk(await inproc(['ca', 'sign', '--csr', f('olga.csr'), '--out', f('olga.crt'), '--data', IN]));
  assert.equal(verify(['-CAfile', f('ca.pem'), '-purpose', 'sslclient', f('olga.crt')]).trim(), `${f('olga.crt')}: OK`);
  // --user must agree with the request's CN.
  expectFail(await inproc(['ca', 'sign', '--csr', f('olga.csr'), '--user', 'mallory', '--data', IN]), 2, '--user', 'CN=olga');
});

test('sws accepts a certificate made by an openssl CA once that CA is trusted (ca trust); before, registration warns SWS_ERR_CERT_UNTRUSTED', async () => {
  const foreign: Pem = opensslCa(tmp.dir, 'openssl-ca');
  writeFileSync(f('bob.csr'), expectOk(await inproc(['user', 'csr', 'bob', '--data', OUT])).stdout);
  const bobCrt = opensslSign(tmp.dir, foreign, f('bob.csr'), 'bob-openssl', CLIENT_EXT);
  const before = expectOk(await inproc(['client', 'add', 'bob', '--cert', bobCrt, '--data', IN]));
  assert.match(before.stderr, /warning: the inner refuses this certificate now \(SWS_ERR_CERT_UNTRUSTED\)/);
  const t = expectOk(await inproc(['ca', 'trust', foreign.certPath, '--data', IN]));
  assert.match(t.stdout, /trusting CN=openssl-ca \(sha256:[0-9a-f]{64}\)/);
  const after = expectOk(await inproc(['client', 'add', 'bob', '--cert', bobCrt, '--replace', '--data', IN]));
  assert.doesNotMatch(after.stderr, /warning/);
  // Revoking a trusted CA's certificate by giving the certificate itself.
  expectOk(await inproc(['ca', 'revoke', '--cert', bobCrt, '--data', IN]));
  const again = expectOk(await inproc(['client', 'add', 'bob', '--cert', bobCrt, '--replace', '--data', IN]));
  assert.match(again.stderr, /SWS_ERR_CERT_REVOKED/);
  expectFail(await inproc(['ca', 'trust', f('bob-openssl.pem'), '--data', IN]), 2, 'not a CA certificate');
});

test('revoke → CRL: openssl verifies the CRL signature and refuses the revoked certificate with -crl_check', async () => {
  const serial = /serial ([0-9a-f]+)/.exec(expectOk(await inproc(['ca', 'sign', '--csr', f('olga.csr'), '--out', f('olga2.crt'), '--data', IN])).stderr)![1]!;
  assert.match(expectOk(await inproc(['ca', 'revoke', serial, '--reason', 'keyCompromise', '--data', IN])).stdout, new RegExp(`revoked certificate ${serial} \\(keyCompromise\\)`));
  expectFail(await inproc(['ca', 'revoke', serial, '--data', IN]), 1, 'already revoked');
  expectFail(await inproc(['ca', 'revoke', 'ffff', '--data', IN]), 1, 'SWS_ERR_NOT_FOUND');
  expectOk(sws(['ca', 'crl', '--out', f('ca.crl'), '--data', IN]));
  const crlText = openssl(['crl', '-in', f('ca.crl'), '-CAfile', f('ca.pem'), '-noout', '-text']);
  assert.match(crlText, new RegExp(`Serial Number: 0*${serial.toUpperCase()}`));
  assert.match(crlText, /Key Compromise/);
  const v = verify(['-crl_check', '-CAfile', f('ca.pem'), '-CRLfile', f('ca.crl'), f('olga2.crt')]);
  assert.match(v, /certificate revoked/);
  assert.match(verify(['-crl_check', '-CAfile', f('ca.pem'), '-CRLfile', f('ca.crl'), f('olga.crt')]), /: OK/);
  // A CRL can also be imported (here our own, so nothing is new).
  assert.match(expectOk(await inproc(['ca', 'revoke', '--crl', f('ca.crl'), '--data', IN])).stdout, /imported 0 new revocations/);
});

test('validity flags: an expired or not-yet-valid certificate is issued as asked, and registration says the inner refuses it now', async () => {
  writeFileSync(f('alice.pub'), expectOk(await inproc(['user', 'key', 'alice', '--data', OUT])).stdout);
  expectOk(await inproc(['ca', 'sign', '--key', f('alice.pub'), '--user', 'alice', '--not-before', '2020-01-01', '--not-after', '2021-01-01', '--out', f('old.crt'), '--data', IN]));
  assert.match(verify(['-CAfile', f('ca.pem'), f('old.crt')]), /certificate has expired/);
  assert.match(expectOk(await inproc(['client', 'add', 'alice', '--cert', f('old.crt'), '--replace', '--data', IN])).stderr, /SWS_ERR_CERT_EXPIRED/);
  const future = new Date(Date.now() + 30 * 86_400_000).toISOString().slice(0, 10);
  expectOk(await inproc(['ca', 'sign', '--key', f('alice.pub'), '--user', 'alice', '--not-before', future, '--days', '10', '--out', f('future.crt'), '--data', IN]));
  assert.match(expectOk(await inproc(['client', 'add', 'alice', '--cert', f('future.crt'), '--replace', '--data', IN])).stderr, /SWS_ERR_CERT_NOT_YET_VALID/);
  expectFail(await inproc(['ca', 'sign', '--key', f('alice.pub'), '--user', 'alice', '--not-before', '2021-01-01', '--not-after', '2020-01-01', '--data', IN]), 2, '--not-after');
  expectFail(await inproc(['ca', 'sign', '--key', f('alice.pub'), '--user', 'alice', '--not-after', 'tomorrow', '--data', IN]), 2, '--not-after', 'ISO 8601');
});

test('bad usage: exit 2 naming the flag; wrong role; a certificate for another user', async () => {
  expectFail(await inproc(['ca', 'sign', '--data', IN]), 2, '--csr');
  expectFail(await inproc(['ca', 'sign', '--csr', f('olga.csr'), '--key', f('alice.pub'), '--data', IN]), 2, '--csr');
  expectFail(await inproc(['ca', 'sign', '--key', f('alice.pub'), '--data', IN]), 2, '--user');
  expectFail(await inproc(['ca', 'sign', '--csr', f('alice.pub'), '--data', IN]), 2, '--csr', 'CERTIFICATE REQUEST');
  expectFail(await inproc(['ca', 'init', '--data', OUT]), 2, 'SWS_ERR_ROLE');
  expectFail(await inproc(['user', 'csr', 'alice', '--data', IN]), 2, 'SWS_ERR_ROLE');
  expectFail(await inproc(['client', 'add', 'bob', '--cert', f('alice.crt'), '--data', IN]), 2, '--cert', 'CN=alice');
  expectFail(await inproc(['user', 'cert', 'bob', f('alice.crt'), '--data', OUT]), 2, 'CN=alice');
  const other = join(tmp.dir, 'in2');
  expectOk(await inproc(['inner', 'init', '--data', other]));
  expectFail(await inproc(['ca', 'cert', '--data', other]), 1, 'sws ca init');
});

test('ca sign --server: a TLS server certificate (SAN DNS + IP, serverAuth) that openssl verifies for that host name and IP, never as a client; it cannot be registered as a user\'s certificate', async () => {
  openssl(['req', '-new', '-newkey', 'rsa:2048', '-nodes', '-keyout', f('srv.key'), '-subj', '/CN=ignored', '-out', f('srv.csr')]);
  const r = expectOk(await inproc(['ca', 'sign', '--csr', f('srv.csr'), '--server', 'alice,www.alice.example,127.0.0.1', '--days', '30', '--out', f('srv.crt'), '--data', IN]));
  assert.match(r.stderr, /issued a server certificate for alice, www\.alice\.example, 127\.0\.0\.1: serial [0-9a-f]+/);
  const ok = (args: string[]) => verify(['-CAfile', f('ca.pem'), '-purpose', 'sslserver', ...args, f('srv.crt')]).trim();
  assert.equal(ok([]), `${f('srv.crt')}: OK`);
  assert.equal(ok(['-verify_hostname', 'www.alice.example']), `${f('srv.crt')}: OK`);
  assert.equal(ok(['-verify_ip', '127.0.0.1']), `${f('srv.crt')}: OK`);
  assert.match(ok(['-verify_hostname', 'other.example']), /hostname mismatch/);
  assert.match(verify(['-CAfile', f('ca.pem'), '-purpose', 'sslclient', f('srv.crt')]), /unsuitable certificate purpose/);
  const text = openssl(['x509', '-in', f('srv.crt'), '-noout', '-text']);
  assert.match(text, /Subject: CN ?= ?alice\n/, 'the CN is the first name, not the request\'s');
  assert.match(text, /DNS:alice, DNS:www\.alice\.example, IP Address:127\.0\.0\.1/);
  assert.match(text, /TLS Web Server Authentication/);
  assert.doesNotMatch(text, /TLS Web Client Authentication/);
  assert.match(text, /Key Usage: critical\s+Digital Signature, Key Encipherment/);
  assert.match(text, /CA:FALSE/);
  // A server certificate does not authenticate a user, even with a CN that is a user name.
  expectFail(await inproc(['client', 'add', 'alice', '--cert', f('srv.crt'), '--replace', '--data', IN]), 2, '--cert', 'does not allow clientAuth');
  expectFail(await inproc(['ca', 'sign', '--csr', f('srv.csr'), '--server', 'bad name!', '--data', IN]), 2, '--server', 'neither a DNS name nor an IP address');
  expectFail(await inproc(['ca', 'sign', '--csr', f('srv.csr'), '--server', ',', '--data', IN]), 2, '--server');
  expectFail(await inproc(['ca', 'sign', '--csr', f('srv.csr'), '--server', 'a.example', '--user', 'alice', '--data', IN]), 2, '--user');
});

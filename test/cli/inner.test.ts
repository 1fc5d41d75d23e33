/**
 * `sws inner init | key | site ...`: each command and failure class through the real binary
 * (`sws`), input variants through the same program in-process (`inproc`).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createPublicKey } from 'node:crypto';
import { expectFail, expectOk, inproc, sws, tempDir } from './helpers.ts';

const tmp = tempDir();
after(tmp.cleanup);
const IN = join(tmp.dir, 'in');
const OUT = join(tmp.dir, 'out');

before(() => {
  expectOk(sws(['inner', 'init', '--data', IN]));
  expectOk(sws(['outer', 'init', '--data', OUT]));
});

test('inner init creates a 0700 data dir with a 0600 database and master key, printing no secret', async () => {
  assert.equal(statSync(IN).mode & 0o777, 0o700);
  assert.equal(statSync(join(IN, 'sws.db')).mode & 0o777, 0o600);
  assert.equal(statSync(join(IN, 'master.key')).mode & 0o777, 0o600);
  const dir = join(tmp.dir, 'in3072');
  const r = expectOk(await inproc(['inner', 'init', '--key-bits', '3072', '--data', dir]));
  assert.match(r.stdout, /RSA 3072, sha256:[0-9a-f]{64}/);
  const mk = readFileSync(join(dir, 'master.key'), 'utf8').trim();
  assert.equal(r.stdout.includes(mk) || r.stderr.includes(mk), false, 'master key printed');
  assert.doesNotMatch(r.stdout + r.stderr, /PRIVATE KEY/);
  const pem = expectOk(await inproc(['inner', 'key', '--data', dir])).stdout;
  assert.equal(createPublicKey(pem).asymmetricKeyDetails?.modulusLength, 3072);
});

test('inner init refuses to overwrite without --force and changes nothing; --force replaces the key', async () => {
  const key1 = expectOk(await inproc(['inner', 'key', '--data', IN])).stdout;
  expectFail(sws(['inner', 'init', '--data', IN]), 1, '--force', 'SWS_ERR_EXISTS');
  assert.equal(expectOk(await inproc(['inner', 'key', '--data', IN])).stdout, key1);
  const dir = join(tmp.dir, 'forced');
  expectOk(await inproc(['inner', 'init', '--data', dir]));
  const before = expectOk(await inproc(['inner', 'key', '--data', dir])).stdout;
  expectOk(await inproc(['inner', 'init', '--force', '--data', dir]));
  assert.notEqual(expectOk(await inproc(['inner', 'key', '--data', dir])).stdout, before);
});

test('inner init --key-bits accepts only 2048, 3072, 4096 (exit 2 naming the flag)', () => {
  expectFail(sws(['inner', 'init', '--key-bits', '1024', '--data', join(tmp.dir, 'bits')]), 2, '--key-bits', '2048, 3072, 4096');
});

test('inner key prints the PEM public key (SPKI) and nothing else', () => {
  const r = expectOk(sws(['inner', 'key', '--data', IN]));
  assert.match(r.stdout, /^-----BEGIN PUBLIC KEY-----\n[\s\S]+\n-----END PUBLIC KEY-----\n$/);
  assert.equal(createPublicKey(r.stdout).asymmetricKeyType, 'rsa');
});

test('inner commands on an outer data dir fail, saying an inner data dir is needed (exit 2)', async () => {
  expectFail(sws(['inner', 'key', '--data', OUT]), 2, 'SWS_ERR_ROLE', 'needs an inner data dir');
  // every inner-role command says so (in-process: same program, no start-up cost)
  for (const args of [['inner', 'site', 'list'], ['inner', 'site', 'remove', 'x.example'], ['client', 'list'], ['acl', 'list'], ['acl', 'grant', 'a', '/x']]) {
    expectFail(await inproc([...args, '--data', OUT]), 2, 'SWS_ERR_ROLE', 'needs an inner data dir');
  }
});

test('a missing data dir is a clear runtime error (exit 1)', () => {
  expectFail(sws(['inner', 'key', '--data', join(tmp.dir, 'nope')]), 1, 'SWS_ERR_NOT_INITIALIZED', 'sws inner init');
});

test('--data may come before the command, and $SWS_DATA is used when --data is absent', async () => {
  const a = expectOk(await inproc(['--data', IN, 'inner', 'key'])).stdout;
  const b = expectOk(sws(['inner', 'key'], { env: { SWS_DATA: IN } })).stdout;
  const c = expectOk(await inproc(['inner', 'key', '--data', IN], { env: { SWS_DATA: OUT } })).stdout;
  assert.equal(a, b);
  assert.equal(a, c);
});

test('inner site add | list | remove, with --json', async () => {
  const r = expectOk(sws(['inner', 'site', 'add', 'Intranet.Example:80', '--upstream', 'http://127.0.0.1:8080/', '--data', IN]));
  assert.match(r.stdout, /intranet\.example → http:\/\/127\.0\.0\.1:8080/);
  expectOk(await inproc(['inner', 'site', 'add', 'wiki.example:8443', '--upstream', 'https://10.0.0.7', '--data', IN]));
  const list = JSON.parse(expectOk(sws(['inner', 'site', 'list', '--json', '--data', IN])).stdout) as { host: string; upstream: string; ca: boolean }[];
  assert.deepEqual(
    list.map((s) => [s.host, s.upstream, s.ca]),
    [
      ['intranet.example', 'http://127.0.0.1:8080', false],
      ['wiki.example:8443', 'https://10.0.0.7', false],
    ],
  );
  assert.match(expectOk(await inproc(['inner', 'site', 'list', '--data', IN])).stdout, /^HOST\s+UPSTREAM/);
  expectFail(await inproc(['inner', 'site', 'add', 'intranet.example', '--upstream', 'http://127.0.0.1:9', '--data', IN]), 1, 'SWS_ERR_EXISTS', '--replace');
  expectOk(await inproc(['inner', 'site', 'add', 'intranet.example', '--upstream', 'http://127.0.0.1:9', '--replace', '--data', IN]));
  expectOk(sws(['inner', 'site', 'remove', 'WIKI.example:8443', '--data', IN]));
  expectFail(await inproc(['inner', 'site', 'remove', 'wiki.example:8443', '--data', IN]), 1, 'SWS_ERR_NOT_FOUND');
  assert.equal((JSON.parse(expectOk(await inproc(['inner', 'site', 'list', '--json', '--data', IN])).stdout) as unknown[]).length, 1);
});

test('inner site add: bad input exits 2 naming the field', async () => {
  expectFail(sws(['inner', 'site', 'add', 'x.example', '--data', IN]), 2, '--upstream');
  expectFail(await inproc(['inner', 'site', 'add', '--upstream', 'http://a', '--data', IN]), 2, 'HOST');
  expectFail(await inproc(['inner', 'site', 'add', 'x.example', '--upstream', 'ftp://a', '--data', IN]), 2, '--upstream', 'http://');
  expectFail(await inproc(['inner', 'site', 'add', 'x.example', '--upstream', 'http://a/app', '--data', IN]), 2, '--upstream', 'no path');
  expectFail(await inproc(['inner', 'site', 'add', 'bad host', '--upstream', 'http://a', '--data', IN]), 2, 'HOST');
  expectFail(await inproc(['inner', 'site', 'add', 'x.example', '--upstream', 'http://a', '--ca', join(tmp.dir, 'none.pem'), '--data', IN]), 2, '--ca', 'no such file');
  writeFileSync(join(tmp.dir, 'junk.pem'), 'junk');
  expectFail(await inproc(['inner', 'site', 'add', 'x.example', '--upstream', 'http://a', '--ca', join(tmp.dir, 'junk.pem'), '--data', IN]), 2, '--ca', 'https');
  expectFail(await inproc(['inner', 'site', 'add', 'x.example', '--upstream', 'https://a', '--ca', join(tmp.dir, 'junk.pem'), '--data', IN]), 2, '--ca', 'CERTIFICATE');
});

let haveOpenssl = true;
try {
  execFileSync('openssl', ['version'], { stdio: 'ignore' });
} catch {
  haveOpenssl = false;
}

test('inner site add --ca trusts a private CA for an https upstream', { skip: !haveOpenssl && 'openssl not installed' }, async () => {
  const key = join(tmp.dir, 'ca.key');
  const crt = join(tmp.dir, 'ca.crt');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', crt, '-days', '1', '-subj', '/CN=sws test CA'], { stdio: 'ignore' });
  expectOk(await inproc(['inner', 'site', 'add', 'tls.example', '--upstream', 'https://10.0.0.9:8443', '--ca', crt, '--data', IN]));
  const list = JSON.parse(expectOk(await inproc(['inner', 'site', 'list', '--json', '--data', IN])).stdout) as { host: string; ca: boolean }[];
  assert.equal(list.find((s) => s.host === 'tls.example')?.ca, true);
});

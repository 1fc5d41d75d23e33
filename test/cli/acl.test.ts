/**
 * `sws client ...` and `sws acl ...` at the inner: each command and failure class through the
 * real binary, variants in-process; `acl check` agrees with the engine the inner sidecar uses.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { expectFail, expectOk, inproc, sws, tempDir, writePublicKey } from './helpers.ts';
import { aclEngine, normalizeHost, openStore, parseRequestUrl } from '../../store/index.ts';

const tmp = tempDir();
after(tmp.cleanup);
const IN = join(tmp.dir, 'in');
const OUT = join(tmp.dir, 'out');
const ALICE = join(tmp.dir, 'alice.pem');
const BOB = join(tmp.dir, 'bob.pem');

before(async () => {
  expectOk(sws(['inner', 'init', '--data', IN]));
  expectOk(await inproc(['outer', 'init', '--data', OUT]));
  writePublicKey(ALICE);
  writePublicKey(BOB);
  expectOk(await inproc(['inner', 'site', 'add', 'intranet.example', '--upstream', 'http://127.0.0.1:8080', '--data', IN]));
});

const rulesOf = async (user?: string) =>
  JSON.parse(expectOk(await inproc(['acl', 'list', ...(user ? [user] : []), '--json', '--data', IN])).stdout) as {
    id: number;
    user: string;
    host: string | null;
    pattern: string;
    methods: string[] | null;
  }[];

test('client add | list | remove', async () => {
  const r = expectOk(sws(['client', 'add', 'alice', '--key', ALICE, '--data', IN]));
  assert.match(r.stdout, /registered alice: sha256:[0-9a-f]{64}/);
  expectOk(await inproc(['client', 'add', 'bob', '--key', BOB, '--data', IN]));
  const list = JSON.parse(expectOk(sws(['client', 'list', '--json', '--data', IN])).stdout) as { user: string; keyId: string }[];
  assert.deepEqual(
    list.map((c) => c.user),
    ['alice', 'bob'],
  );
  assert.match(expectOk(await inproc(['client', 'list', '--data', IN])).stdout, /^USER\s+KEY\s+CREATED\nalice\s+sha256:/);
  expectOk(sws(['client', 'remove', 'bob', '--data', IN]));
  expectFail(await inproc(['client', 'remove', 'bob', '--data', IN]), 1, 'SWS_ERR_NOT_FOUND');
  expectOk(await inproc(['client', 'add', 'bob', '--key', BOB, '--data', IN]));
});

test('client add: duplicate user, unreadable PEM, missing file, missing key → clear errors', async () => {
  expectFail(sws(['client', 'add', 'alice', '--key', BOB, '--data', IN]), 1, 'SWS_ERR_EXISTS', '--replace');
  writeFileSync(join(tmp.dir, 'garbage.pem'), 'this is not a key\n');
  expectFail(sws(['client', 'add', 'carol', '--key', join(tmp.dir, 'garbage.pem'), '--data', IN]), 2, '--key', 'garbage.pem', 'PUBLIC KEY');
  expectFail(await inproc(['client', 'add', 'carol', '--key', join(tmp.dir, 'nope.pem'), '--data', IN]), 2, '--key', 'no such file');
  expectFail(await inproc(['client', 'add', 'carol', '--key', tmp.dir, '--data', IN]), 2, '--key', 'not a regular file');
  expectFail(await inproc(['client', 'add', 'carol', '--data', IN]), 2, '--key');
  expectFail(await inproc(['client', 'add', 'ca rol', '--key', ALICE, '--data', IN]), 2, 'USER');
  // a private key where a public one belongs is refused and never echoed
  const priv = execFileSync(process.execPath, ['-e', "process.stdout.write(require('crypto').generateKeyPairSync('rsa',{modulusLength:2048}).privateKey.export({type:'pkcs8',format:'pem'}))"], { encoding: 'utf8' });
  writeFileSync(join(tmp.dir, 'private.pem'), priv);
  const r = await inproc(['client', 'add', 'carol', '--key', join(tmp.dir, 'private.pem'), '--data', IN]);
  expectFail(r, 2, '--key');
  assert.equal((r.stdout + r.stderr).includes(priv.split('\n')[1]!), false);
  expectOk(await inproc(['client', 'add', 'alice', '--key', BOB, '--replace', '--data', IN]));
  expectOk(await inproc(['client', 'add', 'alice', '--key', ALICE, '--replace', '--data', IN]));
  assert.equal((JSON.parse(expectOk(await inproc(['client', 'list', '--json', '--data', IN])).stdout) as unknown[]).length, 2);
});

test('acl grant | list | revoke, and --dry-run changes nothing', async () => {
  assert.match(expectOk(sws(['acl', 'grant', 'alice', '/docs/**', '--methods', 'get,HEAD', '--data', IN])).stdout, /^added: alice \/docs\/\*\* host=\* methods=GET,HEAD/);
  expectOk(await inproc(['acl', 'grant', 'alice', '/wiki/*.html', '--host', 'Intranet.Example:443', '--data', IN]));
  expectOk(await inproc(['acl', 'grant', 'bob', '/**', '--data', IN]));
  const before = await rulesOf();
  const dry = expectOk(sws(['acl', 'grant', 'alice', '/docs/**', '--methods', 'POST', '--dry-run', '--data', IN]));
  assert.match(dry.stdout, /^would extend: alice \/docs\/\*\* host=\* methods=GET,HEAD,POST \(methods were GET,HEAD\)/);
  assert.match(expectOk(await inproc(['acl', 'grant', 'alice', '/new/**', '--dry-run', '--data', IN])).stdout, /^would add: alice \/new\/\*\*/);
  assert.match(expectOk(await inproc(['acl', 'revoke', 'bob', '/**', '--dry-run', '--data', IN])).stdout, /^would remove: bob \/\*\*/);
  assert.deepEqual(await rulesOf(), before, '--dry-run wrote nothing');
  // granting again widens the methods; an identical grant is a no-op
  assert.match(expectOk(await inproc(['acl', 'grant', 'alice', '/docs/**', '--methods', 'POST', '--data', IN])).stdout, /^extended:/);
  assert.match(expectOk(await inproc(['acl', 'grant', 'alice', '/docs/**', '--methods', 'GET', '--data', IN])).stdout, /^unchanged:/);
  const alice = await rulesOf('alice');
  assert.deepEqual(
    alice.map((r) => [r.host, r.pattern, r.methods]),
    [
      [null, '/docs/**', ['GET', 'HEAD', 'POST']],
      ['intranet.example', '/wiki/*.html', null],
    ],
  );
  assert.match(expectOk(sws(['acl', 'list', '--data', IN])).stdout, /^USER\s+HOST\s+PATTERN\s+METHODS/);
  // a grant to a user with no registered key works, with a note
  const note = expectOk(await inproc(['acl', 'grant', 'zoe', '/z/**', '--data', IN]));
  assert.match(note.stderr, /zoe has no registered key/);
  expectOk(sws(['acl', 'revoke', 'zoe', '/z/**', '--data', IN]));
  expectFail(await inproc(['acl', 'revoke', 'zoe', '/z/**', '--data', IN]), 1, 'SWS_ERR_NOT_FOUND');
  // a host-specific grant is revoked with its --host only
  expectFail(await inproc(['acl', 'revoke', 'alice', '/wiki/*.html', '--data', IN]), 1, 'SWS_ERR_NOT_FOUND', '--host');
});

test('acl grant | revoke | check: bad input exits 2 naming the field', async () => {
  expectFail(sws(['acl', 'grant', 'alice', 'docs/**', '--data', IN]), 2, 'PATTERN', 'absolute');
  const bad: [string[], string][] = [
    [['acl', 'grant', 'alice'], 'PATTERN'],
    [['acl', 'grant', 'alice', '/a/**b'], 'PATTERN'],
    [['acl', 'grant', 'alice', '/a/../b'], 'PATTERN'],
    [['acl', 'grant', 'alice', '/a%2Fb'], 'PATTERN'],
    [['acl', 'grant', 'alice', '/a', '--methods', 'GET,,POST'], '--methods'],
    [['acl', 'grant', 'alice', '/a', '--methods', 'G E T'], '--methods'],
    [['acl', 'grant', 'alice', '/a', '--host', 'bad host'], '--host'],
    [['acl', 'grant', 'bad:user', '/a'], 'USER'],
    [['acl', 'revoke', 'alice', '/a', '--host', 'x:99999'], '--host'],
    [['acl', 'check', 'alice', 'GET'], 'URL'],
    [['acl', 'check', 'alice', 'G/T', 'http://intranet.example/'], 'METHOD'],
    [['acl', 'check', 'alice', 'GET', 'intranet.example/docs'], 'URL'],
    [['acl', 'check', 'alice', 'GET', 'http://bad host/docs'], 'URL'],
    [['acl', 'list', 'a', 'b'], 'too many arguments'],
  ];
  for (const [args, field] of bad) expectFail(await inproc([...args, '--data', IN]), 2, field);
});

test('acl check: allow exits 0 and names the rule; deny exits 3 and explains every rule', async () => {
  const allow = expectOk(sws(['acl', 'check', 'alice', 'GET', 'http://intranet.example/docs/a/b?x=1', '--data', IN]));
  assert.match(allow.stdout, /^allow\nrule: #\d+ alice \/docs\/\*\* host=\* methods=GET,HEAD,POST\n/);
  assert.match(allow.stdout, /other rules:\n {2}#\d+ alice \/wiki\/\*\.html host=intranet\.example methods=\*: the path does not match/);
  const deny = sws(['acl', 'check', 'alice', 'DELETE', 'http://intranet.example/docs/a', '--data', IN]);
  assert.equal(deny.code, 3, deny.stderr);
  assert.match(deny.stdout, /^deny\nreason: none of alice's 2 rules allows DELETE/);
  assert.match(deny.stdout, /it allows only GET,HEAD,POST, not DELETE/);
  const json = await inproc(['acl', 'check', 'alice', 'GET', 'http://INTRANET.example:80/wiki/%2e/page.html', '--json', '--data', IN]);
  assert.equal(json.code, 0);
  const j = JSON.parse(json.stdout) as { decision: string; method: string; host: string; path: string; rule: { pattern: string }; rules: { matched: boolean; reason?: string }[] };
  assert.deepEqual([j.decision, j.method, j.host, j.path, j.rule.pattern], ['allow', 'GET', 'intranet.example', '/wiki/page.html', '/wiki/*.html']);
  assert.equal(j.rules.length, 2);
  // methods are case-sensitive (RFC 9110), as at the inner: `get` is not GET, so only the
  // every-method rule /wiki/*.html could allow it; /docs/** (GET,HEAD,POST) does not
  const lower = sws(['acl', 'check', 'alice', 'get', 'http://intranet.example/docs/a', '--data', IN]);
  assert.equal(lower.code, 3, lower.stdout + lower.stderr);
  assert.match(lower.stdout, /^deny\n/);
  assert.match(lower.stdout, /it allows only GET,HEAD,POST, not get/);
  assert.match(lower.stderr, /case-sensitive: get is not GET/);
  const lowerAll = JSON.parse((await inproc(['acl', 'check', 'alice', 'get', 'http://intranet.example/wiki/page.html', '--json', '--data', IN])).stdout) as { decision: string; method: string };
  assert.deepEqual([lowerAll.decision, lowerAll.method], ['allow', 'get']);
  const nobody = await inproc(['acl', 'check', 'nobody', 'GET', 'http://intranet.example/', '--data', IN]);
  assert.equal(nobody.code, 3);
  assert.match(nobody.stdout, /nobody has no ACL rules/);
  assert.match(nobody.stderr, /nobody has no registered key/);
  const nosite = await inproc(['acl', 'check', 'bob', 'GET', 'http://elsewhere.example/', '--data', IN]);
  assert.equal(nosite.code, 0);
  assert.match(nosite.stderr, /no site is configured for elsewhere\.example/);
});

test('acl check rejects ambiguous paths with exit 2 instead of deciding', async () => {
  expectFail(sws(['acl', 'check', 'bob', 'GET', 'http://intranet.example/docs/%2e%2e%2fadmin', '--data', IN]), 2, 'SWS_ERR_PATH_AMBIGUOUS');
  for (const p of ['/a%2Fb', '/a\\b', '/a%00', '/..', '/docs/..;/admin', '/%252e%252e/x', '/a%zz', '/%C0%AE%C0%AE/']) {
    expectFail(await inproc(['acl', 'check', 'bob', 'GET', `http://intranet.example${p}`, '--data', IN]), 2, 'SWS_ERR_PATH_AMBIGUOUS');
  }
});

test('acl check agrees with the engine the inner sidecar uses', async () => {
  const cases: [string, string, string][] = [
    ['alice', 'GET', 'http://intranet.example/docs'],
    ['alice', 'HEAD', 'http://intranet.example/docs/'],
    ['alice', 'PUT', 'http://intranet.example/docs/x'],
    ['alice', 'get', 'http://intranet.example/docs/x'],
    ['alice', 'Head', 'http://intranet.example/docs/'],
    ['alice', 'get', 'http://intranet.example/wiki/a.html'],
    ['alice', 'GET', 'http://intranet.example/wiki/a.html'],
    ['alice', 'GET', 'http://wiki.example/wiki/a.html'],
    ['alice', 'GET', 'http://intranet.example/wiki/a/b.html'],
    ['alice', 'GET', 'http://intranet.example/docs/../wiki/x.html'],
    ['bob', 'PATCH', 'https://anything.example:8443/deep/path/'],
  ];
  const store = openStore(IN, { expectRole: 'inner', readonly: true });
  try {
    const engine = aclEngine(store);
    for (const [user, method, url] of cases) {
      const u = parseRequestUrl(url);
      const want = engine.check(user, method, normalizeHost(u.authority), u.target).allow;
      const r = await inproc(['acl', 'check', user, method, url, '--data', IN]);
      assert.equal(r.code, want ? 0 : 3, `${user} ${method} ${url}`);
      assert.equal(r.stdout.split('\n')[0], want ? 'allow' : 'deny');
    }
  } finally {
    store.close();
  }
});

test('acl revoke removes the grant and the next check denies', async () => {
  assert.match(expectOk(sws(['acl', 'revoke', 'alice', '/wiki/*.html', '--host', 'intranet.example', '--data', IN])).stdout, /^removed: alice \/wiki\/\*\.html/);
  assert.equal((await inproc(['acl', 'check', 'alice', 'GET', 'http://intranet.example/wiki/a.html', '--data', IN])).code, 3);
});

test('client and acl commands on an outer data dir say an inner data dir is needed', async () => {
  expectFail(sws(['acl', 'check', 'alice', 'GET', 'http://x/', '--data', OUT]), 2, 'SWS_ERR_ROLE', 'needs an inner data dir');
  expectFail(await inproc(['client', 'add', 'x', '--key', ALICE, '--data', OUT]), 2, 'SWS_ERR_ROLE');
  expectFail(await inproc(['acl', 'revoke', 'x', '/a', '--data', OUT]), 2, 'SWS_ERR_ROLE');
});

let haveOpenssl = true;
try {
  execFileSync('openssl', ['version'], { stdio: 'ignore' });
} catch {
  haveOpenssl = false;
}

test('client add --cert registers the key inside a certificate; --key and --cert must match', { skip: !haveOpenssl && 'openssl not installed' }, async () => {
  const key = join(tmp.dir, 'carl.key');
  const crt = join(tmp.dir, 'carl.crt');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', crt, '-days', '1', '-subj', '/CN=carl', '-addext', 'basicConstraints=critical,CA:FALSE'], { stdio: 'ignore' });
  // Registered, but a self-signed certificate chains to no trusted CA: the inner says so (test/cli/ca.test.ts).
  const reg = expectOk(await inproc(['client', 'add', 'carl', '--cert', crt, '--data', IN]));
  assert.match(reg.stderr, /SWS_ERR_CERT_UNTRUSTED/);
  const carl = (JSON.parse(expectOk(await inproc(['client', 'list', '--json', '--data', IN])).stdout) as { user: string; certificate: boolean }[]).find((c) => c.user === 'carl');
  assert.equal(carl?.certificate, true);
  expectFail(await inproc(['client', 'add', 'dora', '--key', ALICE, '--cert', crt, '--data', IN]), 2, '--cert', 'does not hold');
});

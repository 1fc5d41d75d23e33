/**
 * `sws apply -f FILE` through the real binary on temp data dirs made by `sws inner init` /
 * `sws outer init`: the database comes to match the file, the differences are reported (text
 * and --json), --dry-run and every invalid file change nothing (the whole database is
 * compared, audit trail included), unmanaged entries stay unless --prune, one apply is one
 * transaction, and --init creates the data dir the injected init container needs.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { expectFail, expectOk, sws, swsAsync, tempDir, writePublicKey } from '../cli/helpers.ts';

const tmp = tempDir();
after(tmp.cleanup);
const IN = join(tmp.dir, 'in');
const OUT = join(tmp.dir, 'out');
const file = (name: string, text: string) => {
  const p = join(tmp.dir, name);
  writeFileSync(p, text);
  return p;
};

/** Every row of every table, to prove "nothing changed". */
function snapshot(dataDir: string): Record<string, unknown[]> {
  const db = new Database(join(dataDir, 'sws.db'), { readonly: true, fileMustExist: true });
  try {
    const tables = (db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").all() as { name: string }[]).map((t) => t.name);
    return Object.fromEntries(tables.map((t) => [t, db.prepare(`SELECT * FROM "${t}" ORDER BY rowid`).all()]));
  } finally {
    db.close();
  }
}

let ALICE: string;
let BOB: string;
let INNER_KEY: string;

before(() => {
  expectOk(sws(['inner', 'init', '--data', IN]));
  expectOk(sws(['outer', 'init', '--data', OUT]));
  writePublicKey(join(tmp.dir, 'alice.pem'));
  BOB = writePublicKey(join(tmp.dir, 'bob.pem'));
  ALICE = 'alice.pem';
  INNER_KEY = writePublicKey(join(tmp.dir, 'inner.pem'));
});

const indent = (pem: string, n: number) =>
  pem
    .trim()
    .split('\n')
    .map((l) => ' '.repeat(n) + l)
    .join('\n');

const innerConfig = (opts: { methods?: string; upstream?: string; bobKey?: string } = {}) => `# managed in git
version: 1
role: inner
sites:
  - host: Intranet.Example
    upstream: ${opts.upstream ?? 'http://wiki.intranet.svc:8080'}
clients:
  - user: alice
    publicKeyFile: ${ALICE}
  - user: bob
    publicKey: |
${indent(opts.bobKey ?? BOB, 6)}
acl:
  - user: alice
    pattern: /docs/**
    methods: ${opts.methods ?? '[GET, HEAD]'}
  - user: bob
    pattern: /docs/public/*
    host: intranet.example
`;

test('dry run on an empty inner lists every addition and changes nothing; apply makes it so; applying again is a no-op', async () => {
  const cfg = file('inner.yaml', innerConfig());
  const before = snapshot(IN);
  const dry = expectOk(sws(['apply', '-f', cfg, '--dry-run', '--data', IN]));
  assert.match(dry.stdout, /^\+ site intranet\.example {2}upstream=http:\/\/wiki\.intranet\.svc:8080/m);
  assert.match(dry.stdout, /^\+ client alice {2}key=sha256:[0-9a-f]{64}$/m);
  assert.match(dry.stdout, /^\+ acl alice \* \/docs\/\*\* {2}.*methods=GET,HEAD/m);
  assert.match(dry.stdout, /dry run: 5 to add, 0 to change, 0 to remove; nothing changed/);
  assert.deepEqual(snapshot(IN), before, '--dry-run changed the database');

  const applied = expectOk(sws(['apply', '-f', cfg, '--data', IN]));
  assert.match(applied.stdout, /applied: 5 added, 0 changed, 0 removed/);
  const rules = JSON.parse(expectOk(sws(['acl', 'list', '--json', '--data', IN])).stdout) as { user: string; pattern: string; host: string | null; methods: string[] | null }[];
  assert.deepEqual(
    rules.map((r) => [r.user, r.host, r.pattern, r.methods]),
    [
      ['alice', null, '/docs/**', ['GET', 'HEAD']],
      ['bob', 'intranet.example', '/docs/public/*', null],
    ],
  );
  const audit = JSON.parse(expectOk(sws(['audit', '--json', '--data', IN])).stdout) as { action: string }[];
  assert.ok(audit.some((e) => e.action === 'acl.grant') && audit.some((e) => e.action === 'client.add'), 'changes go through the store (audited)');

  const settled = snapshot(IN);
  const again = expectOk(sws(['apply', '-f', cfg, '--data', IN]));
  assert.match(again.stdout, /^no changes: the data dir matches/m);
  assert.deepEqual(snapshot(IN), settled);
});

test('changes: narrower methods, a new key, a new upstream; --json reports before and after without PEMs', async () => {
  const newBob = writePublicKey(join(tmp.dir, 'bob2.pem'));
  const cfg = file('inner2.yaml', innerConfig({ methods: 'GET', upstream: 'https://wiki.intranet.svc:8443', bobKey: newBob }));
  const before = snapshot(IN);
  const dry = JSON.parse(expectOk(sws(['apply', '-f', cfg, '--dry-run', '--json', '--data', IN])).stdout) as {
    dryRun: boolean;
    committed: boolean;
    summary: Record<string, number>;
    changes: { action: string; kind: string; key: string; before?: Record<string, unknown>; after?: Record<string, unknown> }[];
  };
  assert.equal(dry.dryRun, true);
  assert.equal(dry.committed, false);
  assert.deepEqual(dry.summary, { add: 0, change: 3, remove: 0, unmanaged: 0 });
  const acl = dry.changes.find((c) => c.kind === 'acl')!;
  assert.deepEqual([acl.before!.methods, acl.after!.methods], [['GET', 'HEAD'], ['GET']]);
  assert.doesNotMatch(JSON.stringify(dry), /BEGIN PUBLIC KEY/);
  assert.deepEqual(snapshot(IN), before);

  expectOk(sws(['apply', '-f', cfg, '--data', IN]));
  const rules = JSON.parse(expectOk(sws(['acl', 'list', 'alice', '--json', '--data', IN])).stdout) as { methods: string[] | null }[];
  assert.deepEqual(rules[0]!.methods, ['GET'], 'a grant can be narrowed (revoke + grant in one transaction)');
  const sitesNow = JSON.parse(expectOk(sws(['inner', 'site', 'list', '--json', '--data', IN])).stdout) as { upstream: string }[];
  assert.equal(sitesNow[0]!.upstream, 'https://wiki.intranet.svc:8443');
});

test('entries the file does not list are reported as unmanaged and kept; --prune removes them', async () => {
  expectOk(sws(['acl', 'grant', 'carol', '/tmp/**', '--data', IN]));
  const cfg = join(tmp.dir, 'inner2.yaml');
  const kept = expectOk(sws(['apply', '-f', cfg, '--data', IN]));
  assert.match(kept.stdout, /^ {2}acl carol \* \/tmp\/\*\* {2}\(not in the file: kept; --prune removes it\)$/m);
  assert.match(kept.stdout, /no changes: the data dir matches .*, 1 unmanaged/);
  const pruned = expectOk(sws(['apply', '-f', cfg, '--prune', '--data', IN]));
  assert.match(pruned.stdout, /^- acl carol \* \/tmp\/\*\*$/m);
  const rules = JSON.parse(expectOk(sws(['acl', 'list', 'carol', '--json', '--data', IN])).stdout) as unknown[];
  assert.equal(rules.length, 0);
});

test('invalid files exit 2 naming the file, line and field, and change nothing', async () => {
  const before = snapshot(IN);
  const valid = innerConfig();
  const nested = valid.replace('    pattern: /docs/public/*', '    pattern: /docs/public/*\n    hots: x');
  const lineOf = (text: string, needle: string) => text.split('\n').findIndex((l) => l.includes(needle)) + 1;
  assert.ok(lineOf(nested, 'hots: x') > 20);
  const bad: [string, string, RegExp][] = [
    ['yaml', 'version: 1\nrole: [inner\n', /line 3: invalid YAML/],
    ['version', valid.replace('version: 1', 'version: 2'), /line 2, version: version must be 1/],
    // The unknown key's own line, not "line 1, (top level)" or the line of the mapping holding it.
    ['unknown field', valid.replace('sites:', 'sitez:'), /\.yaml line 4, sitez: unknown field sitez \(/],
    ['unknown nested field', nested, new RegExp(`\\.yaml line ${lineOf(nested, 'hots: x')}, acl\\[1\\]\\.hots: unknown field hots \\(`)],
    ['role', valid.replace('role: inner', 'role: middle'), /role must be inner or outer/],
    ['upstream', valid.replace('http://wiki.intranet.svc:8080', 'ftp://wiki'), /line 6, sites\[0\]\.upstream: the upstream must be an http/],
    ['pattern', valid.replace('/docs/**', 'docs'), /acl\[0\]\.pattern: the pattern must be an absolute path/],
    ['methods', valid.replace('[GET, HEAD]', '[GET, "HE AD"]'), /acl\[0\]\.methods/],
    ['key', valid.replace('publicKeyFile: alice.pem', 'publicKey: not a key'), /clients\[0\]\.publicKey: expected a PEM block/],
    ['key file', valid.replace('publicKeyFile: alice.pem', 'publicKeyFile: missing.pem'), /clients\[0\]\.publicKeyFile: cannot read .*no such file/],
    ['duplicate user', valid.replace('- user: bob\n    publicKey', '- user: Alice\n    publicKey'), /clients\[1\]\.user: user Alice is listed twice/],
    ['duplicate grant', valid + '  - user: alice\n    pattern: /docs/**\n    methods: [PUT]\n', /acl\[2\]: the grant of \/docs\/\*\* to alice/],
    ['empty', '', /the file is empty/],
  ];
  const results = await Promise.all(bad.map(([name, text]) => swsAsync(['apply', '-f', file(`bad-${name.replaceAll(' ', '-')}.yaml`, text), '--data', IN], { cwd: tmp.dir })));
  results.forEach((r, i) => {
    const [name, , re] = bad[i]!;
    assert.equal(r.code, 2, `${name}: ${r.stderr}`);
    assert.match(r.stderr, re, name);
    assert.match(r.stderr, /SWS_ERR_USAGE/, name);
    assert.equal(r.stdout, '', name);
  });
  expectFail(sws(['apply', '-f', file('outer-on-inner.yaml', 'version: 1\nrole: outer\n'), '--data', IN]), 2, 'needs an outer data dir');
  expectFail(sws(['apply', '-f', join(tmp.dir, 'nope.yaml'), '--data', IN]), 2, '-f', 'no such file');
  assert.deepEqual(snapshot(IN), before);
});

test('one apply is one transaction: a file the data dir cannot take applies nothing, even its valid parts', async () => {
  expectOk(sws(['acl', 'grant', 'Dave', '/d', '--data', IN]));
  expectOk(sws(['client', 'add', 'Dave', '--key', join(tmp.dir, 'bob.pem'), '--data', IN]));
  const before = snapshot(IN);
  // A new site (fine) and "dave" (clashes with the unmanaged "Dave": names differ only in case).
  const cfg = file(
    'clash.yaml',
    innerConfig()
      .replace('clients:\n', 'clients:\n  - user: dave\n    publicKeyFile: bob.pem\n')
      .replace('sites:\n', 'sites:\n  - host: new.example\n    upstream: http://new:80\n'),
  );
  const r = sws(['apply', '-f', cfg, '--data', IN]);
  expectFail(r, 2, 'nothing was applied');
  assert.deepEqual(snapshot(IN), before, 'a partial apply was committed');
  expectFail(sws(['apply', '-f', cfg, '--dry-run', '--data', IN]), 2, 'Dave');
});

test('outer: inner servers are added, changed and moved between servers in one apply', async () => {
  const key2 = writePublicKey(join(tmp.dir, 'inner2.pem'));
  const v1 = file(
    'outer.yaml',
    `version: 1
role: outer
servers:
  - name: hq
    url: http://inner.hq.example:8480
    publicKeyFile: inner.pem
    hosts: [intranet.example, wiki.example]
`,
  );
  expectOk(sws(['apply', '-f', v1, '--data', OUT]));
  const before = JSON.parse(expectOk(sws(['server', 'list', '--json', '--data', OUT])).stdout) as { name: string; hosts: string[] }[];
  assert.deepEqual(before.map((s) => [s.name, s.hosts]), [['hq', ['intranet.example', 'wiki.example']]]);
  // wiki.example moves from hq to a new inner server: only possible if both changes land together.
  const v2 = file(
    'outer2.yaml',
    `version: 1
role: outer
servers:
  - name: hq
    url: http://inner.hq.example:8480
    publicKey: |
${indent(INNER_KEY, 6)}
    hosts: [intranet.example]
  - name: wiki
    url: https://inner.wiki.example:8480
    publicKey: |
${indent(key2, 6)}
    hosts: [wiki.example]
`,
  );
  const snap = snapshot(OUT);
  const dry = expectOk(sws(['apply', '-f', v2, '--dry-run', '--data', OUT]));
  assert.match(dry.stdout, /^~ server hq {2}.*hosts=intranet\.example,wiki\.example → .*hosts=intranet\.example$/m);
  assert.match(dry.stdout, /^\+ server wiki /m);
  assert.deepEqual(snapshot(OUT), snap);
  expectOk(sws(['apply', '-f', v2, '--data', OUT]));
  const after = JSON.parse(expectOk(sws(['server', 'list', '--json', '--data', OUT])).stdout) as { name: string; hosts: string[] }[];
  assert.deepEqual(
    after.map((s) => [s.name, s.hosts]),
    [
      ['hq', ['intranet.example']],
      ['wiki', ['wiki.example']],
    ],
  );
  expectFail(
    sws(['apply', '-f', file('outer-dup.yaml', `version: 1\nrole: outer\nservers:\n  - name: a\n    url: http://a\n    publicKeyFile: inner.pem\n    hosts: [x.example]\n  - name: b\n    url: http://b\n    publicKeyFile: inner.pem\n    hosts: [X.example]\n`), '--data', OUT]),
    2,
    'servers[1].hosts[0]: host x.example is also fronted by inner server a',
  );
});

test('--init creates the data dir from the file (what the injected sws-init container runs); with --dry-run it creates nothing', async () => {
  const dir = join(tmp.dir, 'fresh');
  const cfg = join(tmp.dir, 'inner.yaml');
  const dry = expectOk(sws(['apply', '--init', '-f', cfg, '--dry-run', '--data', dir]));
  assert.match(dry.stderr, /would initialize inner data dir/);
  assert.equal(existsSync(join(dir, 'sws.db')), false);
  expectFail(sws(['apply', '-f', cfg, '--data', dir]), 1, 'SWS_ERR_NOT_INITIALIZED');
  const r = expectOk(sws(['apply', '--init', '-f', cfg, '--data', dir]));
  assert.match(r.stderr, /initialized inner data dir .* \(inner key sha256:[0-9a-f]{64}\)/);
  assert.match(r.stdout, /applied: 5 added/);
  // A restarted pod runs the same init container again: the data dir is kept, nothing changes.
  const again = expectOk(sws(['apply', '--init', '-f', cfg, '--data', dir]));
  assert.match(again.stdout, /no changes/);
  assert.doesNotMatch(again.stderr, /initialized/);
});

/**
 * The store's safety at the command line, through the real binary: commands that must not
 * write (the other role's commands, --dry-run, check, list) leave an older data dir
 * byte-identical; a shared master.key is refused; the audit trail names who changed what and
 * holds no secret; numeric, address and key-size flags are checked (zod) before anything starts.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, statSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { expectFail, expectOk, inproc, sws, tempDir, writePublicKey } from './helpers.ts';
import { fileHash, makeOldDataDir } from '../../store/testdata/fixtures.ts';
import { SCHEMA_VERSION } from '../../store/migrations.ts';

const tmp = tempDir();
after(tmp.cleanup);

const versionOf = (dbPath: string) => {
  const db = new Database(dbPath, { readonly: true });
  try {
    return db.pragma('user_version', { simple: true }) as number;
  } finally {
    db.close();
  }
};

test('an older data dir: wrong-role, --dry-run and read-only commands leave sws.db byte-identical; a writing command upgrades it', () => {
  const outer = makeOldDataDir(join(tmp.dir, 'old-outer'), 1, 'outer');
  const inner = makeOldDataDir(join(tmp.dir, 'old-inner'), 2, 'inner', (db) => {
    db.prepare("INSERT INTO acl_rules (user, host, pattern, methods, created_at) VALUES ('alice', '', '/docs/**', 'GET', 'then')").run();
  });
  const outerHash = fileHash(outer.dbPath);
  const innerHash = fileHash(inner.dbPath);

  // the other role's commands, writing or not
  expectFail(sws(['acl', 'grant', 'alice', '/x/**', '--data', outer.dir]), 2, 'SWS_ERR_ROLE', 'needs an inner data dir');
  expectFail(sws(['user', 'remove', 'bob', '--data', inner.dir]), 2, 'SWS_ERR_ROLE', 'needs an outer data dir');
  expectFail(sws(['acl', 'check', 'alice', 'GET', 'http://intranet.example/docs/a', '--data', outer.dir]), 2, 'SWS_ERR_ROLE');
  assert.equal(fileHash(outer.dbPath), outerHash, 'a wrong-role command wrote to the outer file');
  assert.equal(fileHash(inner.dbPath), innerHash, 'a wrong-role command wrote to the inner file');

  // read-only commands refuse to upgrade, and say what to do
  for (const args of [
    ['acl', 'grant', 'alice', '/x/**', '--dry-run'],
    ['acl', 'revoke', 'alice', '/docs/**', '--dry-run'],
    ['acl', 'check', 'alice', 'GET', 'http://intranet.example/docs/a'],
    ['acl', 'list'],
  ]) {
    expectFail(sws([...args, '--data', inner.dir]), 1, 'SWS_ERR_DB_VERSION', 'schema version 2', 'only reads');
    assert.equal(fileHash(inner.dbPath), innerHash, `${args.join(' ')} wrote to the file`);
  }
  assert.equal(versionOf(inner.dbPath), 2);

  // a writing command of the right role upgrades, keeping the data; then read-only ones work
  expectOk(sws(['acl', 'grant', 'bob', '/pub/**', '--data', inner.dir]));
  assert.equal(versionOf(inner.dbPath), SCHEMA_VERSION);
  const list = JSON.parse(expectOk(sws(['acl', 'list', '--json', '--data', inner.dir])).stdout) as { user: string; pattern: string }[];
  assert.deepEqual(list.map((r) => `${r.user} ${r.pattern}`).sort(), ['alice /docs/**', 'bob /pub/**']);
  const upgraded = fileHash(inner.dbPath);
  expectOk(sws(['acl', 'grant', 'alice', '/new/**', '--dry-run', '--data', inner.dir]));
  assert.equal(fileHash(inner.dbPath), upgraded, 'a dry-run wrote to the upgraded file');
});

test('a master.key readable by group or others is refused: exit 1 naming the file and the fix', async () => {
  const dir = join(tmp.dir, 'perm');
  expectOk(sws(['outer', 'init', '--data', dir]));
  const file = join(dir, 'master.key');
  assert.equal(statSync(file).mode & 0o777, 0o600, 'init writes it 0600');
  chmodSync(file, 0o644);
  const r = sws(['user', 'add', 'alice', '--password-stdin', '--data', dir], { input: 'pw\n' });
  expectFail(r, 1, 'SWS_ERR_MASTER_KEY', file, 'mode 0644', `chmod 600 ${file}`);
  assert.equal(JSON.parse(expectOk(sws(['user', 'list', '--json', '--data', dir])).stdout).length, 0, 'nothing was created');
  chmodSync(file, 0o600);
  expectOk(sws(['user', 'add', 'alice', '--password-stdin', '--data', dir], { input: 'pw\n' }));
});

test('the audit trail names the actor and time of each admin change and holds no secret', async () => {
  const OUT = join(tmp.dir, 'audit-out');
  const IN = join(tmp.dir, 'audit-in');
  const password = 'not-in-the-audit-trail-7f3a';
  expectOk(sws(['outer', 'init', '--data', OUT]));
  expectOk(sws(['inner', 'init', '--data', IN]));
  const t0 = new Date(Date.now() - 1000).toISOString();
  expectOk(sws(['user', 'add', 'dave', '--password-stdin', '--data', OUT], { input: `${password}\n` }));
  const key = join(tmp.dir, 'dave.pem');
  writePublicKey(key);
  expectOk(sws(['client', 'add', 'dave', '--key', key, '--data', IN]));
  expectOk(sws(['acl', 'grant', 'dave', '/docs/**', '--methods', 'GET', '--data', IN]));
  expectOk(sws(['acl', 'revoke', 'dave', '/docs/**', '--data', IN]));
  expectOk(sws(['client', 'remove', 'dave', '--data', IN]));
  type Entry = { at: string; actor: string; action: string; subject: string; detail: Record<string, unknown> };
  const outerLog = JSON.parse(expectOk(sws(['audit', '--json', '--data', OUT])).stdout) as Entry[];
  const innerLog = JSON.parse(expectOk(sws(['audit', '--json', '--data', IN])).stdout) as Entry[];
  const got = [...outerLog, ...innerLog].filter((e) => e.subject === 'dave');
  assert.deepEqual(got.map((e) => e.action).sort(), ['acl.grant', 'acl.revoke', 'client.add', 'client.remove', 'user.add']);
  for (const e of got) {
    assert.match(e.actor, /^cli:.+/, e.action);
    assert.ok(e.at >= t0 && e.at <= new Date().toISOString(), `${e.action} at ${e.at}`);
  }
  const all = JSON.stringify([outerLog, innerLog]) + expectOk(sws(['audit', '--data', IN])).stdout;
  assert.equal(all.includes(password), false, 'password in the audit trail');
  assert.equal(/-----BEGIN|PRIVATE KEY|\$scrypt/.test(all), false, 'key material or a password hash in the audit trail');
  expectFail(await inproc(['audit', '--limit', '0', '--data', IN]), 2, '--limit');
  expectFail(await inproc(['audit', '--limit', '1e3', '--data', IN]), 2, '--limit');
});

test('start flags are checked before anything starts: exit 2 naming the flag', async () => {
  // No data dir here: were a flag accepted, the command would fail later with exit 1, not hang.
  const none = join(tmp.dir, 'no-such-dir');
  expectFail(sws(['outer', 'start', '--listen', '127.0.0.1:0', '--rekey', 'foo', '--data', none]), 2, '--rekey');
  expectFail(sws(['outer', 'start', '--listen', 'nonsense', '--data', none]), 2, '--listen', 'HOST:PORT');
  expectFail(sws(['inner', 'start', '--listen', '1.2.3.4:99999', '--data', none]), 2, '--listen', 'port must be 0 to 65535');
  const bad: [string[], string][] = [
    [['inner', 'start', '--listen', '127.0.0.1:0', '--upstream-timeout', '5s'], '--upstream-timeout'],
    [['inner', 'start', '--listen', '127.0.0.1:0', '--upstream-timeout', '0'], '--upstream-timeout'],
    [['inner', 'start', '--listen', '127.0.0.1:0', '--admin-listen', 'localhost'], '--admin-listen'],
    [['inner', 'start', '--listen', '127.0.0.1 :80'], '--listen'],
    [['outer', 'start', '--listen', '127.0.0.1:0', '--inner-timeout', '-1'], '--inner-timeout'],
    [['outer', 'start', '--listen', '[::1]:65536'], '--listen'],
    [['inner', 'init', '--key-bits', '0x800'], '--key-bits'],
    [['inner', 'init', '--key-bits', '2048.0'], '--key-bits'],
  ];
  for (const [args, flag] of bad) expectFail(await inproc([...args, '--data', none]), 2, flag);
  // env integers too
  expectFail(await inproc(['acl', 'list', '--data', none], { env: { SWS_LOCK_TIMEOUT_MS: '5s' } }), 2, '$SWS_LOCK_TIMEOUT_MS');
  expectFail(await inproc(['acl', 'list', '--data', none], { env: { SWS_LOCK_TIMEOUT_MS: '600001' } }), 2, '$SWS_LOCK_TIMEOUT_MS', '0 to 600000');
  // --key-bits is checked before the password is read or the store is opened
  expectFail(sws(['user', 'add', 'erin', '--password-stdin', '--key-bits', '1024', '--data', none], { input: 'pw\n' }), 2, '--key-bits', '2048, 3072, 4096');
  expectFail(await inproc(['user', 'rekey', 'erin', '--key-bits', 'big', '--data', none]), 2, '--key-bits');
});

/**
 * Schema migrations: from an empty file and from every older version the result equals a fresh
 * schema and keeps the data; a newer file is refused; a failing migration changes nothing.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { mkdirSync } from 'node:fs';
import Database from 'better-sqlite3';
import { migrate, MIGRATIONS, SCHEMA_VERSION, schemaVersion, type Migration } from './migrations.ts';
import { openStore, aclRules } from './index.ts';
import { masterKeyCheck } from './masterkey.ts';
import { tempDir } from './testdata/helpers.ts';

const tmp = tempDir();
after(tmp.cleanup);

const schemaOf = (db: Database.Database) =>
  (db.prepare("SELECT type, name, sql FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' ORDER BY name").all() as { sql: string | null }[]).map((r) =>
    JSON.stringify(r),
  );

test('from an empty file: every migration runs, in one transaction, to the newest version', () => {
  const db = new Database(':memory:');
  assert.deepEqual(migrate(db), { from: 0, to: SCHEMA_VERSION });
  assert.equal(schemaVersion(db), SCHEMA_VERSION);
  assert.deepEqual(migrate(db), { from: SCHEMA_VERSION, to: SCHEMA_VERSION }, 'idempotent');
  db.close();
});

test('versions are numbered 1..N without gaps', () => {
  assert.deepEqual(
    MIGRATIONS.map((m) => m.version),
    MIGRATIONS.map((_, i) => i + 1),
  );
});

for (let v = 1; v < SCHEMA_VERSION; v++) {
  test(`from version ${v}: the result equals a fresh schema and the data survives`, () => {
    const fresh = new Database(':memory:');
    migrate(fresh);
    const old = new Database(':memory:');
    migrate(old, MIGRATIONS, v);
    assert.equal(schemaVersion(old), v);
    old.prepare("INSERT INTO meta (key, value) VALUES ('role', 'inner')").run();
    old.prepare("INSERT INTO acl_rules (user, host, pattern, methods, created_at) VALUES ('alice', '', '/docs/**', 'GET', 'then')").run();
    migrate(old);
    assert.equal(schemaVersion(old), SCHEMA_VERSION);
    assert.deepEqual(schemaOf(old), schemaOf(fresh));
    assert.equal((old.prepare('SELECT count(*) AS n FROM acl_rules').get() as { n: number }).n, 1);
    fresh.close();
    old.close();
  });
}

test('openStore migrates a version-1 data dir on open (also when asked for read-only)', () => {
  const dir = join(tmp.dir, 'v1');
  mkdirSync(dir);
  const db = new Database(join(dir, 'sws.db'));
  migrate(db, MIGRATIONS, 1);
  db.prepare('INSERT INTO meta (key, value) VALUES (?, ?), (?, ?)').run('role', 'inner', 'master_key_check', masterKeyCheck(Buffer.alloc(32)));
  db.prepare("INSERT INTO acl_rules (user, host, pattern, methods, created_at) VALUES ('alice', '', '/docs/**', '', 'then')").run();
  db.close();
  const store = openStore(dir, { expectRole: 'inner', readonly: true });
  assert.equal(schemaVersion(store.db), SCHEMA_VERSION);
  assert.equal(aclRules(store).list('alice')[0]?.pattern, '/docs/**');
  store.close();
  const rw = openStore(dir, { expectRole: 'inner' });
  aclRules(rw).grant({ user: 'alice', pattern: '/more/**' });
  assert.equal(aclRules(rw).generation(), 1);
  rw.close();
});

test('a database from a newer sws is refused with SWS_ERR_DB_VERSION', () => {
  const dir = join(tmp.dir, 'future');
  mkdirSync(dir);
  const db = new Database(join(dir, 'sws.db'));
  migrate(db);
  db.prepare("INSERT INTO meta (key, value) VALUES ('role', 'outer')").run();
  db.pragma(`user_version = ${SCHEMA_VERSION + 1}`);
  db.close();
  assert.throws(() => openStore(dir, {}), { code: 'SWS_ERR_DB_VERSION' });
});

test('a failing migration rolls back completely and leaves the old version', () => {
  const db = new Database(':memory:');
  migrate(db, MIGRATIONS, 1);
  const broken: Migration[] = [
    ...MIGRATIONS,
    {
      version: MIGRATIONS.length + 1,
      description: 'broken',
      up: (d) => {
        d.exec('CREATE TABLE half_done (x)');
        d.exec('THIS IS NOT SQL');
      },
    },
  ];
  assert.throws(() => migrate(db, broken));
  assert.equal(schemaVersion(db), 1);
  assert.equal(db.prepare("SELECT 1 FROM sqlite_master WHERE name IN ('half_done', 'audit_log')").get(), undefined);
  db.close();
});

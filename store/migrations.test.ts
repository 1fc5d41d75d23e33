/**
 * Schema migrations: from an empty file and from every older version the result equals a fresh
 * schema and keeps the data; a newer file is refused; a failing migration changes nothing.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { existsSync, mkdirSync, statSync } from 'node:fs';
import { constants, createPrivateKey, createPublicKey, randomBytes, sign, verify } from 'node:crypto';
import Database from 'better-sqlite3';
import { migrate, MIGRATIONS, SCHEMA_VERSION, schemaVersion, type Migration } from './migrations.ts';
import { openStore, aclRules } from './index.ts';
import { masterKeyCheck } from './masterkey.ts';
import { tempDir } from './testdata/helpers.ts';
import { fileHash, makeOldDataDir } from './testdata/fixtures.ts';

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

test('openStore: a read-only open of an older data dir refuses (changing nothing); a writing open migrates it', () => {
  const old = makeOldDataDir(join(tmp.dir, 'v1'), 1, 'inner', (db) => {
    db.prepare("INSERT INTO acl_rules (user, host, pattern, methods, created_at) VALUES ('alice', '', '/docs/**', '', 'then')").run();
  });
  const env = { SWS_MASTER_KEY: old.masterKey.toString('base64') };
  const before = fileHash(old.dbPath);
  assert.throws(() => openStore(old.dir, { expectRole: 'inner', readonly: true, env }), (e: Error & { code: string }) => {
    return e.code === 'SWS_ERR_DB_VERSION' && /schema version 1, older than this sws/.test(e.message) && /only reads/.test(e.message);
  });
  assert.equal(fileHash(old.dbPath), before, 'a read-only open wrote to the file');
  // (SQLite may leave an empty -wal beside a WAL file a reader opened; it holds nothing)
  assert.equal(existsSync(`${old.dbPath}-wal`) ? statSync(`${old.dbPath}-wal`).size : 0, 0);
  const rw = openStore(old.dir, { expectRole: 'inner', env });
  assert.equal(schemaVersion(rw.db), SCHEMA_VERSION);
  assert.equal(aclRules(rw).list('alice')[0]?.pattern, '/docs/**');
  aclRules(rw).grant({ user: 'alice', pattern: '/more/**' });
  assert.equal(aclRules(rw).generation(), 1);
  rw.close();
  const ro = openStore(old.dir, { expectRole: 'inner', readonly: true, env });
  assert.equal(aclRules(ro).list('alice').length, 2, 'once migrated, read-only opens work');
  ro.close();
});

for (let v = 1; v < SCHEMA_VERSION; v++) {
  test(`openStore: a wrong-role open of a version-${v} data dir fails with SWS_ERR_ROLE and leaves the file byte-identical`, () => {
    const old = makeOldDataDir(join(tmp.dir, `role-v${v}`), v, 'outer');
    const before = fileHash(old.dbPath);
    for (const readonly of [false, true]) {
      assert.throws(() => openStore(old.dir, { expectRole: 'inner', readonly }), { code: 'SWS_ERR_ROLE' });
      assert.equal(fileHash(old.dbPath), before, `readonly=${readonly}: the wrong-role open wrote to the file`);
    }
    const db = new Database(old.dbPath, { readonly: true });
    assert.equal(schemaVersion(db), v, 'not migrated');
    db.close();
  });
}

test('v2 → v3: the inner key made at v2 moves to inner_keys, still opens under the master key and signs', async () => {
  const { generateRsaKeyPair, toPem } = await import('../core/crypto.ts');
  const { importMasterKey, sealAtRest } = await import('../core/atrest.ts');
  const { publicKeyInfo } = await import('./keys.ts');
  const { innerKeys } = await import('./innerkeys.ts');
  const { innerKey } = await import('./index.ts');
  const kp = await generateRsaKeyPair(2048);
  const info = await publicKeyInfo(toPem(kp.spki, 'PUBLIC KEY'));
  const pkcs8 = Buffer.from(kp.pkcs8);
  let sealed: Uint8Array | undefined;
  // What `inner init` of version 2 wrote: one row in inner_key, sealed with the AAD `inner-key`.
  const mk = randomBytes(32);
  sealed = await sealAtRest(await importMasterKey(new Uint8Array(mk)), kp.pkcs8, 'inner-key');
  const old = makeOldDataDir(join(tmp.dir, 'v2-key'), 2, 'inner');
  // makeOldDataDir made its own master key; use ours (the one the row is sealed under)
  const db = new Database(old.dbPath);
  db.prepare("UPDATE meta SET value = ? WHERE key = 'master_key_check'").run(masterKeyCheck(mk));
  db.prepare('INSERT INTO inner_key (id, bits, public_key_pem, key_id, private_key_sealed, created_at) VALUES (1, 2048, ?, ?, ?, ?)').run(info.pem, info.keyId, sealed, '2025-01-01T00:00:00.000Z');
  db.close();
  const env = { SWS_MASTER_KEY: mk.toString('base64') };

  const store = openStore(old.dir, { expectRole: 'inner', env });
  try {
    assert.equal(schemaVersion(store.db), SCHEMA_VERSION);
    assert.equal(store.db.prepare("SELECT 1 FROM sqlite_master WHERE name = 'inner_key'").get(), undefined, 'the old table is gone');
    const cur = innerKeys(store).current();
    assert.deepEqual([cur.keyId, cur.bits, cur.publicKeyPem, cur.state, cur.createdAt], [info.keyId, 2048, info.pem, 'current', '2025-01-01T00:00:00.000Z']);
    assert.equal(innerKey(store).publicKeyPem(), info.pem);
    const opened = await innerKeys(store).privateKeyPkcs8(info.keyId);
    assert.equal(Buffer.from(opened).equals(pkcs8), true, 'unwraps to the same private key');
    // it signs, and the signature verifies under the public key recorded at v2
    const priv = createPrivateKey({ key: Buffer.from(opened), format: 'der', type: 'pkcs8' });
    const msg = Buffer.from('sws v2 inner key survives the upgrade');
    const sig = sign('sha256', msg, { key: priv, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 });
    assert.equal(verify('sha256', msg, { key: createPublicKey(info.pem), padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 }, sig), true);
    // rotation (which needs the old key to endorse the new one) works on the migrated key
    const r = await innerKeys(store).rotate({ overlapSeconds: 60 });
    assert.equal(r.previous.keyId, info.keyId);
    assert.equal(innerKeys(store).list().find((k) => k.keyId === info.keyId)?.state, 'retiring');
  } finally {
    store.close();
  }
  // under another master key the sealed row does not open
  const wrong = openStore(old.dir, { expectRole: 'inner', env: { SWS_MASTER_KEY: randomBytes(32).toString('base64') } });
  try {
    await assert.rejects(innerKeys(wrong).privateKeyPkcs8(info.keyId), { code: 'SWS_ERR_MASTER_KEY' });
  } finally {
    wrong.close();
  }
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

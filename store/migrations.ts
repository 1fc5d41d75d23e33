/**
 * Schema migrations. The schema version is SQLite's `PRAGMA user_version`; migration N takes
 * the database from version N-1 to N. All pending migrations run in one IMMEDIATE transaction
 * on open, so two processes opening an old file at once migrate it once, and a failure leaves
 * the file at its old version. Migrations are append-only: never edit a released one.
 *
 * Both roles share one schema (the role is a row in `meta`); an outer simply has no sites,
 * clients or rules. Tables are STRICT. Host keys are normalizeHost() values; `''` in
 * `acl_rules.host` / `acl_rules.methods` means "every host" / "every method".
 */
import type { Database } from 'better-sqlite3';
import { DbVersionError } from './errors.ts';

export interface Migration {
  readonly version: number;
  readonly description: string;
  readonly up: (db: Database) => void;
}

const sql = (text: string) => (db: Database) => void db.exec(text);

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    description: 'client list 17, inner-server list 19, inner key 39, sites, registered clients, ACL 30',
    up: sql(`
      CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) STRICT;

      CREATE TABLE outer_users (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        password_hash TEXT NOT NULL,
        public_key_pem TEXT NOT NULL,
        key_id TEXT NOT NULL,
        private_key_sealed BLOB NOT NULL,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
      ) STRICT;
      CREATE UNIQUE INDEX outer_users_name_ci ON outer_users (lower(name));

      CREATE TABLE inner_servers (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        url TEXT NOT NULL,
        public_key_pem TEXT NOT NULL,
        key_id TEXT NOT NULL,
        created_at TEXT NOT NULL
      ) STRICT;
      CREATE UNIQUE INDEX inner_servers_name_ci ON inner_servers (lower(name));
      CREATE TABLE inner_server_hosts (
        host TEXT PRIMARY KEY,
        server_id INTEGER NOT NULL REFERENCES inner_servers (id) ON DELETE CASCADE
      ) STRICT;
      CREATE INDEX inner_server_hosts_server ON inner_server_hosts (server_id);

      CREATE TABLE inner_key (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        bits INTEGER NOT NULL,
        public_key_pem TEXT NOT NULL,
        key_id TEXT NOT NULL,
        private_key_sealed BLOB NOT NULL,
        created_at TEXT NOT NULL
      ) STRICT;

      CREATE TABLE sites (
        host TEXT PRIMARY KEY,
        upstream TEXT NOT NULL,
        ca_pem TEXT,
        created_at TEXT NOT NULL
      ) STRICT;

      CREATE TABLE clients (
        user TEXT PRIMARY KEY,
        public_key_pem TEXT NOT NULL,
        key_id TEXT NOT NULL,
        cert_pem TEXT,
        created_at TEXT NOT NULL
      ) STRICT;
      CREATE UNIQUE INDEX clients_user_ci ON clients (lower(user));
      CREATE INDEX clients_key_id ON clients (key_id);

      CREATE TABLE acl_rules (
        id INTEGER PRIMARY KEY,
        user TEXT NOT NULL,
        host TEXT NOT NULL DEFAULT '',
        pattern TEXT NOT NULL,
        methods TEXT NOT NULL DEFAULT '',
        created_at TEXT NOT NULL,
        UNIQUE (user, host, pattern)
      ) STRICT;
    `),
  },
  {
    version: 2,
    description: 'audit trail of admin changes; ACL generation counter and change log for cache invalidation',
    up: sql(`
      CREATE TABLE audit_log (
        id INTEGER PRIMARY KEY,
        at TEXT NOT NULL,
        actor TEXT NOT NULL,
        action TEXT NOT NULL,
        subject TEXT NOT NULL,
        detail TEXT NOT NULL DEFAULT '{}'
      ) STRICT;
      INSERT INTO meta (key, value) VALUES ('acl_generation', '0') ON CONFLICT (key) DO NOTHING;
      CREATE TABLE acl_changes (generation INTEGER PRIMARY KEY, user TEXT NOT NULL) STRICT;
    `),
  },
  {
    version: 3,
    description: 'certificates (claim 3): CA, issued certificates, trusted CAs, revocations; rotating inner keys; TLS client identity per site (claim 6); user certificates at the outer',
    up: sql(`
      CREATE TABLE inner_keys (
        key_id TEXT PRIMARY KEY,
        bits INTEGER NOT NULL,
        public_key_pem TEXT NOT NULL,
        private_key_sealed BLOB NOT NULL,
        seal_context TEXT NOT NULL,
        state TEXT NOT NULL CHECK (state IN ('current', 'retiring', 'retired')),
        created_at TEXT NOT NULL,
        retire_at TEXT,
        endorsement TEXT
      ) STRICT;
      CREATE UNIQUE INDEX inner_keys_one_current ON inner_keys (state) WHERE state = 'current';
      INSERT INTO inner_keys (key_id, bits, public_key_pem, private_key_sealed, seal_context, state, created_at)
        SELECT key_id, bits, public_key_pem, private_key_sealed, 'inner-key', 'current', created_at FROM inner_key;
      DROP TABLE inner_key;

      CREATE TABLE ca (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        bits INTEGER NOT NULL,
        cert_pem TEXT NOT NULL,
        key_id TEXT NOT NULL,
        private_key_sealed BLOB NOT NULL,
        created_at TEXT NOT NULL
      ) STRICT;
      CREATE TABLE ca_issued (
        issuer_key_id TEXT NOT NULL,
        serial TEXT NOT NULL,
        subject TEXT NOT NULL,
        key_id TEXT NOT NULL,
        not_before TEXT NOT NULL,
        not_after TEXT NOT NULL,
        cert_pem TEXT NOT NULL,
        issued_at TEXT NOT NULL,
        PRIMARY KEY (issuer_key_id, serial)
      ) STRICT;
      CREATE TABLE ca_trusted (
        fingerprint TEXT PRIMARY KEY,
        key_id TEXT NOT NULL,
        subject TEXT NOT NULL,
        cert_pem TEXT NOT NULL,
        added_at TEXT NOT NULL
      ) STRICT;
      CREATE TABLE cert_revocations (
        issuer_key_id TEXT NOT NULL,
        serial TEXT NOT NULL,
        reason TEXT NOT NULL,
        revoked_at TEXT NOT NULL,
        PRIMARY KEY (issuer_key_id, serial)
      ) STRICT;

      ALTER TABLE sites ADD COLUMN client_cert_pem TEXT;
      ALTER TABLE sites ADD COLUMN client_key_sealed BLOB;
      ALTER TABLE outer_users ADD COLUMN cert_pem TEXT;
    `),
  },
];

export const SCHEMA_VERSION = MIGRATIONS.length;

export function schemaVersion(db: Database): number {
  return db.pragma('user_version', { simple: true }) as number;
}

/**
 * Brings `db` to `target` (default: the newest version). Returns the versions before and
 * after. Throws DbVersionError when the file is newer than this code.
 */
export function migrate(db: Database, migrations: readonly Migration[] = MIGRATIONS, target = migrations.length): { from: number; to: number } {
  const run = db.transaction(() => {
    const from = schemaVersion(db);
    if (from > migrations.length) {
      throw new DbVersionError(`the database has schema version ${from}, but this sws knows only up to ${migrations.length}: upgrade sws`);
    }
    for (const m of migrations) {
      if (m.version <= from || m.version > target) continue;
      m.up(db);
      db.pragma(`user_version = ${m.version}`);
    }
    return { from, to: Math.max(from, Math.min(target, migrations.length)) };
  });
  return run.immediate();
}

/**
 * Data dirs as an older sws left them, for upgrade tests: a WAL-mode `sws.db` at schema
 * `version` (migrations 1..version only) with its role and master-key check value, and a 0600
 * `master.key` beside it — what `init` of that version wrote.
 */
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { migrate, MIGRATIONS } from '../migrations.ts';
import { masterKeyCheck } from '../masterkey.ts';
import type { Role } from '../db.ts';

export interface OldDataDir {
  readonly dir: string;
  readonly masterKey: Buffer;
  readonly dbPath: string;
}

export function makeOldDataDir(dir: string, version: number, role: Role, populate?: (db: Database.Database) => void): OldDataDir {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  chmodSync(dir, 0o700);
  const masterKey = randomBytes(32);
  const dbPath = join(dir, 'sws.db');
  const db = new Database(dbPath);
  try {
    db.pragma('journal_mode = WAL');
    migrate(db, MIGRATIONS, version);
    db.prepare('INSERT INTO meta (key, value) VALUES (?, ?), (?, ?), (?, ?)').run('role', role, 'created_at', 'then', 'master_key_check', masterKeyCheck(masterKey));
    populate?.(db);
  } finally {
    db.close(); // checkpoints: everything is in sws.db, no -wal left
  }
  writeFileSync(join(dir, 'master.key'), masterKey.toString('base64') + '\n', { mode: 0o600 });
  return { dir, masterKey, dbPath };
}

/** SHA-256 of a file's bytes. */
export const fileHash = (path: string) => createHash('sha256').update(readFileSync(path)).digest('hex');

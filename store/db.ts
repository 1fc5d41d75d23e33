/**
 * One data dir = one SQLite file (`DATA/sws.db`, WAL mode, foreign keys on) that knows its role
 * (`inner` or `outer`), plus the master key outside it (masterkey.ts). This module opens and
 * creates data dirs, runs migrations, maps SQLite failures to typed errors, and polls
 * `PRAGMA data_version` so running sidecars see other processes' committed changes.
 *
 * Writers use BEGIN IMMEDIATE with a busy timeout: concurrent admin commands queue instead of
 * losing writes, and readers always see whole transactions (never a half-applied change).
 */
import Database from 'better-sqlite3';
import type { Database as Db, Statement } from 'better-sqlite3';
import { closeSync, existsSync, chmodSync, fsyncSync, mkdirSync, openSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { randomBytes } from 'node:crypto';
import { importMasterKey } from '../core/atrest.ts';
import { DbCorruptError, DbLockedError, DbVersionError, ExistsError, MasterKeyError, NotInitializedError, RoleError, SwsError } from './errors.ts';
import { loadMasterKey, masterKeyCheck, verifyMasterKeyCheck, writeMasterKeyFile } from './masterkey.ts';
import { migrate, schemaVersion, SCHEMA_VERSION } from './migrations.ts';
import { DEFAULT_SCRYPT, type ScryptParams } from './password.ts';

export type Role = 'inner' | 'outer';
export const ROLES: readonly Role[] = ['inner', 'outer'];
export const DB_FILE = 'sws.db';
/** Poll interval for `PRAGMA data_version` when no watcher asks for a shorter one. */
export const DEFAULT_POLL_MS = 100;

export interface OpenStoreOptions {
  /** Fail with RoleError unless the data dir has this role. */
  expectRole?: Role;
  /** Create the data dir with this role (refuses an existing one unless `force`). */
  create?: Role;
  /** With `create`: replace an existing database (its keys, users and rules are lost). */
  force?: boolean;
  /** Open the database read-only. */
  readonly?: boolean;
  /** Where `$SWS_MASTER_KEY` is read from (default: process.env). */
  env?: NodeJS.ProcessEnv;
  /** How long a writer waits for another writer's lock before SWS_ERR_DB_LOCKED (default 5000 ms). */
  busyTimeoutMs?: number;
  /** scrypt cost for new password hashes (default DEFAULT_SCRYPT; lower only in tests). */
  scrypt?: ScryptParams;
  /** Who is making changes, for the audit trail (e.g. `cli:alice`). */
  actor?: string;
}

export interface Store {
  readonly role: Role;
  readonly dataDir: string;
  readonly db: Db;
  close(): void;
  /**
   * Calls `onChange` (at most once per poll) after any change committed by another connection
   * or process, detected by polling `PRAGMA data_version` every `intervalMs` (default 100; one
   * shared timer per store, at the shortest interval asked for). ACL engine caches are
   * invalidated before watchers run. Returns a stop function. The timer is unref'd.
   */
  watch(onChange: () => void, intervalMs?: number): () => void;
  /** The master key as a non-extractable AES-GCM CryptoKey; SWS_ERR_MASTER_KEY if missing/bad. */
  masterKey(): Promise<CryptoKey>;
}

/** What the repositories need beyond the public Store surface. */
export interface StoreInternals {
  readonly dbPath: string;
  readonly scrypt: ScryptParams;
  readonly actor: string;
  prepare(sql: string): Statement;
  /** Runs `fn` in a BEGIN IMMEDIATE transaction, maps SQLite errors, then tells local listeners. */
  write<T>(fn: () => T): T;
  /** Runs a read, mapping SQLite errors. */
  read<T>(fn: () => T): T;
  /**
   * Calls `listener` after every committed change: at once for writes through this store,
   * and on the next poll for other processes' writes (before the watchers run). Keeps polling on.
   */
  onChange(listener: () => void): () => void;
  /** Appends to the audit trail; call inside `write`. */
  audit(action: string, subject: string, detail?: Record<string, unknown>): void;
}

const internalsOf = new WeakMap<Store, StoreInternals>();

export function internals(store: Store): StoreInternals {
  const i = internalsOf.get(store);
  if (!i) throw new TypeError('not a store opened by openStore()');
  return i;
}

/** `--data`, else `$SWS_DATA`, else `./.sws`; made absolute against `cwd`. */
export function resolveDataDir(flag?: string, env: NodeJS.ProcessEnv = process.env, cwd: string = process.cwd()): string {
  const dir = flag !== undefined && flag !== '' ? flag : env.SWS_DATA !== undefined && env.SWS_DATA !== '' ? env.SWS_DATA : './.sws';
  return resolve(cwd, dir);
}

function sqliteCode(e: unknown): string | undefined {
  return e instanceof Database.SqliteError ? e.code : undefined;
}

/** Turns SQLite's BUSY/LOCKED/CORRUPT/NOTADB into SwsErrors; other errors pass through. */
export function mapDbError(e: unknown, dbPath: string): unknown {
  const code = sqliteCode(e);
  if (code === undefined) return e;
  if (code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED')) {
    return new DbLockedError(`the database ${dbPath} is locked by another process; try again when it has finished`, { cause: e });
  }
  if (code.startsWith('SQLITE_CORRUPT') || code === 'SQLITE_NOTADB') {
    return new DbCorruptError(`the database ${dbPath} is damaged or is not an sws database: restore it from a backup or re-create the data dir with init --force`, {
      cause: e,
    });
  }
  if (code.startsWith('SQLITE_CANTOPEN') || code.startsWith('SQLITE_READONLY') || code.startsWith('SQLITE_IOERR') || code === 'SQLITE_PERM') {
    return new SwsError('SWS_ERR_DB_IO', `cannot use the database ${dbPath} (${code}): check the file's owner, permissions and free space`, { cause: e });
  }
  return e;
}

function openConnection(dbPath: string, readonly: boolean, busyTimeoutMs: number): Db {
  let db: Db;
  try {
    db = new Database(dbPath, { readonly, fileMustExist: true, timeout: busyTimeoutMs });
  } catch (e) {
    throw mapDbError(e, dbPath);
  }
  try {
    db.pragma('foreign_keys = ON');
    // query_only until the role and version are checked (openStore): a command for the other
    // role, or a read-only one, must not write a byte, not even the journal mode.
    db.pragma('query_only = ON');
    // Touches page 1: a file that is not SQLite fails here with SQLITE_NOTADB.
    schemaVersion(db);
    return db;
  } catch (e) {
    db.close();
    throw mapDbError(e, dbPath);
  }
}

function readMeta(db: Db, key: string): string | undefined {
  const row = db.prepare('SELECT value FROM meta WHERE key = ?').get(key) as { value: string } | undefined;
  return row?.value;
}

function hasMetaTable(db: Db): boolean {
  return db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'").get() !== undefined;
}

/** Reads the role of an existing data dir without side effects (undefined if unreadable). */
export function peekRole(dataDir: string): Role | undefined {
  const dbPath = join(resolve(dataDir), DB_FILE);
  if (!existsSync(dbPath)) return undefined;
  try {
    const db = new Database(dbPath, { readonly: true, fileMustExist: true, timeout: 200 });
    try {
      const role = hasMetaTable(db) ? readMeta(db, 'role') : undefined;
      return role === 'inner' || role === 'outer' ? role : undefined;
    } finally {
      db.close();
    }
  } catch {
    return undefined;
  }
}

function roleHint(role: Role): string {
  return role === 'inner' ? 'an inner data dir (made by `sws inner init`)' : 'an outer data dir (made by `sws outer init`)';
}

/** Throws ExistsError when `dataDir` already holds a database and `force` is not set. */
export function assertCreatable(dataDir: string, force: boolean): void {
  const dir = resolve(dataDir);
  if (force || !existsSync(join(dir, DB_FILE))) return;
  const existing = peekRole(dir);
  throw new ExistsError(`${dir} already holds ${existing ? `an ${existing}` : 'an sws'} data dir; add --force to replace it (its keys, users and rules are destroyed)`);
}

export interface CreateDataDirOptions {
  force?: boolean;
  env?: NodeJS.ProcessEnv;
  /** Already-resolved master key (initStore seals keys with it before the file exists). */
  masterKeyRaw?: Buffer;
  masterKeySource?: 'env' | 'file' | 'new';
  /** Runs inside the creating transaction, before the file becomes visible at DATA/sws.db. */
  populate?: (db: Db) => void;
  actor?: string;
}

/**
 * Creates DATA/sws.db for `role` atomically: the database is built under a temporary name and
 * renamed into place, so an interrupted init leaves either the old data dir or a whole new one.
 */
export function createDataDir(dataDir: string, role: Role, opts: CreateDataDirOptions = {}): void {
  const dir = resolve(dataDir);
  const dbPath = join(dir, DB_FILE);
  // Only a directory we create is chmod'ed: `--data /srv` must not change /srv's mode.
  if (mkdirSync(dir, { recursive: true, mode: 0o700 }) !== undefined) chmodSync(dir, 0o700);
  assertCreatable(dir, opts.force ?? false);
  const mk = opts.masterKeyRaw
    ? { raw: opts.masterKeyRaw, source: opts.masterKeySource ?? 'file' }
    : loadMasterKey(dir, opts.env ?? process.env, true);

  const tmp = `${dbPath}.init-${process.pid}-${randomBytes(4).toString('hex')}`;
  const cleanup = () => {
    for (const f of [tmp, `${tmp}-wal`, `${tmp}-shm`, `${tmp}-journal`]) rmSync(f, { force: true });
  };
  try {
    writeFileSync(tmp, '', { mode: 0o600, flag: 'wx' });
    const db = new Database(tmp, { fileMustExist: true });
    try {
      db.pragma('journal_mode = WAL');
      db.pragma('foreign_keys = ON');
      migrate(db);
      const now = new Date().toISOString();
      db.transaction(() => {
        const put = db.prepare('INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value');
        put.run('role', role);
        put.run('created_at', now);
        put.run('master_key_check', masterKeyCheck(mk.raw));
        db.prepare('INSERT INTO audit_log (at, actor, action, subject, detail) VALUES (?, ?, ?, ?, ?)').run(
          now,
          opts.actor ?? 'api',
          `${role}.init`,
          dir,
          JSON.stringify({ masterKey: mk.source === 'env' ? 'env' : 'file', force: Boolean(opts.force) }),
        );
        opts.populate?.(db);
      }).immediate();
    } finally {
      db.close();
    }
    if (mk.source === 'new') writeMasterKeyFile(dir, mk.raw);
    // A stale WAL beside the new file would be replayed into it.
    rmSync(`${dbPath}-wal`, { force: true });
    rmSync(`${dbPath}-shm`, { force: true });
    renameSync(tmp, dbPath);
    try {
      const fd = openSync(dir, 'r');
      fsyncSync(fd);
      closeSync(fd);
    } catch {
      /* directory fsync is best-effort (not supported everywhere) */
    }
  } catch (e) {
    cleanup();
    throw mapDbError(e, dbPath);
  }
}

export function openStore(dataDir: string, opts: OpenStoreOptions = {}): Store {
  const dir = resolve(dataDir);
  const dbPath = join(dir, DB_FILE);
  if (opts.create) {
    createDataDir(dir, opts.create, { force: opts.force ?? false, env: opts.env ?? process.env, actor: opts.actor ?? 'api' });
  } else if (!existsSync(dbPath)) {
    const need = opts.expectRole ? `run \`sws ${opts.expectRole} init\`` : 'run `sws inner init` or `sws outer init`';
    throw new NotInitializedError(`no sws data dir at ${dir} (no ${DB_FILE}): ${need}, or point --data / $SWS_DATA at an existing one`);
  }
  const busy = opts.busyTimeoutMs ?? 5000;
  const readonly = opts.readonly ?? false;
  const db = openConnection(dbPath, readonly, busy);
  try {
    // Everything up to the role check only reads: `meta.role` exists in every schema version,
    // so a command for the other role leaves an older file exactly as it was.
    const version = schemaVersion(db);
    if (version === 0 && !hasMetaTable(db)) {
      throw new DbCorruptError(`${dbPath} is empty or is not an sws database: restore it from a backup or re-create the data dir with init --force`);
    }
    if (version > SCHEMA_VERSION) {
      throw new DbVersionError(`the database has schema version ${version}, but this sws knows only up to ${SCHEMA_VERSION}: upgrade sws`);
    }
    const role = hasMetaTable(db) ? readMeta(db, 'role') : undefined;
    if (role !== 'inner' && role !== 'outer') throw new DbCorruptError(`${dbPath} does not record a role (inner or outer): restore it from a backup`);
    if (opts.expectRole && role !== opts.expectRole) {
      throw new RoleError(`this command needs ${roleHint(opts.expectRole)}, but ${dir} is ${roleHint(role)}; use --data to point at the right one`);
    }
    if (readonly) {
      // A read-only command (list, check, --dry-run) never writes, so it cannot upgrade.
      if (version !== SCHEMA_VERSION) {
        throw new DbVersionError(
          `${dbPath} has schema version ${version}, older than this sws (${SCHEMA_VERSION}), and this command only reads: ` +
            `run a command that changes the data dir (or start the ${role} sidecar) once to upgrade it, then retry`,
        );
      }
    } else {
      db.pragma('query_only = OFF');
      db.pragma('journal_mode = WAL');
      db.pragma('synchronous = FULL');
      if (version !== SCHEMA_VERSION) migrate(db);
    }
    return makeStore(db, dir, dbPath, role, opts);
  } catch (e) {
    if (db.open) db.close();
    throw mapDbError(e, dbPath);
  }
}

function makeStore(db: Db, dataDir: string, dbPath: string, role: Role, opts: OpenStoreOptions): Store {
  const env = opts.env ?? process.env;
  const stmts = new Map<string, Statement>();
  // One poller per store for every watcher. On a change committed elsewhere, the internal
  // listeners (ACL engine cache invalidation) run before the watchers, so a watcher that
  // re-checks requests in flight already sees the new rules.
  const internalListeners = new Set<() => void>();
  const watchers = new Set<{ fn: () => void; intervalMs: number }>();
  let pollingFor = 0; // internal users that need polling without a watcher (engines)
  let timer: NodeJS.Timeout | undefined;
  let timerEvery = 0;
  let lastVersion = 0;
  const dataVersion = db.prepare('PRAGMA data_version').pluck();
  const poll = () => {
    let v: number;
    try {
      v = dataVersion.get() as number;
    } catch {
      stopTimer();
      return;
    }
    if (v === lastVersion) return;
    lastVersion = v;
    for (const l of [...internalListeners]) l();
    for (const w of [...watchers]) w.fn();
  };
  const stopTimer = () => {
    if (timer) clearInterval(timer);
    timer = undefined;
    timerEvery = 0;
  };
  const schedule = () => {
    let every = Infinity;
    for (const w of watchers) every = Math.min(every, w.intervalMs);
    if (pollingFor > 0) every = Math.min(every, DEFAULT_POLL_MS);
    if (every === Infinity || !db.open) return stopTimer();
    if (timer && every === timerEvery) return;
    if (!timer) lastVersion = dataVersion.get() as number;
    if (timer) clearInterval(timer);
    timer = setInterval(poll, every);
    timer.unref();
    timerEvery = every;
  };
  let masterKeyP: Promise<CryptoKey> | undefined;

  const prepare = (sql: string): Statement => {
    let s = stmts.get(sql);
    if (!s) {
      try {
        s = db.prepare(sql);
      } catch (e) {
        throw mapDbError(e, dbPath);
      }
      stmts.set(sql, s);
    }
    return s;
  };

  const store: Store = {
    role,
    dataDir,
    db,
    close() {
      watchers.clear();
      internalListeners.clear();
      pollingFor = 0;
      stopTimer();
      if (db.open) db.close();
    },
    watch(onChange, intervalMs = 100) {
      const w = { fn: onChange, intervalMs: Math.max(10, intervalMs) };
      watchers.add(w);
      schedule();
      return () => {
        if (watchers.delete(w)) schedule();
      };
    },
    masterKey() {
      masterKeyP ??= (async () => {
        const mk = loadMasterKey(dataDir, env, false);
        try {
          const expected = readMeta(db, 'master_key_check');
          if (expected !== undefined && !verifyMasterKeyCheck(mk.raw, expected)) {
            throw new MasterKeyError(
              `the master key (${mk.source === 'env' ? '$SWS_MASTER_KEY' : `${dataDir}/master.key`}) does not belong to this data dir: restore the right one`,
            );
          }
          return await importMasterKey(new Uint8Array(mk.raw));
        } finally {
          mk.raw.fill(0);
        }
      })();
      masterKeyP.catch(() => {
        masterKeyP = undefined;
      });
      return masterKeyP;
    },
  };

  const i: StoreInternals = {
    dbPath,
    scrypt: opts.scrypt ?? DEFAULT_SCRYPT,
    actor: opts.actor ?? 'api',
    prepare,
    write(fn) {
      let result;
      try {
        result = db.transaction(fn).immediate();
      } catch (e) {
        throw mapDbError(e, dbPath);
      }
      for (const l of [...internalListeners]) l();
      return result;
    },
    read(fn) {
      try {
        return fn();
      } catch (e) {
        throw mapDbError(e, dbPath);
      }
    },
    onChange(listener) {
      internalListeners.add(listener);
      pollingFor++;
      schedule();
      let active = true;
      return () => {
        if (!active) return;
        active = false;
        internalListeners.delete(listener);
        pollingFor--;
        schedule();
      };
    },
    audit(action, subject, detail = {}) {
      prepare('INSERT INTO audit_log (at, actor, action, subject, detail) VALUES (?, ?, ?, ?, ?)').run(
        new Date().toISOString(),
        opts.actor ?? 'api',
        action,
        subject,
        JSON.stringify(detail),
      );
    },
  };
  internalsOf.set(store, i);
  return store;
}

/** Throws RoleError unless `store` has `role` (the repositories are role-specific). */
export function requireRole(store: Store, role: Role, what: string): void {
  if (store.role !== role) throw new RoleError(`${what} live in ${roleHint(role)}, but ${store.dataDir} is ${roleHint(store.role)}`);
}

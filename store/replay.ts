/**
 * The inner's exchange replay cache, persisted (docs/PROTOCOL.md §6): an accepted EXCHANGE is
 * remembered by SHA-256(Wrapped Secret) until its timestamp window closes, so a recorded
 * exchange replayed to this inner, also after a restart, is refused, and a restarted inner
 * need not refuse honest exchanges stamped just before its start (RFC 8446 §8.2 otherwise).
 *
 * It lives in its own file, DATA/replay.db, so that its writes (one per exchange) do not look
 * like admin changes to the processes that watch the main database. Several inner processes
 * on one host can share it: insert-if-absent is atomic.
 *
 * IDs are stored as raw octets (a 64-character hex key made the table and each commit almost
 * twice as large). Expired rows are swept a slice of the key space at a time: the IDs are
 * hashes, so each of the 256 first-octet slices holds about 1/256 of the rows, and a slice is
 * swept every SWEEP_EVERY inserts. A sweep of the whole table every 1000 inserts scanned all of
 * it (~144,000 rows at 600 exchanges/s over a 240 s window) and held the event loop for tens of ms.
 */
import Database from 'better-sqlite3';
import { chmodSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import type { ExchangeReplayGuard } from '../core/exchange.ts';

export const REPLAY_DB_FILE = 'replay.db';

/** Inserts between two slice sweeps: all 256 slices are visited every 4096 exchanges, so expired rows outstay their window by at most that many inserts. */
export const SWEEP_EVERY = 16;
const SLICES = 256;

export class SqliteExchangeReplayGuard implements ExchangeReplayGuard {
  readonly #db: Database.Database;
  readonly #remember: Database.Statement<[Uint8Array, number, number]>;
  readonly #sweepSlice: Database.Statement<[Uint8Array, Uint8Array, number]>;
  readonly #sweepLast: Database.Statement<[Uint8Array, number]>;
  #sinceSweep = 0;
  #nextSlice = 0;

  constructor(dataDir: string) {
    const path = join(dataDir, REPLAY_DB_FILE);
    const fresh = !existsSync(path);
    this.#db = new Database(path);
    if (fresh) chmodSync(path, 0o600);
    this.#db.pragma('journal_mode = WAL');
    this.#db.pragma('synchronous = NORMAL');
    this.#db.pragma('busy_timeout = 5000');
    this.#migrate();
    // New ID, or an old one whose window closed: one row changes. A live duplicate: none.
    this.#remember = this.#db.prepare('INSERT INTO exchanges_seen (id, expires_at) VALUES (?, ?) ON CONFLICT (id) DO UPDATE SET expires_at = excluded.expires_at WHERE exchanges_seen.expires_at <= ?');
    this.#sweepSlice = this.#db.prepare('DELETE FROM exchanges_seen WHERE id >= ? AND id < ? AND expires_at <= ?');
    this.#sweepLast = this.#db.prepare('DELETE FROM exchanges_seen WHERE id >= ? AND expires_at <= ?');
  }

  /**
   * Creates the table; a replay.db written by an earlier version (table `seen`, hex TEXT IDs)
   * has its live rows copied over, so an upgrade opens no replay hole, and the old table dropped.
   * The old table is looked for inside the write transaction: inner workers starting together
   * on one data directory then convert it once, and the others find it gone.
   */
  #migrate(): void {
    this.#db.exec('CREATE TABLE IF NOT EXISTS exchanges_seen (id BLOB PRIMARY KEY, expires_at INTEGER NOT NULL) STRICT, WITHOUT ROWID');
    const hasOld = this.#db.prepare("SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = 'seen'");
    if (hasOld.get() === undefined) return; // the usual case, without taking the write lock
    this.#db.transaction(() => {
      if (hasOld.get() === undefined) return;
      this.#db.prepare('INSERT OR IGNORE INTO exchanges_seen (id, expires_at) SELECT unhex(id), expires_at FROM seen WHERE unhex(id) IS NOT NULL AND expires_at > ?').run(Date.now());
      this.#db.exec('DROP TABLE seen');
    }).immediate();
  }

  remember(id: Uint8Array, expiresAt: number, now: number): boolean {
    if (++this.#sinceSweep >= SWEEP_EVERY) {
      this.#sinceSweep = 0;
      this.#sweep(now);
    }
    return this.#remember.run(id, expiresAt, now).changes === 1;
  }

  /** Deletes the expired rows of one first-octet slice of the IDs, then moves to the next. */
  #sweep(now: number): void {
    const slice = this.#nextSlice;
    this.#nextSlice = (slice + 1) % SLICES;
    const from = Uint8Array.of(slice);
    if (slice === SLICES - 1) this.#sweepLast.run(from, now);
    else this.#sweepSlice.run(from, Uint8Array.of(slice + 1), now);
  }

  close(): void {
    if (this.#db.open) this.#db.close();
  }
}

/**
 * The inner's exchange replay cache, persisted (docs/PROTOCOL.md §6): an accepted EXCHANGE is
 * remembered by SHA-256(Wrapped Secret) until its timestamp window closes, so a recorded
 * exchange replayed to this inner, also after a restart, is refused, and a restarted inner
 * need not refuse honest exchanges stamped just before its start (RFC 8446 §8.2 otherwise).
 *
 * It lives in its own file, DATA/replay.db, so that its writes (one per exchange) do not look
 * like admin changes to the processes that watch the main database. Several inner processes
 * on one host can share it: insert-if-absent is atomic.
 */
import Database from 'better-sqlite3';
import { chmodSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import type { ExchangeReplayGuard } from '../core/exchange.ts';

export const REPLAY_DB_FILE = 'replay.db';

export class SqliteExchangeReplayGuard implements ExchangeReplayGuard {
  readonly #db: Database.Database;
  readonly #remember: Database.Statement<[string, number, number]>;
  readonly #sweep: Database.Statement<[number]>;
  #sinceSweep = 0;

  constructor(dataDir: string) {
    const path = join(dataDir, REPLAY_DB_FILE);
    const fresh = !existsSync(path);
    this.#db = new Database(path);
    if (fresh) chmodSync(path, 0o600);
    this.#db.pragma('journal_mode = WAL');
    this.#db.pragma('synchronous = NORMAL');
    this.#db.pragma('busy_timeout = 5000');
    this.#db.exec('CREATE TABLE IF NOT EXISTS seen (id TEXT PRIMARY KEY, expires_at INTEGER NOT NULL) STRICT, WITHOUT ROWID');
    // New ID, or an old one whose window closed: one row changes. A live duplicate: none.
    this.#remember = this.#db.prepare('INSERT INTO seen (id, expires_at) VALUES (?, ?) ON CONFLICT (id) DO UPDATE SET expires_at = excluded.expires_at WHERE seen.expires_at <= ?');
    this.#sweep = this.#db.prepare('DELETE FROM seen WHERE expires_at <= ?');
  }

  remember(id: string, expiresAt: number, now: number): boolean {
    if (++this.#sinceSweep >= 1000) {
      this.#sinceSweep = 0;
      this.#sweep.run(now);
    }
    return this.#remember.run(id, expiresAt, now).changes === 1;
  }

  close(): void {
    if (this.#db.open) this.#db.close();
  }
}

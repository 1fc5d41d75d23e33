/** The persisted exchange replay cache (PROTOCOL.md §6): survives restarts, shared by processes. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { SqliteExchangeReplayGuard, SWEEP_EVERY } from './replay.ts';
import { tempDir } from './testdata/helpers.ts';

/** An exchange ID as the core makes them: SHA-256 of something, 32 octets, uniformly spread. */
const id = (s: string | number) => new Uint8Array(createHash('sha256').update(String(s)).digest());

function withDir(fn: (dir: string) => void): void {
  const { dir, cleanup } = tempDir('sws-replay-');
  try {
    fn(dir);
  } finally {
    cleanup();
  }
}

const rows = (dir: string) => {
  const db = new Database(join(dir, 'replay.db'), { readonly: true });
  try {
    return (db.prepare('SELECT count(*) AS n FROM exchanges_seen').get() as { n: number }).n;
  } finally {
    db.close();
  }
};

test('an exchange ID is accepted once within its window, again only after the window closed', () => {
  withDir((dir) => {
    const g = new SqliteExchangeReplayGuard(dir);
    assert.equal(g.remember(id('a'), 1000, 0), true);
    assert.equal(g.remember(id('a'), 1000, 500), false, 'live duplicate');
    assert.equal(g.remember(id('b'), 1000, 500), true);
    assert.equal(g.remember(id('a'), 3000, 1000), true, 'the window of the first closed');
    g.close();
    assert.equal(statSync(join(dir, 'replay.db')).mode & 0o777, 0o600);
  });
});

test('the cache survives a restart and is shared between two handles (two inner processes)', () => {
  withDir((dir) => {
    const first = new SqliteExchangeReplayGuard(dir);
    const second = new SqliteExchangeReplayGuard(dir);
    assert.equal(first.remember(id('x'), 10_000, 1), true);
    assert.equal(second.remember(id('x'), 10_000, 2), false, 'another process sees it');
    first.close();
    second.close();
    const restarted = new SqliteExchangeReplayGuard(dir);
    assert.equal(restarted.remember(id('x'), 10_000, 3), false, 'a restarted inner still refuses it');
    restarted.close();
  });
});

test('expired entries are swept slice by slice, and no live entry is ever swept', () => {
  withDir((dir) => {
    const g = new SqliteExchangeReplayGuard(dir);
    const cycle = 256 * SWEEP_EVERY; // inserts between two visits of the same slice
    const total = 3 * cycle;
    const longLived: Uint8Array[] = [];
    for (let i = 0; i < total; i++) {
      // Most entries expire 10 ticks after they are made; every 100th outlives the test.
      const live = i % 100 === 0;
      if (live) longLived.push(id(`live${i}`));
      assert.equal(g.remember(live ? longLived.at(-1)! : id(i), live ? 1e12 : i + 10, i), true);
    }
    const left = rows(dir);
    // What a sweep cannot have reached yet: at most one cycle of inserts, plus the live ones.
    assert.ok(left <= cycle + longLived.length, `${left} rows left of ${total}`);
    assert.ok(left < total / 2, `${left} rows left of ${total}: the sweep did not run`);
    for (const k of longLived) assert.equal(g.remember(k, 1e12, total), false, 'a live entry was swept');
    g.close();
  });
});

test('a replay.db from an earlier version (hex TEXT IDs) keeps its live entries', () => {
  withDir((dir) => {
    const now = Date.now();
    const old = new Database(join(dir, 'replay.db'));
    old.pragma('journal_mode = WAL');
    old.exec('CREATE TABLE seen (id TEXT PRIMARY KEY, expires_at INTEGER NOT NULL) STRICT, WITHOUT ROWID');
    const put = old.prepare('INSERT INTO seen VALUES (?, ?)');
    put.run(Buffer.from(id('live')).toString('hex'), now + 60_000);
    put.run(Buffer.from(id('gone')).toString('hex'), now - 1);
    put.run('not hex', now + 60_000);
    old.close();

    const g = new SqliteExchangeReplayGuard(dir);
    assert.equal(g.remember(id('live'), now + 60_000, now), false, 'an exchange seen before the upgrade is still refused');
    assert.equal(g.remember(id('gone'), now + 60_000, now), true, 'an expired one is not carried over');
    g.close();
    const db = new Database(join(dir, 'replay.db'), { readonly: true });
    assert.equal(db.prepare("SELECT name FROM sqlite_schema WHERE name = 'seen'").get(), undefined, 'the old table is dropped');
    db.close();
    assert.equal(rows(dir), 2);
  });
});

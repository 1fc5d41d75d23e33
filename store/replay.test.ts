/** The persisted exchange replay cache (PROTOCOL.md §6): survives restarts, shared by processes. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { SqliteExchangeReplayGuard } from './replay.ts';

test('an exchange ID is accepted once within its window, again only after the window closed', () => {
  const dir = mkdtempSync(join(tmpdir(), 'sws-replay-'));
  try {
    const g = new SqliteExchangeReplayGuard(dir);
    assert.equal(g.remember('a', 1000, 0), true);
    assert.equal(g.remember('a', 1000, 500), false, 'live duplicate');
    assert.equal(g.remember('b', 1000, 500), true);
    assert.equal(g.remember('a', 3000, 1000), true, 'the window of the first closed');
    g.close();
    assert.equal(statSync(join(dir, 'replay.db')).mode & 0o777, 0o600);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the cache survives a restart and is shared between two handles (two inner processes)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'sws-replay-'));
  try {
    const first = new SqliteExchangeReplayGuard(dir);
    const second = new SqliteExchangeReplayGuard(dir);
    assert.equal(first.remember('x', 10_000, 1), true);
    assert.equal(second.remember('x', 10_000, 2), false, 'another process sees it');
    first.close();
    second.close();
    const restarted = new SqliteExchangeReplayGuard(dir);
    assert.equal(restarted.remember('x', 10_000, 3), false, 'a restarted inner still refuses it');
    restarted.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('expired entries are swept so the file does not grow without bound', () => {
  const dir = mkdtempSync(join(tmpdir(), 'sws-replay-'));
  try {
    const g = new SqliteExchangeReplayGuard(dir);
    for (let i = 0; i < 2500; i++) assert.equal(g.remember(`id${i}`, i + 10, i), true);
    g.close();
    const db = new Database(join(dir, 'replay.db'));
    const n = (db.prepare('SELECT count(*) AS n FROM seen').get() as { n: number }).n;
    db.close();
    assert.ok(n < 600, `${n} rows left`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

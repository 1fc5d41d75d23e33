import { test } from 'node:test';
import assert from 'node:assert/strict';
import { InnerSessionTable, type InnerSession } from './inner.ts';

/** The table reads only a session's ID and user. */
const session = (id: string, user = 'alice') => ({ sessionIdHex: id, user }) as unknown as InnerSession;

test('InnerSessionTable evicts the least recently used session, a lookup counting as use', () => {
  const table = new InnerSessionTable(3);
  const [a, b, c, d] = ['a', 'b', 'c', 'd'].map((id) => session(id));
  table.add(a!);
  table.add(b!);
  table.add(c!);
  assert.equal(table.get('a'), a); // a is now the newest: b is the oldest
  assert.equal(table.get('a'), a); // the newest looked up again: still the newest
  table.add(d!);
  assert.equal(table.size, 3);
  assert.equal(table.has('b'), false);
  assert.deepEqual([...table.values()].map((s) => s.sessionIdHex), ['c', 'a', 'd']);
});

test('InnerSessionTable: a session ended and added again is the newest, and lookups of the newest keep the order', () => {
  const table = new InnerSessionTable(2);
  const a = session('a');
  const b = session('b');
  table.add(a);
  table.add(b);
  table.delete('b'); // the newest is gone
  assert.equal(table.get('b'), undefined);
  assert.equal(table.get('a'), a);
  table.add(b);
  table.add(a); // re-added: moves to the end
  table.add(session('c'));
  assert.deepEqual([...table.values()].map((s) => s.sessionIdHex), ['a', 'c']);
  assert.equal(table.endUser('alice'), 2);
  assert.equal(table.size, 0);
});

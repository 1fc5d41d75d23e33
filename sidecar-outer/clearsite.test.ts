/**
 * Claim 5 in forward-proxy mode: a client address that authenticates as another user gets
 * Clear-Site-Data "cache" once per origin; the same user again gets nothing.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { UserSwitchTracker } from './clearsite.ts';

test('a change of user at an address owes each origin one Clear-Site-Data; repeated requests of one user owe nothing', () => {
  const t = new UserSwitchTracker();
  for (let i = 0; i < 3; i++) t.seen('10.0.0.1', 'alice');
  assert.equal(t.take('10.0.0.1', 'http://a.example'), false, 'the first user of an address erases nothing');
  t.seen('10.0.0.1', 'bob');
  t.seen('10.0.0.1', 'bob');
  assert.equal(t.take('10.0.0.1', 'http://a.example'), true);
  assert.equal(t.take('10.0.0.1', 'http://a.example'), false, 'once per origin');
  assert.equal(t.take('10.0.0.1', 'http://b.example'), true);
  t.seen('10.0.0.2', 'carol');
  t.seen('10.0.0.1', 'bob');
  assert.equal(t.take('10.0.0.1', 'http://a.example'), false, 'bob again, after another address: still nothing owed');
  t.seen('10.0.0.1', 'alice');
  assert.equal(t.take('10.0.0.1', 'http://a.example'), true, 'back to alice: erased again');
  assert.equal(t.take('10.0.0.2', 'http://a.example'), false, 'other addresses are their own');
});

test('the least recently seen address is forgotten first, and a forgotten address starts afresh', () => {
  const t = new UserSwitchTracker();
  t.seen('keep', 'alice');
  t.seen('old', 'alice');
  for (let i = 0; i < 9_998; i++) t.seen(`a${i}`, 'x');
  t.seen('keep', 'alice');
  t.seen('new', 'y');
  t.seen('old', 'bob');
  assert.equal(t.take('old', 'http://a.example'), false, "'old' was forgotten: bob is its first user");
  t.seen('keep', 'bob');
  assert.equal(t.take('keep', 'http://a.example'), true, "'keep' was seen recently and remembered alice");
});

/**
 * The zod-free integer check every sidecar start makes (flags and environment): what it
 * accepts, and that every rejection is a UsageError naming the field with the message the
 * flags have always given. And the lazy schemas: usable directly or through check().
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { check, checkInt, hostListSchema, userNameSchema } from './validate.ts';

test('checkInt accepts decimal digits within the range', () => {
  assert.equal(checkInt('0', 0, 10, '--n'), 0);
  assert.equal(checkInt('10', 0, 10, '--n'), 10);
  assert.equal(checkInt('007', 0, 10, '--n'), 7);
});

test('checkInt refuses signs, spaces, fractions, out-of-range and non-strings with one message', () => {
  for (const bad of ['', '-1', '+1', ' 1', '1.5', '1e3', '11', '0x1', '12345678901234567', 5, undefined]) {
    assert.throws(() => checkInt(bad, 0, 10, '--n'), { code: 'SWS_ERR_USAGE', message: /--n.*must be an integer from 0 to 10/ }, String(bad));
  }
});

test('lazy schemas work through check() and when called', () => {
  assert.deepEqual(check(hostListSchema, 'A.example, b.example:8080,a.example', '--hosts'), ['a.example', 'b.example:8080']);
  assert.equal(userNameSchema(), userNameSchema(), 'built once');
  assert.equal(userNameSchema().safeParse('alice').success, true);
  assert.throws(() => check(userNameSchema, 'a:b', 'USER'), { code: 'SWS_ERR_USAGE', message: /USER.*a user name is 1-128 characters/ });
});

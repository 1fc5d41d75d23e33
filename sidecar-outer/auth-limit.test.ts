/** The wrong-password allowance per client address: a token bucket, counted per IPv4 address or IPv6 /64, bounded in memory. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { clientKey, FailureLimiter } from './auth-limit.ts';

test('clients are counted per IPv4 address (also IPv4-mapped) and per IPv6 /64', () => {
  assert.equal(clientKey('192.0.2.7'), '192.0.2.7');
  assert.equal(clientKey('::ffff:192.0.2.7'), '192.0.2.7');
  assert.equal(clientKey('2001:db8:1:2:aaaa::1'), '2001:db8:1:2::/64');
  assert.equal(clientKey('2001:0db8:0001:0002:ffff:ffff:ffff:ffff'), '2001:db8:1:2::/64');
  assert.equal(clientKey('2001:db8::1'), '2001:db8:0:0::/64');
  assert.equal(clientKey('::1'), '0:0:0:0::/64');
  assert.equal(clientKey('fe80::1%eth0'), 'fe80:0:0:0::/64');
  assert.equal(clientKey('1::2:3:4:5:192.0.2.1'), '1:0:2:3::/64', 'a dotted tail is two groups');
  assert.equal(clientKey('64:ff9b::192.0.2.1'), '64:ff9b:0:0::/64');
  assert.notEqual(clientKey('2001:db8:1:3::1'), clientKey('2001:db8:1:2::1'));
  assert.equal(clientKey('not an address'), 'not an address');
});

test('an allowance refills evenly over the period and is forgotten once full', () => {
  let now = 0;
  const l = new FailureLimiter({ failures: 4, periodMs: 4000 }, { now: () => now });
  for (let i = 0; i < 4; i++) {
    assert.equal(l.waitMs('192.0.2.1'), 0);
    l.failed('192.0.2.1');
  }
  assert.equal(l.waitMs('192.0.2.1'), 1000, 'a token every second');
  assert.equal(l.waitMs('192.0.2.2'), 0, 'others are not affected');
  now = 600;
  assert.equal(l.waitMs('192.0.2.1'), 400);
  now = 1000;
  assert.equal(l.waitMs('192.0.2.1'), 0);
  now = 4000;
  assert.equal(l.waitMs('192.0.2.1'), 0);
  assert.equal(l.size, 0, 'a full allowance is not kept');
  // A clock that steps back never takes tokens away.
  l.failed('192.0.2.3');
  now = 0;
  assert.equal(l.waitMs('192.0.2.3'), 0);
});

test('IPv6 addresses of one /64 share an allowance', () => {
  const l = new FailureLimiter({ failures: 2, periodMs: 60_000 });
  l.failed('2001:db8:1:2::10');
  l.failed('2001:db8:1:2::20');
  assert.ok(l.waitMs('2001:db8:1:2::30') > 0);
  assert.equal(l.waitMs('2001:db8:1:3::30'), 0);
});

test('the table is bounded: past maxClients the least recently failing address is dropped', () => {
  const l = new FailureLimiter({ failures: 1, periodMs: 60_000 }, { maxClients: 100 });
  for (let i = 0; i < 1000; i++) l.failed(`10.0.${i >> 8}.${i & 255}`);
  assert.equal(l.size, 100);
  assert.equal(l.waitMs('10.0.0.0'), 0, 'the oldest was dropped');
  assert.ok(l.waitMs('10.0.3.231') > 0, 'the newest is kept');
});

test('0 failures turns the limit off; a bad configuration is refused', () => {
  const l = new FailureLimiter({ failures: 0, periodMs: 60_000 });
  for (let i = 0; i < 50; i++) l.failed('192.0.2.1');
  assert.equal(l.waitMs('192.0.2.1'), 0);
  assert.equal(l.size, 0);
  assert.throws(() => new FailureLimiter({ failures: -1, periodMs: 1 }), RangeError);
  assert.throws(() => new FailureLimiter({ failures: 1.5, periodMs: 1 }), RangeError);
  assert.throws(() => new FailureLimiter({ failures: 1, periodMs: 0 }), RangeError);
});

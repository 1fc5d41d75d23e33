/**
 * Proxy authentication at the outer (patent 0067) and what it remembers: a keep-alive
 * connection's last accepted Proxy-Authorization value is trusted only byte for byte and only
 * until the store changes; a wrong password, another connection or a store change always goes
 * back to the password check.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Authenticator, parseBasic, type PasswordChecker } from './auth.ts';

const basic = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;

/** A user store in memory that counts password checks (the scrypt the memos exist to avoid). */
function store(users: Record<string, string>): PasswordChecker & { checks: number; users: Record<string, string> } {
  const s = {
    checks: 0,
    users,
    async verifyPassword(user: string, password: string) {
      s.checks++;
      return s.users[user] === password;
    },
  };
  return s;
}

test('a connection that proved a header is remembered for exactly that header; no password check again', async () => {
  const users = store({ alice: 'alice-pw-1', bob: 'bob-pw-22' });
  const auth = new Authenticator(users);
  const conn = {};
  const good = basic('alice', 'alice-pw-1');
  assert.equal(auth.remembered(conn, good), undefined, 'nothing before a success');
  assert.equal(await auth.authenticateHeader(conn, good), 'alice');
  assert.equal(users.checks, 1);
  assert.equal(auth.remembered(conn, good), 'alice');
  assert.equal(users.checks, 1, 'remembered without a check');
  assert.equal(auth.remembered({}, good), undefined, 'another connection proves it itself');
  assert.equal(auth.remembered(conn, undefined), undefined);
});

test('a different password on the same connection is never let through, even one of the same length', async () => {
  const auth = new Authenticator(store({ alice: 'alice-pw-1' }));
  const conn = {};
  await auth.authenticateHeader(conn, basic('alice', 'alice-pw-1'));
  for (const wrong of [basic('alice', 'alice-pw-2'), basic('alice', 'alice-pw-1x'), basic('alice', ''), 'Basic', basic('alicf', 'alice-pw-1')]) {
    assert.equal(auth.remembered(conn, wrong), undefined, wrong);
    assert.equal(await auth.authenticateHeader(conn, wrong), undefined, wrong);
  }
  assert.equal(auth.remembered(conn, basic('alice', 'alice-pw-1')), 'alice', 'a failure does not undo the proof');
});

test('a changed password or a removed user stops working at the next request after the store change (forgetAll)', async () => {
  const users = store({ alice: 'old-password', bob: 'bob-password' });
  const auth = new Authenticator(users);
  const conn = {};
  const old = basic('alice', 'old-password');
  const bob = basic('bob', 'bob-password');
  assert.equal(await auth.authenticateHeader(conn, old), 'alice');
  assert.equal(await auth.authenticateHeader({}, bob), 'bob');
  users.users = { alice: 'new-password' };
  auth.forgetAll();
  assert.equal(auth.remembered(conn, old), undefined, 'the connection memo is gone');
  assert.equal(await auth.authenticateHeader(conn, old), undefined, 'and the HMAC memo: the old password is checked again and refused');
  assert.equal(await auth.authenticate(parseBasic(bob)), undefined, 'the removed user is refused');
  assert.equal(await auth.authenticateHeader(conn, basic('alice', 'new-password')), 'alice');
});

test('a password check that raced a store change is not remembered', async () => {
  let release!: () => void;
  const users = { alice: 'pw' } as Record<string, string>;
  const auth = new Authenticator({
    verifyPassword: async (user, password) => {
      const ok = users[user] === password;
      await new Promise<void>((r) => (release = r));
      return ok;
    },
  });
  const conn = {};
  const header = basic('alice', 'pw');
  const pending = auth.authenticateHeader(conn, header);
  await new Promise((r) => setImmediate(r));
  delete users.alice;
  auth.forgetAll();
  release();
  assert.equal(await pending, 'alice', 'that one request was checked before the change');
  assert.equal(auth.remembered(conn, header), undefined, 'but nothing of it survives the change');
  const next = auth.authenticateHeader(conn, header);
  await new Promise((r) => setImmediate(r));
  release();
  assert.equal(await next, undefined, 'the next request is checked against the store as it is now');
});

test('parseBasic: RFC 7617 credentials; anything else is no credentials', () => {
  assert.deepEqual(parseBasic(basic('alice', 'a:b π')), { user: 'alice', password: 'a:b π' });
  assert.equal(parseBasic(undefined), undefined);
  assert.equal(parseBasic('Bearer x'), undefined);
  assert.equal(parseBasic(basic('', 'pw')), undefined);
});

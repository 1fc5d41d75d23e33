/**
 * Proxy authentication at the outer (patent 0067) and what it remembers: a keep-alive
 * connection's last accepted Proxy-Authorization value is trusted only byte for byte and only
 * until the store changes; a wrong password, another connection or a store change always goes
 * back to the password check.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Authenticator, parseBasic, type PasswordChecker } from './auth.ts';
import { FailureLimiter } from './auth-limit.ts';

/** The address the tests' requests come from. */
const CLIENT = '192.0.2.10';

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
  assert.equal(await auth.authenticateHeader(conn, good, CLIENT), 'alice');
  assert.equal(users.checks, 1);
  assert.equal(auth.remembered(conn, good), 'alice');
  assert.equal(users.checks, 1, 'remembered without a check');
  assert.equal(auth.remembered({}, good), undefined, 'another connection proves it itself');
  assert.equal(auth.remembered(conn, undefined), undefined);
});

test('a different password on the same connection is never let through, even one of the same length', async () => {
  const auth = new Authenticator(store({ alice: 'alice-pw-1' }));
  const conn = {};
  await auth.authenticateHeader(conn, basic('alice', 'alice-pw-1'), CLIENT);
  for (const wrong of [basic('alice', 'alice-pw-2'), basic('alice', 'alice-pw-1x'), basic('alice', ''), 'Basic', basic('alicf', 'alice-pw-1')]) {
    assert.equal(auth.remembered(conn, wrong), undefined, wrong);
    assert.equal(await auth.authenticateHeader(conn, wrong, CLIENT), undefined, wrong);
  }
  assert.equal(auth.remembered(conn, basic('alice', 'alice-pw-1')), 'alice', 'a failure does not undo the proof');
});

test('a changed password or a removed user stops working at the next request after the store change (forgetAll)', async () => {
  const users = store({ alice: 'old-password', bob: 'bob-password' });
  const auth = new Authenticator(users);
  const conn = {};
  const old = basic('alice', 'old-password');
  const bob = basic('bob', 'bob-password');
  assert.equal(await auth.authenticateHeader(conn, old, CLIENT), 'alice');
  assert.equal(await auth.authenticateHeader({}, bob, CLIENT), 'bob');
  users.users = { alice: 'new-password' };
  auth.forgetAll();
  assert.equal(auth.remembered(conn, old), undefined, 'the connection memo is gone');
  assert.equal(await auth.authenticateHeader(conn, old, CLIENT), undefined, 'and the HMAC memo: the old password is checked again and refused');
  assert.equal(await auth.authenticate(parseBasic(bob), CLIENT), undefined, 'the removed user is refused');
  assert.equal(await auth.authenticateHeader(conn, basic('alice', 'new-password'), CLIENT), 'alice');
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
  const pending = auth.authenticateHeader(conn, header, CLIENT);
  await new Promise((r) => setImmediate(r));
  delete users.alice;
  auth.forgetAll();
  release();
  assert.equal(await pending, 'alice', 'that one request was checked before the change');
  assert.equal(auth.remembered(conn, header), undefined, 'but nothing of it survives the change');
  const next = auth.authenticateHeader(conn, header, CLIENT);
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

/** A user store whose password checks wait until released, to hold checks in flight. */
function gatedStore(users: Record<string, string>) {
  const s = store(users);
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const verify = s.verifyPassword;
  s.verifyPassword = async (user, password) => {
    const result = verify(user, password); // counts and reads the users now, as scrypt reads the hash first
    await gate;
    return result;
  };
  return { s, release };
}

test('identical credentials arriving together share one password check, right or wrong', async () => {
  const { s, release } = gatedStore({ alice: 'alice-pw-1' });
  const auth = new Authenticator(s);
  const good = Array.from({ length: 8 }, () => auth.authenticateHeader({}, basic('alice', 'alice-pw-1'), CLIENT));
  const bad = Array.from({ length: 8 }, () => auth.authenticateHeader({}, basic('alice', 'guess'), CLIENT));
  const other = auth.authenticateHeader({}, basic('alice', 'guess-2'), CLIENT);
  release();
  assert.deepEqual(await Promise.all(good), Array(8).fill('alice'));
  assert.deepEqual(await Promise.all(bad), Array(8).fill(undefined));
  assert.equal(await other, undefined);
  assert.equal(s.checks, 3, 'one check per distinct credentials');
  assert.equal(await auth.authenticateHeader({}, basic('alice', 'guess'), CLIENT), undefined);
  assert.equal(s.checks, 4, 'a failure is not remembered once its check is over');
  assert.equal(await auth.authenticateHeader({}, basic('alice', 'alice-pw-1'), CLIENT), 'alice');
  assert.equal(s.checks, 4, 'a success is');
});

test('after a store change, credentials never join a check that started before it', async () => {
  const { s, release } = gatedStore({ alice: 'old-password' });
  const auth = new Authenticator(s);
  const before = auth.authenticateHeader({}, basic('alice', 'old-password'), CLIENT);
  s.users = { alice: 'new-password' };
  auth.forgetAll();
  const after = auth.authenticateHeader({}, basic('alice', 'old-password'), CLIENT);
  release();
  assert.equal(await after, undefined, 'checked against the new password');
  assert.equal(s.checks, 2);
  assert.equal(await before, 'alice', 'the check that raced the change answers for its own request only');
  assert.equal(await auth.authenticateHeader({}, basic('alice', 'old-password'), CLIENT), undefined, 'and was not remembered');
});

test('a password check that throws fails every request that joined it, and the next one checks again', async () => {
  let calls = 0;
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const auth = new Authenticator({
    async verifyPassword() {
      calls++;
      await gate;
      if (calls === 1) throw new Error('store unavailable');
      return true;
    },
  });
  const joined = [auth.authenticateHeader({}, basic('alice', 'pw'), CLIENT), auth.authenticateHeader({}, basic('alice', 'pw'), CLIENT)];
  release();
  for (const r of await Promise.allSettled(joined)) assert.equal(r.status, 'rejected');
  assert.equal(calls, 1);
  assert.equal(await auth.authenticateHeader({}, basic('alice', 'pw'), CLIENT), 'alice');
  assert.equal(calls, 2);
});

test('at most maxConcurrent password checks run at once; the others wait their turn', async () => {
  let running = 0;
  let most = 0;
  const waiting: (() => void)[] = [];
  const auth = new Authenticator(
    {
      async verifyPassword() {
        running++;
        most = Math.max(most, running);
        await new Promise<void>((r) => waiting.push(r));
        running--;
        return false;
      },
    },
    2,
  );
  const all = Array.from({ length: 6 }, (_, i) => auth.authenticateHeader({}, basic('alice', `guess-${i}`), CLIENT));
  // Release checks one by one as they start, until all six have run.
  for (let released = 0; released < 6; released++) {
    while (waiting.length === 0) await new Promise((r) => setImmediate(r));
    waiting.shift()!();
  }
  assert.deepEqual(await Promise.all(all), Array(6).fill(undefined));
  assert.equal(most, 2);
});

test('wrong passwords are limited per client address: past the allowance no password is checked, and the wait is told', async () => {
  const users = store({ alice: 'alice-pw-1', bob: 'bob-pw-22' });
  let now = 1_000_000;
  const auth = new Authenticator(users, 4, new FailureLimiter({ failures: 3, periodMs: 60_000 }, { now: () => now }));
  const proven = {};
  assert.equal(await auth.authenticateHeader(proven, basic('bob', 'bob-pw-22'), CLIENT), 'bob');
  for (let i = 0; i < 3; i++) assert.equal(await auth.authenticateHeader({}, basic('alice', `guess-${i}`), CLIENT), undefined);
  const checks = users.checks;
  await assert.rejects(auth.authenticateHeader({}, basic('alice', 'guess-3'), CLIENT), (err: { code?: string; retryAfterSeconds?: number }) => err.code === 'SWS_ERR_AUTH_RATE_LIMITED' && err.retryAfterSeconds === 20);
  // The right password is not checked either: otherwise guessing would go on, told apart by the answer.
  await assert.rejects(auth.authenticateHeader({}, basic('alice', 'alice-pw-1'), CLIENT), { code: 'SWS_ERR_AUTH_RATE_LIMITED' });
  assert.equal(users.checks, checks, 'no password check while limited');
  // Already proven credentials cost no check and reveal nothing new: they still pass.
  assert.equal(auth.remembered(proven, basic('bob', 'bob-pw-22')), 'bob');
  assert.equal(await auth.authenticateHeader({}, basic('bob', 'bob-pw-22'), CLIENT), 'bob');
  // Another address has its own allowance.
  assert.equal(await auth.authenticateHeader({}, basic('alice', 'alice-pw-1'), '192.0.2.11'), 'alice');
  // One token back after a third of the period: one more check, then limited again.
  now += 20_000;
  assert.equal(await auth.authenticateHeader({}, basic('alice', 'guess-4'), CLIENT), undefined);
  await assert.rejects(auth.authenticateHeader({}, basic('alice', 'guess-5'), CLIENT), { code: 'SWS_ERR_AUTH_RATE_LIMITED' });
});

test('the same wrong credentials sent at once share one check and count as one failure', async () => {
  const users = store({ alice: 'alice-pw-1' });
  const auth = new Authenticator(users, 4, new FailureLimiter({ failures: 2, periodMs: 60_000 }));
  const same = await Promise.all(Array.from({ length: 5 }, () => auth.authenticateHeader({}, basic('alice', 'guess'), CLIENT)));
  assert.deepEqual(same, [undefined, undefined, undefined, undefined, undefined]);
  assert.equal(users.checks, 1);
  // One of two failures used: one more distinct guess is checked.
  assert.equal(await auth.authenticateHeader({}, basic('alice', 'guess-2'), CLIENT), undefined);
  await assert.rejects(auth.authenticateHeader({}, basic('alice', 'guess-3'), CLIENT), { code: 'SWS_ERR_AUTH_RATE_LIMITED' });
});

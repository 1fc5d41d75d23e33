/**
 * `sws outer init`, `sws server ...`, `sws user ...`: each command and failure class through the
 * real binary (`sws`), input variants in-process (`inproc`). Passwords never reach any output.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createPublicKey } from 'node:crypto';
import { expectFail, expectOk, inproc, sws, tempDir, writePublicKey, type Result } from './helpers.ts';
import { openStore, outerUsers } from '../../store/index.ts';

const tmp = tempDir();
after(tmp.cleanup);
const OUT = join(tmp.dir, 'out');
const IN = join(tmp.dir, 'in');
const KEY = join(tmp.dir, 'inner.pem');
const PASSWORDS = ['s3cret-of-alice', 'bob pass\n', 'new-alice-pass'];
const outputs: Result[] = [];
const keep = (r: Result) => (outputs.push(r), r);

before(async () => {
  keep(expectOk(sws(['outer', 'init', '--data', OUT])));
  keep(expectOk(await inproc(['inner', 'init', '--data', IN])));
  writePublicKey(KEY);
});

const verify = async (user: string, password: string) => {
  const s = openStore(OUT, { expectRole: 'outer' });
  try {
    return await outerUsers(s).verifyPassword(user, password);
  } finally {
    s.close();
  }
};

test('outer init creates the data dir; outer commands on an inner dir say an outer data dir is needed', async () => {
  assert.match(outputs[0]!.stdout, /initialized outer data dir/);
  expectFail(sws(['user', 'list', '--data', IN]), 2, 'SWS_ERR_ROLE', 'needs an outer data dir');
  for (const args of [['server', 'list'], ['server', 'remove', 'x'], ['user', 'key', 'x'], ['user', 'remove', 'x']]) {
    expectFail(await inproc([...args, '--data', IN]), 2, 'SWS_ERR_ROLE', 'needs an outer data dir');
  }
  expectFail(await inproc(['outer', 'init', '--data', OUT]), 1, 'SWS_ERR_EXISTS', '--force');
});

test('server add | list | remove, with --json', async () => {
  const r = keep(expectOk(sws(['server', 'add', 'in1', '--url', 'https://inner.example:8443', '--key', KEY, '--hosts', 'Intranet.Example,wiki.example:443', '--data', OUT])));
  assert.match(r.stdout, /fronts intranet\.example, wiki\.example/);
  const list = JSON.parse(keep(expectOk(sws(['server', 'list', '--json', '--data', OUT]))).stdout) as { name: string; url: string; hosts: string[]; keyId: string }[];
  assert.deepEqual(list.map((s) => [s.name, s.url, s.hosts]), [['in1', 'https://inner.example:8443', ['intranet.example', 'wiki.example']]]);
  assert.match(list[0]!.keyId, /^[0-9a-f]{64}$/);
  assert.match(expectOk(await inproc(['server', 'list', '--data', OUT])).stdout, /^NAME\s+URL\s+HOSTS/);
  expectOk(await inproc(['server', 'add', 'in2', '--url', 'http://10.1.1.1:9000/sws', '--key', KEY, '--hosts', 'other.example', '--data', OUT]));
  expectOk(sws(['server', 'remove', 'in2', '--data', OUT]));
  expectFail(await inproc(['server', 'remove', 'in2', '--data', OUT]), 1, 'SWS_ERR_NOT_FOUND');
  assert.equal((JSON.parse(expectOk(await inproc(['server', 'list', '--json', '--data', OUT])).stdout) as unknown[]).length, 1);
});

test('server add: bad or conflicting input exits with a message naming the field', async () => {
  expectFail(sws(['server', 'add', 'in3', '--url', 'https://x', '--key', KEY, '--data', OUT]), 2, '--hosts');
  writeFileSync(join(tmp.dir, 'junk.pem'), '-----BEGIN PUBLIC KEY-----\nnot base64!\n-----END PUBLIC KEY-----\n');
  expectFail(sws(['server', 'add', 'in3', '--url', 'https://x', '--key', join(tmp.dir, 'junk.pem'), '--hosts', 'a.example', '--data', OUT]), 2, '--key', 'junk.pem');
  const bad: [string[], string][] = [
    [['--url', 'https://x', '--hosts', 'a.example'], '--key'],
    [['--key', KEY, '--hosts', 'a.example'], '--url'],
    [['--url', 'ftp://x', '--key', KEY, '--hosts', 'a.example'], '--url'],
    [['--url', 'https://u:p@x', '--key', KEY, '--hosts', 'a.example'], '--url'],
    [['--url', 'https://x', '--key', KEY, '--hosts', 'a.example,,b.example'], '--hosts'],
    [['--url', 'https://x', '--key', KEY, '--hosts', 'bad host'], '--hosts'],
    [['--url', 'https://x', '--key', join(tmp.dir, 'missing.pem'), '--hosts', 'a.example'], '--key'],
  ];
  for (const [args, field] of bad) expectFail(await inproc(['server', 'add', 'in3', ...args, '--data', OUT]), 2, field);
  expectFail(await inproc(['server', 'add', 'bad/name', '--url', 'https://x', '--key', KEY, '--hosts', 'a.example', '--data', OUT]), 2, 'NAME');
  // a host is fronted by exactly one inner server; a name is taken once
  expectFail(await inproc(['server', 'add', 'in3', '--url', 'https://x', '--key', KEY, '--hosts', 'WIKI.example', '--data', OUT]), 1, 'SWS_ERR_EXISTS', 'in1');
  expectFail(await inproc(['server', 'add', 'IN1', '--url', 'https://x', '--key', KEY, '--hosts', 'c.example', '--data', OUT]), 1, 'SWS_ERR_EXISTS');
  expectOk(await inproc(['server', 'add', 'in1', '--url', 'https://inner2.example', '--key', KEY, '--hosts', 'intranet.example', '--replace', '--data', OUT]));
});

test('user add reads the password from stdin, strips one trailing newline, prints no secret', async () => {
  const r = keep(expectOk(sws(['user', 'add', 'alice', '--password-stdin', '--data', OUT], { input: `${PASSWORDS[0]}\n` })));
  assert.match(r.stdout, /created user alice \(sha256:[0-9a-f]{64}\)/);
  assert.equal(await verify('alice', PASSWORDS[0]!), true);
  // only one newline is removed: "bob pass\n\n" means the password "bob pass\n"
  keep(expectOk(await inproc(['user', 'add', 'bob', '--password-stdin', '--key-bits', '2048', '--data', OUT], { input: `${PASSWORDS[1]}\n` })));
  assert.equal(await verify('bob', PASSWORDS[1]!), true);
  assert.equal(await verify('bob', 'bob pass'), false);
  // CRLF counts as one trailing newline; no newline at all is fine too
  keep(expectOk(await inproc(['user', 'add', 'carol', '--password-stdin', '--data', OUT], { input: 'carol-pw\r\n' })));
  assert.equal(await verify('carol', 'carol-pw'), true);
  keep(expectOk(await inproc(['user', 'add', 'dave', '--password-stdin', '--data', OUT], { input: 'dave-pw' })));
  assert.equal(await verify('dave', 'dave-pw'), true);
});

test('user add: missing flag, empty password, bad name, duplicate user → clear errors, nothing changed', async () => {
  expectFail(sws(['user', 'add', 'erin', '--data', OUT], { input: 'pw\n' }), 2, '--password-stdin');
  expectFail(sws(['user', 'add', 'alice', '--password-stdin', '--data', OUT], { input: 'other\n' }), 1, 'SWS_ERR_EXISTS', 'alice');
  assert.equal(await verify('alice', PASSWORDS[0]!), true, 'the duplicate did not change the password');
  expectFail(await inproc(['user', 'add', 'erin', '--password-stdin', '--data', OUT], { input: '\n' }), 2, '--password-stdin', 'empty');
  expectFail(await inproc(['user', 'add', 'erin', '--password-stdin', '--data', OUT], { input: '' }), 2, '--password-stdin', 'empty');
  expectFail(await inproc(['user', 'add', 'erin', '--password-stdin', '--data', OUT], { input: Buffer.from([0x70, 0xff, 0x0a]) }), 2, '--password-stdin');
  expectFail(await inproc(['user', 'add', 'e:rin', '--password-stdin', '--data', OUT], { input: 'pw' }), 2, 'USER');
  expectFail(await inproc(['user', 'add', 'ALICE', '--password-stdin', '--data', OUT], { input: 'pw' }), 1, 'SWS_ERR_EXISTS');
  expectFail(await inproc(['user', 'add', 'erin', '--password-stdin', '--key-bits', '512', '--data', OUT], { input: 'pw' }), 2, '--key-bits');
  expectFail(await inproc(['user', 'add', '--password-stdin', '--data', OUT], { input: 'pw' }), 2, 'USER');
  assert.equal(JSON.parse(expectOk(await inproc(['user', 'list', '--json', '--data', OUT])).stdout).some((u: { name: string }) => u.name === 'erin'), false);
});

test('user key prints the PEM public key; user list shows names and fingerprints only', async () => {
  const pem = keep(expectOk(sws(['user', 'key', 'alice', '--data', OUT]))).stdout;
  assert.equal(createPublicKey(pem).asymmetricKeyType, 'rsa');
  expectFail(await inproc(['user', 'key', 'nobody', '--data', OUT]), 1, 'SWS_ERR_NOT_FOUND');
  const text = keep(expectOk(sws(['user', 'list', '--data', OUT])));
  assert.match(text.stdout, /^USER\s+KEY\s+CREATED\nalice\s+sha256:/);
  const json = JSON.parse(keep(expectOk(await inproc(['user', 'list', '--json', '--data', OUT]))).stdout) as Record<string, unknown>[];
  assert.deepEqual(
    json.map((u) => u.name),
    ['alice', 'bob', 'carol', 'dave'],
  );
  assert.deepEqual(Object.keys(json[0]!).sort(), ['createdAt', 'keyId', 'name', 'updatedAt']);
});

test('user passwd replaces the password; user remove deletes the user', async () => {
  keep(expectOk(sws(['user', 'passwd', 'alice', '--password-stdin', '--data', OUT], { input: `${PASSWORDS[2]}\n` })));
  assert.equal(await verify('alice', PASSWORDS[2]!), true);
  assert.equal(await verify('alice', PASSWORDS[0]!), false);
  expectFail(await inproc(['user', 'passwd', 'nobody', '--password-stdin', '--data', OUT], { input: 'x' }), 1, 'SWS_ERR_NOT_FOUND');
  expectFail(await inproc(['user', 'passwd', 'alice', '--data', OUT], { input: 'x' }), 2, '--password-stdin');
  keep(expectOk(sws(['user', 'remove', 'dave', '--data', OUT])));
  expectFail(await inproc(['user', 'remove', 'dave', '--data', OUT]), 1, 'SWS_ERR_NOT_FOUND');
  assert.equal(await verify('dave', 'dave-pw'), false);
});

test('a missing master key fails user add clearly (exit 1) and creates nothing', async () => {
  renameSync(join(OUT, 'master.key'), join(tmp.dir, 'master.key.away'));
  try {
    expectFail(sws(['user', 'add', 'frank', '--password-stdin', '--data', OUT], { input: 'pw\n' }), 1, 'SWS_ERR_MASTER_KEY', '$SWS_MASTER_KEY');
    // a wrong key given through the environment is detected, not used
    expectFail(
      await inproc(['user', 'add', 'frank', '--password-stdin', '--data', OUT], { input: 'pw', env: { SWS_MASTER_KEY: Buffer.alloc(32, 1).toString('base64') } }),
      1,
      'SWS_ERR_MASTER_KEY',
      'does not belong',
    );
    // listing needs no master key
    assert.equal(JSON.parse(expectOk(await inproc(['user', 'list', '--json', '--data', OUT])).stdout).some((u: { name: string }) => u.name === 'frank'), false);
  } finally {
    renameSync(join(tmp.dir, 'master.key.away'), join(OUT, 'master.key'));
  }
});

test('no password ever appears on stdout or stderr', () => {
  for (const r of outputs) for (const p of PASSWORDS) assert.equal((r.stdout + r.stderr).includes(p.trim()), false);
});

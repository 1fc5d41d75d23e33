/**
 * The executable itself and the failure classes that are not about one command: usage errors
 * exit 2, --help works everywhere, a damaged or locked database is reported and left unchanged,
 * and bin/sws.js runs from any directory and through a node_modules/.bin symlink.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import type { Command } from 'commander';
import { expectFail, expectOk, inproc, sws, swsAsync, SWS, tempDir } from './helpers.ts';
import { buildProgram, commandWords, modulesFor } from '../../bin/cli.ts';
import { makeContext } from '../../bin/commands/common.ts';

const tmp = tempDir();
after(tmp.cleanup);
const IN = join(tmp.dir, 'in');

before(async () => {
  expectOk(await inproc(['inner', 'init', '--data', IN]));
});

test('no command, an unknown command or option, or excess arguments: exit 2 with usage on stderr', async () => {
  const none = sws([]);
  assert.equal(none.code, 2);
  assert.match(none.stderr, /Usage: sws/);
  expectFail(sws(['frobnicate']), 2, "unknown command 'frobnicate'");
  expectFail(await inproc(['acl', 'list', '--no-such-flag', '--data', IN]), 2, "unknown option '--no-such-flag'");
  expectFail(await inproc(['inner', 'key', 'extra', '--data', IN]), 2, 'too many arguments');
  const group = await inproc(['acl']);
  assert.equal(group.code, 2);
  assert.match(group.stderr, /Usage: sws acl/);
});

test('--help and --version exit 0; `help` works as a command', async () => {
  const h = expectOk(sws(['--help']));
  for (const g of ['inner', 'outer', 'client', 'acl', 'server', 'user']) assert.match(h.stdout, new RegExp(`\\n  ${g} `));
  assert.match(expectOk(sws(['acl', 'check', '--help'])).stdout, /Usage: sws acl check \[options\] <USER> <METHOD> <URL>[\s\S]*--data <DIR>/);
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
  assert.equal(expectOk(await inproc(['--version'])).stdout.trim(), pkg.version);
  assert.match(expectOk(sws(['help', 'user'])).stdout, /Usage: sws user/);
});

test('every command has --help (exit 0) that mentions --data', async () => {
  const program = await buildProgram(makeContext({ stdout: { write: () => true }, stderr: { write: () => true } }));
  const leaves: string[][] = [];
  const all: string[] = [];
  const walk = (c: Command, path: string[]) => {
    const subs = c.commands.filter((s) => s.name() !== 'help');
    all.push(path.join(' '));
    if (subs.length === 0) leaves.push(path);
    for (const s of subs) walk(s, [...path, s.name()]);
  };
  walk(program, []);
  const contract = ['inner init', 'inner key', 'inner site add', 'client add', 'client remove', 'client list', 'acl grant', 'acl revoke', 'acl list', 'acl check', 'outer init', 'server add', 'server remove', 'server list', 'user add', 'user key', 'user remove', 'user list', 'user passwd'];
  for (const c of contract) assert.ok(all.includes(c), `missing command: sws ${c}`);
  // `inner key` both prints the key and groups `inner key rotate | list | retire`.
  leaves.push(['inner', 'key']);
  for (const leaf of leaves) {
    const r = await inproc([...leaf, '--help']);
    assert.equal(r.code, 0, leaf.join(' '));
    assert.match(r.stdout, /--data <DIR>/, leaf.join(' '));
  }
});

test('command modules load lazily: only those the typed words can reach', () => {
  assert.deepEqual(commandWords(['--data', 'x', 'inner', 'key', '--json']), ['inner', 'key']);
  const names = (argv: string[]) => modulesFor(argv).map((m) => m.words);
  assert.deepEqual(names(['user', 'add', 'alice']), ['user']);
  assert.deepEqual(names(['--data', 'inner', 'inner', 'key']), ['inner', 'inner key']);
  assert.ok(names(['inner', 'start', '--listen', ':0']).includes('inner start'));
  assert.ok(names(['inner', '--help']).includes('inner start'));
  assert.equal(names([]).length, modulesFor(undefined).length);
  assert.equal(names(['help', 'inner']).length, modulesFor(undefined).length);
});

test('a damaged database file: clear error (exit 1) for reads and writes, file left as it was', async () => {
  const dir = join(tmp.dir, 'corrupt');
  mkdirSync(dir);
  const junk = Buffer.alloc(16384, 0x41);
  writeFileSync(join(dir, 'sws.db'), junk);
  copyFileSync(join(IN, 'master.key'), join(dir, 'master.key'));
  expectFail(sws(['acl', 'list', '--data', dir]), 1, 'SWS_ERR_DB_CORRUPT', 'backup');
  expectFail(await inproc(['acl', 'grant', 'alice', '/x', '--data', dir]), 1, 'SWS_ERR_DB_CORRUPT');
  expectFail(await inproc(['inner', 'init', '--data', dir]), 1, 'SWS_ERR_EXISTS');
  assert.deepEqual(readFileSync(join(dir, 'sws.db')), junk);
  // a truncated copy of a real database
  const half = join(tmp.dir, 'half');
  mkdirSync(half);
  const real = readFileSync(join(IN, 'sws.db'));
  writeFileSync(join(half, 'sws.db'), real.subarray(0, 100));
  expectFail(await inproc(['client', 'list', '--data', half]), 1, 'SWS_ERR_DB_CORRUPT');
});

test('a locked database: the write waits, then fails clearly (exit 1) and changes nothing; reads still work', async () => {
  const holder = new Database(join(IN, 'sws.db'));
  holder.exec('BEGIN EXCLUSIVE');
  try {
    const env = { SWS_LOCK_TIMEOUT_MS: '200' };
    const [w, r] = await Promise.all([
      swsAsync(['acl', 'grant', 'alice', '/locked/**', '--data', IN], { env }),
      swsAsync(['acl', 'list', '--json', '--data', IN], { env }),
    ]);
    expectFail(w, 1, 'SWS_ERR_DB_LOCKED', 'locked by another process');
    expectOk(r);
    expectFail(await inproc(['acl', 'grant', 'alice', '/x', '--data', IN], { env: { SWS_LOCK_TIMEOUT_MS: 'soon' } }), 2, '$SWS_LOCK_TIMEOUT_MS');
  } finally {
    holder.exec('ROLLBACK');
    holder.close();
  }
  assert.equal(JSON.parse(expectOk(await inproc(['acl', 'list', '--json', '--data', IN])).stdout).length, 0);
});

test('bin/sws.js works from any directory and through a node_modules/.bin symlink', () => {
  const bin = join(tmp.dir, 'project', 'node_modules', '.bin');
  mkdirSync(bin, { recursive: true });
  symlinkSync(SWS, join(bin, 'sws'));
  const elsewhere = join(tmp.dir, 'elsewhere');
  mkdirSync(elsewhere);
  // a tsconfig in the cwd must not change how sws itself is compiled
  writeFileSync(join(elsewhere, 'tsconfig.json'), '{"compilerOptions":{"experimentalDecorators":true,"verbatimModuleSyntax":false}}');
  const r = expectOk(sws(['inner', 'key', '--data', '../in'], { exe: join(bin, 'sws'), cwd: elsewhere }));
  assert.match(r.stdout, /^-----BEGIN PUBLIC KEY-----/);
  // relative --data and the default ./.sws resolve against the caller's cwd
  expectOk(sws(['outer', 'init'], { cwd: elsewhere }));
  assert.match(readFileSync(join(elsewhere, '.sws', 'master.key'), 'utf8'), /^[A-Za-z0-9+/]{43}=\n$/);
});

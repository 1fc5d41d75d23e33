/**
 * `sws inner start --config FILE` / `sws outer start --config FILE`: the declarative config
 * (`sws apply` format) is applied to the data dir before the sidecar listens, so a mounted
 * ConfigMap is all a container needs. Without --prune entries the file does not list are kept;
 * --prune removes them; --init creates a missing data dir. A bad file, a file for the other
 * role or one the data dir cannot take exits 2 naming file and line, starts nothing (no
 * "listening" line) and changes nothing (the whole database is compared).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { spawn } from 'node:child_process';
import { baseEnv, expectFail, expectOk, sws, SWS, tempDir, writePublicKey } from '../cli/helpers.ts';
import { startSidecar } from '../helpers/e2e.ts';

const tmp = tempDir();
after(tmp.cleanup);
const IN = join(tmp.dir, 'in');
const file = (name: string, text: string) => {
  const p = join(tmp.dir, name);
  writeFileSync(p, text);
  return p;
};
const ENV = { NODE_ENV: 'test', SWS_SCRYPT_N: '1024', SWS_DATA: undefined as unknown as string };

function snapshot(dataDir: string): Record<string, unknown[]> {
  const db = new Database(join(dataDir, 'sws.db'), { readonly: true, fileMustExist: true });
  try {
    const tables = (db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").all() as { name: string }[]).map((t) => t.name);
    return Object.fromEntries(tables.map((t) => [t, db.prepare(`SELECT * FROM "${t}" ORDER BY rowid`).all()]));
  } finally {
    db.close();
  }
}

type Rule = { user: string; pattern: string; host: string | null; methods: string[] | null };
const rules = (dir: string) => (JSON.parse(expectOk(sws(['acl', 'list', '--json', '--data', dir])).stdout) as Rule[]).map((r) => [r.user, r.host, r.pattern, r.methods]);

const INNER = `version: 1
role: inner
sites:
  - host: wiki.intranet.example
    upstream: http://127.0.0.1:8080
clients:
  - user: alice
    publicKeyFile: alice.pem
acl:
  - user: alice
    pattern: /docs/**
    methods: [GET, HEAD]
`;

before(() => {
  writePublicKey(join(tmp.dir, 'alice.pem'));
  writePublicKey(join(tmp.dir, 'inner.pem'));
  expectOk(sws(['inner', 'init', '--data', IN]));
  // A grant made by hand, which the file does not list.
  expectOk(sws(['acl', 'grant', 'carol', '/tmp/**', '--data', IN]));
});

test('inner start --config applies the file before listening; a hand-made entry is kept without --prune and removed with it', async () => {
  const cfg = file('inner.yaml', INNER);
  const inner = await startSidecar(['inner', 'start', '--data', IN, '--config', cfg], ENV);
  try {
    // The running inner's data dir holds the grant from the file (and carol's, kept).
    assert.deepEqual(rules(IN), [
      ['alice', null, '/docs/**', ['GET', 'HEAD']],
      ['carol', null, '/tmp/**', null],
    ]);
    const check = sws(['acl', 'check', 'alice', 'GET', 'http://wiki.intranet.example/docs/a', '--data', IN]);
    assert.equal(check.code, 0, check.stderr);
  } finally {
    assert.equal(await inner.stop(), 0);
  }

  const pruned = await startSidecar(['inner', 'start', '--data', IN, '--config', cfg, '--prune'], ENV);
  try {
    assert.deepEqual(rules(IN), [['alice', null, '/docs/**', ['GET', 'HEAD']]]);
  } finally {
    await pruned.stop();
  }
});

test('outer start --init --config creates the data dir and its inner servers from the file alone', async () => {
  const dir = join(tmp.dir, 'fresh-outer');
  const cfg = file('outer.yaml', 'version: 1\nrole: outer\nservers:\n  - name: hq\n    url: http://127.0.0.1:8480\n    publicKeyFile: inner.pem\n    hosts: [wiki.intranet.example]\n');
  const outer = await startSidecar(['outer', 'start', '--data', dir, '--init', '--config', cfg], ENV);
  try {
    const servers = JSON.parse(expectOk(sws(['server', 'list', '--json', '--data', dir])).stdout) as { name: string; hosts: string[] }[];
    assert.deepEqual(servers.map((s) => [s.name, s.hosts]), [['hq', ['wiki.intranet.example']]]);
  } finally {
    await outer.stop();
  }
});

/** `sws ARGS` in tmp.dir; a sidecar that starts after all is killed after 120 s (code null; start-up under load can take tens of seconds), so a regression fails instead of hanging. */
function runBounded(args: readonly string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [SWS, ...args], { env: baseEnv(), cwd: tmp.dir, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    const timer = setTimeout(() => p.kill('SIGKILL'), 120_000);
    p.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
    p.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    p.on('error', reject);
    p.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

test('a bad config, a config for the other role or one the data dir cannot take: exit 2 naming file and line, nothing started, nothing changed', async () => {
  expectOk(sws(['client', 'add', 'Dave', '--key', join(tmp.dir, 'alice.pem'), '--data', IN]));
  const before = snapshot(IN);
  const lineOf = (text: string, needle: string) => text.split('\n').findIndex((l) => l.includes(needle)) + 1;
  const typo = INNER.replace('    methods: [GET, HEAD]', '    methods: [GET, HEAD]\n    hots: wiki.intranet.example');
  const clash = INNER.replace('clients:\n', 'clients:\n  - user: dave\n    publicKeyFile: alice.pem\n');
  const cases: [string, string[], RegExp][] = [
    ['unknown field', ['--config', file('typo.yaml', typo)], new RegExp(`typo\\.yaml line ${lineOf(typo, 'hots:')}, acl\\[0\\]\\.hots: unknown field hots`)],
    ['bad value', ['--config', file('bad-pattern.yaml', INNER.replace('/docs/**', 'docs'))], /bad-pattern\.yaml line 11, acl\[0\]\.pattern: the pattern must be an absolute path/],
    ['other role', ['--config', file('outer-role.yaml', 'version: 1\nrole: outer\n')], /--config: .*outer-role\.yaml is an outer config \(role: outer\); sws inner start needs role: inner/],
    ['missing file', ['--config', join(tmp.dir, 'nope.yaml')], /--config: cannot read .*nope\.yaml: no such file/],
    ['clash', ['--config', file('clash.yaml', clash)], /nothing was applied/],
    ['--prune alone', ['--prune'], /--prune: --prune applies to a --config file/],
  ];
  const results = await Promise.all(cases.map(([, args]) => runBounded(['inner', 'start', '--listen', '127.0.0.1:0', '--data', IN, ...args])));
  results.forEach((r, i) => {
    const [name, , re] = cases[i]!;
    assert.equal(r.code, 2, `${name}: ${r.stderr}`);
    assert.match(r.stderr, re, name);
    assert.doesNotMatch(r.stdout, /listening/, `${name}: the sidecar started`);
  });
  assert.deepEqual(snapshot(IN), before, 'a rejected config changed the data dir');

  // A missing data dir without --init is not created.
  const dir = join(tmp.dir, 'never');
  expectFail(sws(['inner', 'start', '--listen', '127.0.0.1:0', '--data', dir, '--config', file('good.yaml', INNER)]), 1, 'SWS_ERR_NOT_INITIALIZED');
  assert.equal(existsSync(join(dir, 'sws.db')), false);
});

/**
 * `sws demo` through the real binary: `--check` runs the scripted round trip through real
 * sidecars and exits 0; without it the demo serves until SIGTERM or SIGINT, then stops cleanly
 * and removes its temporary data dirs. Readiness is the demo's own output, never a sleep.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { existsSync } from 'node:fs';
import { baseEnv, ROOT, SWS } from './helpers.ts';
import { DEMO_HOST, DEMO_USERS, viaProxy } from '../../bin/demo.ts';

interface Running {
  readonly child: ChildProcessWithoutNullStreams;
  stdout: string;
  stderr: string;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

function start(args: string[]): Running {
  const child = spawn(process.execPath, [SWS, ...args], { env: baseEnv(), cwd: ROOT });
  const r: Running = {
    child,
    stdout: '',
    stderr: '',
    exited: new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal }))),
  };
  child.stdout.setEncoding('utf8').on('data', (c: string) => (r.stdout += c));
  child.stderr.setEncoding('utf8').on('data', (c: string) => (r.stderr += c));
  child.stdin.end();
  return r;
}

/** Resolves once stdout matches `re`; rejects if the process exits first or after `ms`. */
function waitFor(r: Running, re: RegExp, ms = 60_000): Promise<RegExpMatchArray> {
  return new Promise((resolve, reject) => {
    const check = () => {
      const m = re.exec(r.stdout);
      if (m) {
        cleanup();
        resolve(m);
      }
    };
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`no ${re} within ${ms} ms\nstdout: ${r.stdout}\nstderr: ${r.stderr}`));
    }, ms);
    const onExit = () => {
      check();
      cleanup();
      reject(new Error(`exited before ${re}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`));
    };
    const cleanup = () => {
      clearTimeout(timer);
      r.child.stdout.off('data', check);
      r.child.off('exit', onExit);
    };
    r.child.stdout.on('data', check);
    r.child.on('exit', onExit);
    check();
  });
}

async function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([p, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}

test('sws demo --check: every scripted step works through real sidecars, exit 0', async () => {
  const r = start(['demo', '--check']);
  try {
    const { code, signal } = await within(r.exited, 120_000, 'demo --check');
    assert.equal(signal, null);
    assert.equal(code, 0, `stdout: ${r.stdout}\nstderr: ${r.stderr}`);
  } finally {
    if (r.child.exitCode === null) r.child.kill('SIGKILL');
  }
  const lines = r.stdout.trimEnd().split('\n');
  assert.match(lines[0]!, /^sws demo --check: web server http:\/\/127\.0\.0\.1:\d+, inner :\d+, outer \(proxy\) http:\/\/127\.0\.0\.1:\d+$/);
  for (const step of [
    'alice reads /docs/welcome.html through the outer and inner',
    'the web server sees the authenticated user in X-Forwarded-User',
    'bob is denied /admin/secret.html by the inner ACL (403)',
    'no credentials: 407 with a Basic challenge',
    'a host no inner fronts: 502, nothing sent in clear',
  ]) {
    assert.ok(lines.some((l) => l.startsWith(`ok    ${step}  — `)), `step "${step}" ok:\n${r.stdout}`);
  }
  assert.ok(!lines.some((l) => l.startsWith('FAIL')), r.stdout);
  assert.match(lines.at(-1)!, /^all \d+ steps worked$/);
  assert.equal(r.stdout.includes(DEMO_USERS.alice.password), false, '--check does not print passwords');
});

for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  test(`sws demo: serves, prints the curl commands, and on ${signal} stops cleanly and removes its data dirs`, async () => {
    const r = start(['demo']);
    try {
      await waitFor(r, /Press Ctrl-C to stop; the temporary data dirs are removed\.\n/);
      const proxy = /outer sidecar \(a proxy\) {2}(http:\/\/127\.0\.0\.1:\d+)/.exec(r.stdout)?.[1];
      const dir = /data dirs {16}(\S+)/.exec(r.stdout)?.[1];
      assert.ok(proxy && dir, r.stdout);
      assert.ok(r.stdout.includes(`curl -x ${proxy} -U alice:${DEMO_USERS.alice.password} http://${DEMO_HOST}/docs/welcome.html`), r.stdout);
      assert.ok(r.stdout.includes(`curl -x ${proxy} -U bob:${DEMO_USERS.bob.password} http://${DEMO_HOST}/admin/secret.html`), r.stdout);
      assert.ok(existsSync(dir), 'data dirs exist while running');
      // what the printed commands do, done here without curl
      const ok = await viaProxy(proxy, `http://${DEMO_HOST}/docs/welcome.html`, { user: 'alice', password: DEMO_USERS.alice.password });
      assert.equal(ok.status, 200);
      assert.match(ok.body, /Welcome to the intranet/);
      assert.equal((await viaProxy(proxy, `http://${DEMO_HOST}/admin/secret.html`, { user: 'bob', password: DEMO_USERS.bob.password })).status, 403);

      r.child.kill(signal);
      const { code, signal: sig } = await within(r.exited, 15_000, `exit after ${signal}`);
      assert.deepEqual({ code, sig }, { code: 0, sig: null }, `stderr: ${r.stderr}`);
      assert.equal(existsSync(dir), false, 'temporary data dirs removed');
      await assert.rejects(viaProxy(proxy, `http://${DEMO_HOST}/docs/welcome.html`), /ECONNREFUSED/, 'nothing listens any more');
      assert.equal(r.stderr.trim(), '', 'no error or warning on stop');
    } finally {
      if (r.child.exitCode === null && r.child.signalCode === null) r.child.kill('SIGKILL');
    }
  });
}

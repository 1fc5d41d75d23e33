/**
 * ACL and store benchmark (issue 3): `npx tsx bench/acl.ts`.
 * 1. One user with 10 / 1,000 / 100,000 rules: compile time, then the cost of one decision
 *    (aclEngine.check, warm cache) for allowed and denied paths of depth 2–8, and of
 *    normalizeTarget. The target is ≤ 20 µs per decision at 100k rules.
 * 2. An outer store with 100,000 users: openStore time and user lookup time.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { aclEngine, initStore, normalizeTarget, openStore, outerUsers, type NormalizedPath } from '../store/index.ts';

const root = mkdtempSync(join(tmpdir(), 'sws-bench-'));
process.on('exit', () => rmSync(root, { recursive: true, force: true }));

function perOp(fn: () => void, minMs = 300): number {
  for (let i = 0; i < 1000; i++) fn();
  let n = 0;
  const t0 = performance.now();
  let t = t0;
  while (t - t0 < minMs) {
    for (let i = 0; i < 1000; i++) fn();
    n += 1000;
    t = performance.now();
  }
  return ((t - t0) * 1000) / n; // µs
}

const fmt = (us: number) => (us < 10 ? us.toFixed(2) : us.toFixed(1)).padStart(7) + ' µs';

/**
 * Rule i lives in directory d⌊i/100⌋ mod 1000: at 100k rules, 1,000 directories of 100 rules
 * each (70 literal `/d/pN/**`, 10 `/d/*\/fN.txt`, 10 glob `/d/x*N/**`, 10 host-specific).
 * Literal edges cost one hash lookup whatever their number; sibling globs are tested one by
 * one (~0.1 µs each), so a directory with 10 glob siblings is what `glob(d4)` measures.
 */
const dirOf = (i: number) => `d${Math.floor(i / 100) % 1000}`;

async function aclBench(): Promise<void> {
  console.log('ACL decision, one user (aclEngine.check, warm cache; normalize = normalizeTarget)');
  console.log('rules     compile   allow(d3)  allow(d8)  deny(d2)   deny(d8)   glob(d4)  normalize(d8)');
  for (const n of [10, 1_000, 100_000]) {
    const { store } = await initStore(join(root, `acl-${n}`), 'inner', { env: { SWS_MASTER_KEY: randomBytes(32).toString('base64') } });
    const ins = store.db.prepare("INSERT INTO acl_rules (user, host, pattern, methods, created_at) VALUES ('alice', ?, ?, ?, 'bench')");
    store.db.transaction(() => {
      for (let i = 0; i < n; i++) {
        const dir = dirOf(i);
        switch (i % 10) {
          case 7:
            ins.run('', `/${dir}/*/f${i}.txt`, 'GET,HEAD');
            break;
          case 8:
            ins.run('', `/${dir}/x*${i}/**`, '');
            break;
          case 9:
            ins.run(`h${i % 10}.example`, `/${dir}/h${i}/**`, '');
            break;
          default:
            ins.run('', `/${dir}/p${i}/**`, i % 2 ? 'GET' : '');
        }
      }
    })();
    const engine = aclEngine(store);
    const p = (s: string): NormalizedPath => normalizeTarget(s);
    const last = n - 10; // an existing literal rule (i % 10 == 0)
    const allow3 = p(`/${dirOf(last)}/p${last}/a`);
    const allow8 = p(`/${dirOf(last)}/p${last}/a/b/c/d/e/f.html`);
    const deny2 = p('/nothing/here');
    const deny8 = p(`/${dirOf(last)}/q/a/b/c/d/e/f`);
    const globI = n - 2; // an existing `x*N/**` rule (i % 10 == 8)
    const glob4 = p(`/${dirOf(globI)}/xyz${globI}/a/b`);
    const t0 = performance.now();
    engine.check('alice', 'GET', 'intranet.example', allow3);
    const compileMs = performance.now() - t0;
    for (const [path, want] of [
      [allow3, true],
      [allow8, true],
      [deny2, false],
      [deny8, false],
      [glob4, true],
    ] as const) {
      if (engine.check('alice', 'GET', 'intranet.example', path).allow !== want) throw new Error(`unexpected decision for ${path.path}`);
    }
    const row = [
      String(n).padEnd(8),
      `${compileMs.toFixed(1).padStart(7)} ms`,
      fmt(perOp(() => engine.check('alice', 'GET', 'intranet.example', allow3))),
      fmt(perOp(() => engine.check('alice', 'GET', 'intranet.example', allow8))),
      fmt(perOp(() => engine.check('alice', 'GET', 'intranet.example', deny2))),
      fmt(perOp(() => engine.check('alice', 'GET', 'intranet.example', deny8))),
      fmt(perOp(() => engine.check('alice', 'GET', 'intranet.example', glob4))),
      fmt(perOp(() => normalizeTarget('/d1/p1/a%20b/c/d/e/f/g.html?x=1'))),
    ];
    console.log(row.join('  '));
    store.close();
  }
}

async function usersBench(): Promise<void> {
  const n = 100_000;
  const dir = join(root, 'users');
  const env = { SWS_MASTER_KEY: randomBytes(32).toString('base64') };
  const { store } = await initStore(dir, 'outer', { env });
  // Rows shaped like real ones (a real 2048-bit PEM, a sealed-size blob, a PHC hash); made
  // directly in SQL because 100k RSA key generations would take hours, not because they differ.
  await outerUsers(store).add('template', 'bench password', { keyBits: 2048 });
  const t = store.db.prepare("SELECT * FROM outer_users WHERE name = 'template'").get() as { password_hash: string; public_key_pem: string; key_id: string; private_key_sealed: Buffer };
  const ins = store.db.prepare('INSERT INTO outer_users (name, password_hash, public_key_pem, key_id, private_key_sealed, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)');
  const t0 = performance.now();
  store.db.transaction(() => {
    for (let i = 0; i < n; i++) ins.run(`user${i}`, t.password_hash, t.public_key_pem, randomBytes(32).toString('hex'), t.private_key_sealed, 'bench', 'bench');
  })();
  const fillMs = performance.now() - t0;
  store.close();
  const opens: number[] = [];
  for (let k = 0; k < 20; k++) {
    const s0 = performance.now();
    const s = openStore(dir, { expectRole: 'outer', env });
    const first = outerUsers(s).get(`user${k * 4999}`);
    opens.push(performance.now() - s0);
    if (!first) throw new Error('lookup failed');
    s.close();
  }
  opens.sort((a, b) => a - b);
  const s = openStore(dir, { expectRole: 'outer', env, readonly: true });
  const users = outerUsers(s);
  let i = 0;
  const lookup = perOp(() => {
    if (!users.get(`user${(i = (i + 7919) % n)}`)) throw new Error('missing');
  });
  const miss = perOp(() => users.get('nobody'));
  console.log(`\nOuter store with ${users.count().toLocaleString('en')} users (insert: ${fillMs.toFixed(0)} ms)`);
  console.log(`openStore + first lookup: median ${opens[10]!.toFixed(2)} ms, min ${opens[0]!.toFixed(2)} ms`);
  console.log(`user lookup (hit):  ${fmt(lookup)}`);
  console.log(`user lookup (miss): ${fmt(miss)}`);
  s.close();
}

await aclBench();
await usersBench();

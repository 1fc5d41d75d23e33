/**
 * Where each sidecar's CPU goes, native code and kernel included: what `--cpu-prof` cannot
 * show (it sees JavaScript and names one native call at a time; OpenSSL, malloc, V8's own work
 * and the kernel are all "(program)" or the name of the call that entered them, and helper
 * threads are not sampled at all).
 *
 *   npx tsx bench/perfrecord.ts [--phase small|bulk] [--rekey destination] [--seconds 6]
 *                               [--connections 16] [--warm 8] [--bulk 4] [--bulk-warm 4] [--top 15] [--out DIR]
 *
 * Starts the chain (both caches off, the container image's node flags plus
 * --perf-basic-prof-only-functions so that perf can name JIT-compiled functions), warms it up
 * (`--warm` seconds of small requests, or `--bulk-warm` 64 MiB transfers each way: a fresh
 * chain's JIT is still at work in its first few), then runs
 * `perf record -F 999 -g` on both sidecars for the load window: small requests (wrk) or
 * `--bulk` 64 MiB downloads and uploads (curl). Prints, per sidecar and for its main thread and
 * its other threads (V8 helpers, the libuv pool) apart: the share of samples by category (RSA
 * bignum, AES-GCM, OpenSSL's other work, SQLite, malloc, V8 builtins, JIT code, GC, kernel…)
 * and the main thread's top symbols. perf comes from Debian's linux-perf (installed when
 * missing); the samples are cpu-clock, which this VM supports where hardware counters are not.
 * The perf data and the perf-PID.map files are removed at the end unless `--out` names a folder.
 */
import { readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { PASSWORDS, startChain } from '../test/helpers/e2e.ts';
import { ensureTools, onCleanup, optionValue, run, runBenchmark, startNodeScript, startProcess, tempDir } from './harness.ts';
import { download, probe, upload, wrk, type Target } from './load.ts';
import { NODE_FLAGS } from './setups.ts';

const opt = (name: string, dflt: string) => optionValue(process.argv, name, dflt);
const PHASE = opt('phase', 'small');
const REKEY = opt('rekey', 'destination');
const SECONDS = Number(opt('seconds', '6'));
const CONNS = Number(opt('connections', '16'));
const WARM = Number(opt('warm', '8'));
const BULK_N = Number(opt('bulk', '4'));
const BULK_WARM = Number(opt('bulk-warm', '4'));
const TOP = Number(opt('top', '15'));
const OUT = opt('out', '');
const HOST = 'intranet.example';
const BULK = 64 * 1048576;

/** A sample's category, from its symbol and the object it is in. First match wins. */
const CATEGORIES: readonly [string, (sym: string, dso: string, kernel: boolean) => boolean][] = [
  ['kernel', (_s, _d, k) => k],
  ['RSA bignum (OpenSSL)', (s) => /^(bn_|BN_|__bn_|rsaz_|ossl_rsaz|ossl_extract_multiplier|ossl_bn|RSA_|rsa_|ossl_rsa)/.test(s)],
  ['AES-GCM (OpenSSL)', (s) => /aesni|gcm|ghash|aes_/i.test(s)],
  ['SHA-2 / HMAC (OpenSSL)', (s) => /^(sha256|sha512|SHA256|SHA512|HMAC|hmac_|ossl_sha)/.test(s)],
  ['OpenSSL, other (fetch, name maps, locks, contexts)', (s) => /^(OPENSSL_|ossl_|EVP_|evp_|OSSL_|ERR_|CRYPTO_|ENGINE_|do_name|OBJ_|ASN1_|asn1_|X509|PEM_|d2i_|i2d_|BIO_|RAND_|rand_|drbg|int_|CONF_|OPENSSL_sk|EC_|ecp_|DH_)/.test(s)],
  ['SQLite', (s, d) => d.startsWith('better_sqlite3') || /^sqlite3/.test(s)],
  ['malloc / memcpy (libc)', (s) => /malloc|free|_int_|unlink_chunk|consolidate|memmove|memset|memcpy|calloc|realloc|cfree|tcache/.test(s)],
  ['libc, other', (_s, d) => d.startsWith('libc.so')],
  ['JavaScript (JIT code)', (s, d) => s.startsWith('JS:') || d.startsWith('[JIT]')],
  ['V8 builtins (ICs, promises, typed arrays)', (s) => s.startsWith('Builtins_')],
  ['V8 garbage collector', (s) => /Scaveng|Heap::|MarkCompact|Marking|Sweep|Evacuat|ArrayBufferSweeper|ConcurrentMarking|GCTracer|MemoryAllocator/.test(s)],
  ['V8 compiler (TurboFan, Maglev, Sparkplug)', (s) => /compiler::|maglev::|baseline::|Compiler::/.test(s)],
  ['V8 runtime, other', (s) => s.startsWith('v8::')],
  ['Node / libuv', (s) => /^(node::|uv_|uv__|llhttp)/.test(s)],
];

function categoryOf(sym: string, dso: string, kernel: boolean): string {
  for (const [name, test] of CATEGORIES) if (test(sym, dso, kernel)) return name;
  return `other (${dso})`;
}

interface Tally {
  samples: number;
  byCategory: Map<string, number>;
  bySymbol: Map<string, number>;
}

const newTally = (): Tally => ({ samples: 0, byCategory: new Map(), bySymbol: new Map() });
const add = (m: Map<string, number>, k: string, v: number) => m.set(k, (m.get(k) ?? 0) + v);

/** Thread IDs of a process, read while it runs (its helper threads are not children). */
function threadsOf(pid: number): number[] {
  try {
    return readdirSync(`/proc/${pid}/task`).map(Number);
  } catch {
    return [];
  }
}

/** `perf report --sort pid,dso,sym` lines (its "pid" is the thread ID): "  0.37%  22526:node  node  [.] symbol". */
const LINE = /^\s+([\d.]+)%\s+(\d+):\S+\s+(.+?)\s+\[(.)\]\s+(.*)$/;

async function main(): Promise<void> {
  if (PHASE !== 'small' && PHASE !== 'bulk') throw new Error('--phase is small or bulk');
  ensureTools({ perf: 'linux-perf', wrk: 'wrk', curl: 'curl' });
  const check = await run('perf', ['record', '-F', '99', '-o', '/dev/null', '--', 'true']);
  if (check.code !== 0) throw new Error(`perf cannot sample here: ${check.stderr.trim()}`);
  const work = tempDir('sws-perfrecord-');
  const out = OUT || work;
  const origin = await startNodeScript('origin.ts', []);
  const originUrl = `http://127.0.0.1:${origin.info.port as number}`;
  const upFile = join(work, 'body-64m');
  await run('truncate', ['-s', String(BULK), upFile]);
  const chain = await startChain({
    originUrl,
    host: HOST,
    rekey: REKEY,
    nodeArgs: [...NODE_FLAGS, '--perf-basic-prof-only-functions'],
    outerArgs: ['--no-cache'],
    innerArgs: ['--no-cache'],
  });
  const pids = { outer: chain.outer.child.pid!, inner: chain.inner.child.pid! };
  onCleanup(async () => {
    await chain.stop();
    for (const pid of Object.values(pids)) rmSync(`/tmp/perf-${pid}.map`, { force: true });
  });
  for (const p of [chain.outer, chain.inner]) p.child.stdout?.removeAllListeners('data').resume();
  const target: Target = { connectUrl: chain.proxy, smallPath: `http://${HOST}/1k`, proxyUser: `alice:${PASSWORDS.alice}`, url: (p) => `http://${HOST}${p}` };
  await probe(target);
  if (PHASE === 'small') await wrk(work, target, CONNS, WARM);
  else {
    for (let i = 0; i < BULK_WARM; i++) {
      await download(target, BULK);
      await upload(target, upFile, BULK);
    }
  }

  const data = join(out, `perf-${PHASE}.data`);
  const perf = startProcess('perf', ['record', '-F', '999', '-g', '-p', `${pids.outer},${pids.inner}`, '-o', data], { stdio: ['ignore', 'ignore', 'pipe'] });
  // perf prints nothing when it is attached; a short wait lets it open its buffers before the load starts.
  await new Promise((r) => setTimeout(r, 500));
  const threads = { outer: threadsOf(pids.outer), inner: threadsOf(pids.inner) };
  let load: string;
  if (PHASE === 'small') {
    const w = await wrk(work, target, CONNS, SECONDS);
    load = `${w.rps.toFixed(0)} req/s at ${CONNS} connections, p99 ${w.p99Ms.toFixed(1)} ms (perf attached)`;
  } else {
    const mbps: number[] = [];
    for (let i = 0; i < BULK_N; i++) mbps.push((await download(target, BULK)).mbps);
    for (let i = 0; i < BULK_N; i++) mbps.push((await upload(target, upFile, BULK)).mbps);
    load = `${BULK_N} × 64 MiB down, then up: ${mbps.map((x) => x.toFixed(0)).join(', ')} MB/s (perf attached)`;
  }
  for (const role of ['outer', 'inner'] as const) threads[role] = [...new Set([...threads[role], ...threadsOf(pids[role])])];
  if (perf.child.exitCode !== null) throw new Error(`perf record stopped early: ${perf.output()}`);
  const perfDone = new Promise((r) => perf.child.once('exit', r));
  perf.child.kill('SIGINT');
  await perfDone;

  const report = await run('perf', ['report', '-i', data, '--stdio', '--no-children', '--sort', 'pid,dso,sym', '-g', 'none', '--percent-limit', '0'], { timeoutMs: 300_000 });
  if (report.code !== 0) throw new Error(`perf report failed: ${report.stderr}`);
  const tallies = new Map<string, Tally>();
  const tallyOf = (key: string) => tallies.get(key) ?? tallies.set(key, newTally()).get(key)!;
  for (const line of report.stdout.split('\n')) {
    const m = LINE.exec(line);
    if (!m) continue;
    const [, pct, tidText, dso, kind, sym] = m;
    const tid = Number(tidText);
    const role = threads.outer.includes(tid) ? 'outer' : threads.inner.includes(tid) ? 'inner' : undefined;
    if (!role) continue;
    const t = tallyOf(`${role} ${tid === pids[role] ? 'main thread' : 'other threads'}`);
    const share = Number(pct);
    t.samples += share;
    add(t.byCategory, categoryOf(sym!, dso!, kind === 'k'), share);
    add(t.bySymbol, sym!.length > 110 ? `${sym!.slice(0, 107)}…` : sym!, share);
  }

  console.log(`perf record, rekey ${REKEY}, phase ${PHASE}: ${load}`);
  console.log('shares are of all samples of both sidecars; a category line is also given as a share of its thread group\n');
  for (const [key, t] of [...tallies].sort(([a], [b]) => a.localeCompare(b))) {
    console.log(`=== ${key}: ${t.samples.toFixed(1)} % of all samples`);
    for (const [cat, v] of [...t.byCategory].sort((a, b) => b[1] - a[1])) {
      if (v / t.samples < 0.005) continue;
      console.log(`  ${((100 * v) / t.samples).toFixed(1).padStart(5)} %  ${cat}`);
    }
    if (key.endsWith('main thread')) {
      console.log('  -- top symbols (share of this thread)');
      for (const [sym, v] of [...t.bySymbol].sort((a, b) => b[1] - a[1]).slice(0, TOP)) console.log(`  ${((100 * v) / t.samples).toFixed(1).padStart(5)} %  ${sym}`);
    }
    console.log('');
  }
  if (OUT) console.log(`perf data kept in ${data} (perf report -i ${data}); the JIT names are in /tmp/perf-PID.map only while this runs`);
  await origin.proc.stop();
}

await runBenchmark(main);

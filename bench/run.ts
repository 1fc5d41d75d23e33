/**
 * npm run bench [-- --quick] [-- --only NAME,...] [-- --no-write]
 *
 * sws against what operators would run instead, in one run on one machine (issues 4 and 7):
 * the origin direct; a minimal Node two-hop forwarder (node:http + undici, no crypto);
 * nginx → nginx with mutual TLS; a stunnel pair (client mode → server mode, client
 * certificates); the sws chain under the `destination`, `count:100` and `request` rekey
 * policies. For each: requests/s and p50/p99 for 1 KiB responses at 16 and 64 connections
 * (wrk), MB/s for a 64 MiB download and upload (curl), peak RSS (VmHWM) of each proxy process
 * and its growth with body size; key exchanges/s beside the raw RSA-2048 rate measured in the
 * same run. Every figure is the median of ≥ 3 runs with its spread. Loopback only; every
 * process started is stopped at the end, on error and on Ctrl-C. Writes docs/PERFORMANCE.md.
 *
 * Never part of `npm test`.
 */
import { spawnSync } from 'node:child_process';
import { constants, KeyObject, privateDecrypt, sign as nodeCryptoSign } from 'node:crypto';
import { closeSync, ftruncateSync, openSync, readFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { join } from 'node:path';
import { BENCH_DIR, ensureTools, fmtNum, memOf, runBenchmark, sleep, startNodeScript, stat, tempDir, type Stat } from './harness.ts';
import { download, probe, upload, wrk, type Target } from './load.ts';
import { makeCerts } from './peers.ts';
import { render, writeReport, type MemResult, type Report, type RsaResult, type SetupResult, type SmallResult } from './report.ts';
import { directSetup, forwarderSetup, NODE_FLAGS, nginxSetup, stunnelSetup, swsSetup, type Running, type Setup } from './setups.ts';

const argv = process.argv.slice(2);
const quick = argv.includes('--quick');
const onlyArg = argv.indexOf('--only');
const only = onlyArg >= 0 ? (argv[onlyArg + 1] ?? '').split(',').filter(Boolean) : [];
const noWrite = argv.includes('--no-write');

// warm: seconds of load per setup before the first counted run. A fresh sws chain reaches its
// steady rate after ~5-6 s of load, the forwarder after ~3 (`npx tsx bench/warmup.ts`): with 1 s
// the quick runs measured sws half-compiled (0.17 of the forwarder at 16 connections, 0.35 warm).
const CFG = quick
  ? { runs: 3, seconds: 2, warm: 6, bulkRuns: 3, bulkWarmMax: 6, bigBody: 256 * 1048576, rsaSeconds: 0.5 }
  : { runs: 5, seconds: 8, warm: 8, bulkRuns: 5, bulkWarmMax: 8, bigBody: 1024 * 1048576, rsaSeconds: 2 };
/** Bulk warm-up has settled when a transfer's rate is within this fraction of the one before, both ways. */
const BULK_SETTLED = 0.1;
const CONNS = [16, 64] as const;
const BULK = 64 * 1048576;
const POLICIES = ['destination', 'count:100', 'request'];

const log = (s: string) => console.log(`[${new Date().toISOString().slice(11, 19)}] ${s}`);

// ------------------------------------------------------------------ raw RSA

async function rsaRate(op: () => Promise<unknown>, inFlight: number, seconds: number): Promise<number> {
  const end = performance.now() + seconds * 1000;
  let n = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: inFlight }, async () => {
      while (performance.now() < end) {
        await op();
        n++;
      }
    }),
  );
  return n / ((performance.now() - t0) / 1000);
}

/** Raw RSA-2048 private operations in this process; one sample per call of `sample()`, taken between rounds. */
async function rsaMeter(): Promise<{ sample(): Promise<void>; result(): RsaResult }> {
  const subtle = globalThis.crypto.subtle;
  const pss = await subtle.generateKey({ name: 'RSA-PSS', modulusLength: 2048, publicExponent: new Uint8Array([1, 0, 1]), hash: 'SHA-256' }, false, ['sign', 'verify']);
  const oaep = await subtle.generateKey({ name: 'RSA-OAEP', modulusLength: 2048, publicExponent: new Uint8Array([1, 0, 1]), hash: 'SHA-256' }, false, ['encrypt', 'decrypt']);
  const data = new Uint8Array(256).fill(7);
  const label = new Uint8Array(16).fill(1);
  const wrapped = await subtle.encrypt({ name: 'RSA-OAEP', label }, oaep.publicKey, new Uint8Array(32));
  const webSign = () => subtle.sign({ name: 'RSA-PSS', saltLength: 32 }, pss.privateKey, data);
  const webDecrypt = () => subtle.decrypt({ name: 'RSA-OAEP', label }, oaep.privateKey, wrapped);
  // The sidecars use node:crypto (sidecar-shared/node-rsa.ts): measure it too, and take the faster of the two.
  const pssKey = KeyObject.from(pss.privateKey);
  const oaepKey = KeyObject.from(oaep.privateKey);
  const nodeSign = () =>
    new Promise<Buffer>((resolve, reject) => nodeCryptoSign('sha256', data, { key: pssKey, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 }, (e, sig) => (e ? reject(e) : resolve(sig))));
  const nodeDecrypt = async () => privateDecrypt({ key: oaepKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256', oaepLabel: label }, new Uint8Array(wrapped));
  const best = async (a: () => Promise<unknown>, b: () => Promise<unknown>, inFlight: number) => Math.max(await rsaRate(a, inFlight, CFG.rsaSeconds), await rsaRate(b, inFlight, CFG.rsaSeconds));
  const inFlight = Math.max(4, cpus().length * 2);
  await rsaRate(webSign, inFlight, 0.3);
  const xs = { seqSign: [] as number[], seqDecrypt: [] as number[], parSign: [] as number[], parDecrypt: [] as number[] };
  return {
    async sample() {
      xs.seqSign.push(await best(webSign, nodeSign, 1));
      xs.seqDecrypt.push(await best(webDecrypt, nodeDecrypt, 1));
      xs.parSign.push(await best(webSign, nodeSign, inFlight));
      xs.parDecrypt.push(await best(webDecrypt, nodeDecrypt, inFlight));
    },
    result: () => ({ seqSign: stat(xs.seqSign), seqDecrypt: stat(xs.seqDecrypt), parSign: stat(xs.parSign), parDecrypt: stat(xs.parDecrypt), inFlight }),
  };
}

// ------------------------------------------------------------------ the phases

function hwm(running: Running): Map<string, number> {
  return new Map(running.procs().map((p) => [p.label, memOf(p.pid).hwm]));
}

interface Live {
  readonly setup: Setup;
  readonly running: Running;
  readonly result: SetupResult;
  /** Bulk and memory phases apply (quick mode measures them for `destination` only). */
  readonly heavy: boolean;
  readonly afterSmall: Map<string, number>;
  readonly afterBig: Map<string, number>;
  readonly raw: Map<number, { rps: number[]; p50: number[]; p99: number[]; ex: number[]; errors: number }>;
  readonly down: number[];
  readonly up: number[];
  /** Uncounted 64 MiB transfers each way before the counted bulk rounds (warmBulk). */
  bulkWarm: number;
}

/**
 * Uncounted 64 MiB transfers, a download then an upload, until both rates come within
 * BULK_SETTLED of the previous pair (at least two pairs, at most CFG.bulkWarmMax): the counted
 * rounds then measure the steady state a long-running proxy serves. Returns the pairs made.
 */
async function warmBulk(target: Target, uploadFile: string): Promise<number> {
  const settled = (a: number, b: number) => Math.abs(a - b) <= BULK_SETTLED * Math.max(a, b);
  let before: { down: number; up: number } | undefined;
  for (let n = 1; n <= CFG.bulkWarmMax; n++) {
    const now = { down: (await download(target, BULK)).mbps, up: (await upload(target, uploadFile, BULK)).mbps };
    if (before && settled(now.down, before.down) && settled(now.up, before.up)) return n;
    before = now;
  }
  return CFG.bulkWarmMax;
}

/** Starts a setup, checks it answers, then memory against body size on its fresh processes. */
async function bring(setup: Setup, files: { big: string; small: string }): Promise<Live> {
  log(`${setup.name}: starting`);
  const running = await setup.start();
  const live: Live = {
    setup,
    running,
    result: { setup, small: new Map(), mem: [] },
    heavy: !(quick && setup.kind === 'sws' && setup.policy !== 'destination'),
    afterSmall: new Map(),
    afterBig: new Map(),
    raw: new Map(CONNS.map((c) => [c, { rps: [], p50: [], p99: [], ex: [], errors: 0 }])),
    down: [],
    bulkWarm: 0,
    up: [],
  };
  const t = running.target;
  await probe(t);
  if (setup.kind !== 'direct' && live.heavy) {
    await download(t, 1048576);
    await upload(t, files.small, 1048576);
    await sleep(200);
    for (const [k, v] of hwm(running)) live.afterSmall.set(k, v);
    log(`${setup.name}: ${CFG.bigBody / 1048576} MiB each way (memory against body size)`);
    await download(t, CFG.bigBody);
    await upload(t, files.big, CFG.bigBody);
    await sleep(200);
    for (const [k, v] of hwm(running)) live.afterBig.set(k, v);
  }
  return live;
}

async function smallRun(dir: string, l: Live, c: number): Promise<void> {
  const raw = l.raw.get(c)!;
  const e0 = l.running.exchanges ? await l.running.exchanges() : 0;
  const w = await wrk(dir, l.running.target, c, CFG.seconds);
  const e1 = l.running.exchanges ? await l.running.exchanges() : 0;
  raw.rps.push(w.rps);
  raw.p50.push(w.p50Ms);
  raw.p99.push(w.p99Ms);
  raw.errors += w.errors;
  if (l.running.exchanges) raw.ex.push((e1 - e0) / (w.requests / w.rps));
}

async function finish(l: Live): Promise<void> {
  for (const c of CONNS) {
    const raw = l.raw.get(c)!;
    if (!raw.rps.length) continue;
    const s: SmallResult = { rps: stat(raw.rps), p50: stat(raw.p50), p99: stat(raw.p99), errors: raw.errors, ...(raw.ex.length ? { exchangesPerSec: stat(raw.ex) } : {}) };
    l.result.small.set(c, s);
  }
  if (l.down.length) l.result.down = stat(l.down);
  if (l.up.length) l.result.up = stat(l.up);
  if (l.running.sessions) l.result.sessions = await l.running.sessions();
  const peak = hwm(l.running);
  l.result.mem = l.running.procs().map((p) => ({ label: p.label, afterSmallBody: l.afterSmall.get(p.label) ?? 0, afterBigBody: l.afterBig.get(p.label) ?? 0, peak: peak.get(p.label) ?? 0 }) satisfies MemResult);
}

/** Foreign CPU load: the share of CPU time busy over `ms` while the benchmark itself is idle. */
async function backgroundBusy(ms = 1000): Promise<number> {
  const sample = () => {
    const f = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
    const idle = f[3]! + (f[4] ?? 0);
    return { idle, total: f.reduce((a, b) => a + b, 0) };
  };
  try {
    const a = sample();
    await sleep(ms);
    const b = sample();
    return 1 - (b.idle - a.idle) / Math.max(1, b.total - a.total);
  } catch {
    return NaN;
  }
}

// ------------------------------------------------------------------ main

/** A tool's version from its output (some print it on stderr, some exit non-zero). */
function version(cmd: string, args: string[], re: RegExp): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  const out = `${r.stdout ?? ''}${r.stderr ?? ''}`;
  return re.exec(out)?.[1] ?? (out.split('\n')[0]!.trim() || '?');
}

function facts(): [string, string][] {
  const cpu = cpus();
  let kernel = '?';
  try {
    kernel = readFileSync('/proc/sys/kernel/osrelease', 'utf8').trim();
  } catch {
    // not Linux
  }
  return [
    ['node', process.version],
    ['nproc', String(cpu.length)],
    ['CPU', cpu[0]?.model ?? '?'],
    ['memory', `${fmtNum(totalmem() / 2 ** 30, 1)} GiB`],
    ['kernel', kernel],
    ['nginx', version('nginx', ['-v'], /nginx\/(\S+)/)],
    ['stunnel', version('stunnel', ['-version'], /stunnel (\S+)/)],
    ['wrk', version('wrk', ['-v'], /wrk (\S+)/)],
    ['curl', version('curl', ['--version'], /curl (\S+)/)],
    ['OpenSSL', version('openssl', ['version'], /OpenSSL (\S+)/)],
  ];
}

async function main(): Promise<void> {
  const started = Date.now();
  ensureTools({ nginx: 'nginx', stunnel: 'stunnel4', wrk: 'wrk', curl: 'curl', openssl: 'openssl' });
  const dir = tempDir('sws-bench-');
  log(`sws benchmark, ${quick ? 'quick' : 'full'} mode: ${CFG.runs} runs × ${CFG.seconds} s per figure, work in ${dir}`);

  const files = { small: join(dir, 'body-1m'), bulk: join(dir, 'body-64m'), big: join(dir, 'body-big') };
  for (const [f, n] of [
    [files.small, 1048576],
    [files.bulk, BULK],
    [files.big, CFG.bigBody],
  ] as const) {
    const fd = openSync(f, 'w');
    ftruncateSync(fd, n);
    closeSync(fd);
  }

  const rsa = await rsaMeter();

  const certs = await makeCerts(dir);
  const origin = await startNodeScript('origin.ts', []);
  const originPort = origin.info.port as number;
  let setups: Setup[] = [
    directSetup(originPort),
    forwarderSetup(originPort),
    nginxSetup(dir, certs, originPort),
    stunnelSetup(dir, certs, originPort),
    ...POLICIES.map((p) => swsSetup(`http://127.0.0.1:${originPort}`, p)),
  ];
  if (only.length) setups = setups.filter((s) => only.some((o) => s.name.includes(o)));

  // Every setup runs side by side (idle ones cost nothing) and the runs are interleaved
  // round by round, so that load from outside the benchmark spreads over all setups alike.
  const lives: Live[] = [];
  const failed: SetupResult[] = [];
  const fail = (setup: Setup, e: unknown) => {
    log(`${setup.name}: FAILED: ${(e as Error).message}`);
    failed.push({ setup, small: new Map(), mem: [], error: (e as Error).message });
  };
  for (const s of setups) {
    try {
      lives.push(await bring(s, files));
    } catch (e) {
      fail(s, e);
    }
  }
  const busy = await backgroundBusy();
  log(`CPU busy outside the benchmark while idle: ${fmtNum(busy * 100)} %`);
  let active = [...lives];
  const guarded = async (l: Live, f: () => Promise<void>) => {
    try {
      await f();
    } catch (e) {
      fail(l.setup, e);
      active = active.filter((x) => x !== l);
    }
  };
  for (const l of active) await guarded(l, async () => void (await wrk(dir, l.running.target, 64, CFG.warm)));
  for (let round = 1; round <= CFG.runs; round++) {
    log(`small requests, round ${round}/${CFG.runs}`);
    for (const l of active) for (const c of CONNS) await guarded(l, () => smallRun(dir, l, c));
    await rsa.sample(); // raw RSA rate, in the same conditions as this round
  }
  // Warm-up, not counted: the first big transfer through a fresh Node process runs at a third to
  // half the speed of the next ones, the Node forwarder's as much as the sidecars' (JIT of the
  // streaming paths, socket buffers growing), which the small-request warm-up does not cover.
  // One transfer was not enough: a fresh sws chain went 57, 124, 174, 182, 234, 223, 275, 298,
  // 274 … MB/s down, and V8 was still compiling on its helper threads in the third
  // (bench/perfrecord.ts --phase bulk). So transfers go on until the rate settles, both ways.
  log(`bulk ${BULK / 1048576} MiB, warm-up until the rate settles (at most ${CFG.bulkWarmMax} each way)`);
  for (const l of active.filter((x) => x.heavy)) {
    await guarded(l, async () => {
      l.bulkWarm = await warmBulk(l.running.target, files.bulk);
      log(`${l.setup.name}: bulk warm-up, ${l.bulkWarm} transfer${l.bulkWarm === 1 ? '' : 's'} each way`);
    });
  }
  for (let round = 1; round <= CFG.bulkRuns; round++) {
    log(`bulk ${BULK / 1048576} MiB, round ${round}/${CFG.bulkRuns}`);
    for (const l of active.filter((x) => x.heavy)) {
      await guarded(l, async () => {
        l.down.push((await download(l.running.target, BULK)).mbps);
        l.up.push((await upload(l.running.target, files.bulk, BULK)).mbps);
      });
    }
  }
  const results: SetupResult[] = [];
  for (const s of setups) {
    const l = lives.find((x) => x.setup === s);
    const f = failed.find((x) => x.setup === s);
    if (f) results.push(f);
    else if (l) {
      await finish(l);
      results.push(l.result);
    }
  }
  for (const l of lives) await l.running.stop().catch(() => undefined);
  const busyAfter = await backgroundBusy();

  const report: Report = {
    command: `npm run bench${argv.length ? ` -- ${argv.join(' ')}` : ''}`,
    quick,
    date: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
    facts: [...facts(), ['CPU busy outside the benchmark (1 s samples, before / after the runs)', `${fmtNum(busy * 100)} % / ${fmtNum(busyAfter * 100)} %`]],
    method: [
      'All on loopback, one machine; every process competes for the same cores (the load generator, the origin and both hops).',
      'Origin: one Node process (node:http, bench/origin.ts) for every setup. Layout for every proxy pair: client → hop1 (plain HTTP) → hop2 → origin; the hop1 → hop2 leg is mutual TLS 1.3 for nginx and stunnel (RSA-2048 certificates made by openssl for this run), sws envelopes for sws, plain HTTP for the Node forwarder.',
      `Node forwarder: two processes of bench/forwarder.ts (node:http server + undici Pool, streaming, no logging), compiled by esbuild like the sidecars (npm run build). The forwarder and both sws sidecars run with node ${NODE_FLAGS.join(' ')}, the container image's setting.` + ' nginx: one worker process per hop, keep-alive upstreams, access log on, no disk buffering. stunnel: one process per side.',
      `sws: the real CLI-built chain (test/helpers/e2e.ts), default settings (info logs: one access line per request on each sidecar), Basic proxy authentication, absolute-form requests. \`count:100\` and \`request\` run on fresh sidecars over the same data dirs.`,
      'Every setup is started first and stays up; the runs are then interleaved round by round (each round: every setup in turn), so outside load falls on all setups alike.',
      `Raw RSA: RSA-2048 in the benchmark process (PSS-SHA256 sign, OAEP-SHA256 decrypt), the faster of WebCrypto and node:crypto (what the sidecars use) for each figure, 1 and ${Math.max(4, cpus().length * 2)} in flight, ${CFG.rsaSeconds} s each, one sample after every round of small requests (same conditions as the chain).`,
      `Small requests: wrk -t1, keep-alive, ${CFG.runs} runs × ${CFG.seconds} s per connection count after a ${CFG.warm} s warm-up; latency as wrk measures it (closed loop). Exchanges/s from the outer's sws_key_exchanges_total.`,
      `Bulk: curl, one ${BULK / 1048576} MiB body, ${CFG.bulkRuns} runs each way after uncounted warm-up transfers each way until a download and an upload both came within ${BULK_SETTLED * 100} % of the ones before (at most ${CFG.bulkWarmMax}; taken: ${lives.filter((l) => l.bulkWarm > 0).map((l) => `${l.setup.name} ${l.bulkWarm}`).join(', ')}); the upload is streamed from a file with Content-Length and counted by the origin.`,
      `Figures: median ±half-spread ((max−min)/2 as % of the median). Memory: VmHWM from /proc/PID/status after a 1 MiB transfer each way on fresh processes, after a ${CFG.bigBody / 1048576} MiB transfer each way, and at the end.`,
      ...(quick ? ['Quick mode: bulk and memory-vs-body-size are measured for `destination` only (the other policies move a big body on one exchange the same way).'] : []),
    ],
    conns: CONNS,
    bigBody: CFG.bigBody,
    bulkBody: BULK,
    results,
    rsa: rsa.result(),
    elapsedS: (Date.now() - started) / 1000,
  };
  const md = render(report);
  console.log(`\n${md}\n`);
  if (!noWrite && !only.length) {
    const file = join(BENCH_DIR, '..', 'docs', 'PERFORMANCE.md');
    writeReport(file, md);
    log(`wrote ${file}`);
  }
  if (results.some((r) => r.error)) process.exitCode = 1;
}

await runBenchmark(main);

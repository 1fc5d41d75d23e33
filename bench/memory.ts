/**
 * Where each proxy process's memory goes (issue 4: "each sidecar's peak RSS no higher than the
 * forwarder's"), and what a V8 flag costs: the Node forwarder pair and the sws chain, from the
 * precompiled build (`npm run build`) or through tsx, sampled idle after start, after
 * small-request load (wrk) and after one large body each way (curl), on fresh processes.
 *
 *   npx tsx bench/memory.ts [--setups fwd-build,fwd-tsx,sws-build,sws-tsx] [--variants "|--max-semi-space-size=2"]
 *                           [--repeat 1] [--seconds 5] [--connections 64] [--bulk-mib 64]
 *
 * `--variants`: node flag sets separated by `|` (an empty one is the default), each given to
 * every measured process (NAME=VALUE words as environment variables, e.g. MALLOC_ARENA_MAX=2); with `--repeat N` the runs are interleaved
 * round by round (every setup and variant in turn) and the table gives medians.
 *
 * Per process: VmRSS with its split into RssAnon (heaps, stacks, malloc) and RssFile (the node
 * binary and mapped libraries); the peak (VmHWM, reset between phases) of each phase; CPU per request and per MiB from /proc/PID/stat
 * (all threads: a flag that saves memory by collecting more often shows up here); and from
 * inside (bench/memprobe.mjs, preloaded, answering SIGUSR2) V8's heap: committed, used, the new
 * space (both semi-spaces of the young generation) and `external` (Buffers and other native
 * memory V8 knows about).
 */
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PASSWORDS, startChain } from '../test/helpers/e2e.ts';
import { BENCH_DIR, onCleanup, optionValue, run, runBenchmark, sleep, startNodeScript, stat, tempDir } from './harness.ts';
import { download, probe, upload, wrk, type Target } from './load.ts';

const opt = (name: string, dflt: string) => optionValue(process.argv, name, dflt);
const SETUPS = opt('setups', 'fwd-build,fwd-tsx,sws-build,sws-tsx').split(',');
const VARIANTS = opt('variants', '').split('|').map((v) => v.trim());
const REPEAT = Number(opt('repeat', '1'));
const SECONDS = Number(opt('seconds', '5'));
const CONNS = Number(opt('connections', '64'));
const BULK = Number(opt('bulk-mib', '64')) * 1048576;
const HOST = 'intranet.example';
const PROBE = join(BENCH_DIR, 'memprobe.mjs');
const TICK = 100; // /proc/PID/stat clock ticks per second

interface Sample {
  rss: number;
  hwm: number;
  anon: number;
  file: number;
  cpu: number;
  heapTotal: number;
  heapUsed: number;
  newSpace: number;
  external: number;
}

/** /proc/PID/status, /proc/PID/stat and the probe's answer. */
async function sample(pid: number, probeDir: string): Promise<Sample> {
  const out = join(probeDir, `${pid}.json`);
  rmSync(out, { force: true });
  try {
    process.kill(pid, 'SIGUSR2');
  } catch {
    // gone: the /proc reads below fail too
  }
  for (let i = 0; i < 40 && !existsSync(out); i++) await sleep(25);
  await sleep(25);
  const s = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (k: string) => Number(new RegExp(`${k}:\\s+(\\d+) kB`).exec(s)?.[1] ?? 0) * 1024;
  const st = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = st.slice(st.lastIndexOf(')') + 2).split(' ');
  const r: Sample = { rss: kb('VmRSS'), hwm: kb('VmHWM'), anon: kb('RssAnon'), file: kb('RssFile'), cpu: (Number(f[11]) + Number(f[12])) / TICK, heapTotal: NaN, heapUsed: NaN, newSpace: NaN, external: NaN };
  try {
    const p = JSON.parse(readFileSync(out, 'utf8')) as { usage: NodeJS.MemoryUsage; spaces: Record<string, { size: number }> };
    Object.assign(r, { heapTotal: p.usage.heapTotal, heapUsed: p.usage.heapUsed, external: p.usage.external, newSpace: p.spaces.new_space?.size ?? NaN });
  } catch {
    // no probe answer
  }
  return r;
}

/** Resets VmHWM to the current RSS (Linux: "5" to /proc/PID/clear_refs), so each phase has its own peak. */
function resetPeak(pid: number): void {
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, '5');
  } catch {
    // not permitted: the peaks then accumulate from the start
  }
}

interface Measured {
  readonly target: Target;
  readonly procs: { label: string; pid: number }[];
  stop(): Promise<void>;
}

/** A variant's node flags, and its NAME=VALUE words as environment variables (e.g. MALLOC_ARENA_MAX=2). */
function variant(flags: string): { nodeArgs: string[]; env: Record<string, string> } {
  const words = flags.split(' ').filter(Boolean);
  const isEnv = (w: string) => /^[A-Z_][A-Z0-9_]*=/.test(w);
  return { nodeArgs: words.filter((w) => !isEnv(w)), env: Object.fromEntries(words.filter(isEnv).map((w) => [w.slice(0, w.indexOf('=')), w.slice(w.indexOf('=') + 1)])) };
}

async function startForwarders(originUrl: string, tsx: boolean, flags: string): Promise<Measured> {
  const { nodeArgs: args, env } = variant(flags);
  const before = { ...process.env };
  Object.assign(process.env, env, { SWS_BUILD: tsx ? 'never' : 'require' });
  const nodeArgs = ['--import', PROBE, ...args];
  try {
    const h2 = await startNodeScript('forwarder.ts', ['--upstream', originUrl], nodeArgs);
    const h1 = await startNodeScript('forwarder.ts', ['--upstream', `http://127.0.0.1:${h2.info.port as number}`], nodeArgs);
    const base = `http://127.0.0.1:${h1.info.port as number}`;
    return {
      target: { connectUrl: base, smallPath: '/1k', url: (p) => `${base}${p}` },
      procs: [
        { label: 'hop1', pid: h1.proc.pid },
        { label: 'hop2', pid: h2.proc.pid },
      ],
      stop: async () => void (await Promise.all([h1.proc.stop(), h2.proc.stop()])),
    };
  } finally {
    for (const k of [...Object.keys(env), 'SWS_BUILD']) {
      if (before[k] === undefined) delete process.env[k];
      else process.env[k] = before[k];
    }
  }
}

async function startSws(originUrl: string, tsx: boolean, flags: string): Promise<Measured> {
  const v = variant(flags);
  const env = { ...v.env, SWS_BUILD: tsx ? 'never' : 'require', NODE_OPTIONS: [`--import=${PROBE}`, ...v.nodeArgs].join(' ') };
  const chain = await startChain({ originUrl, host: HOST, env });
  onCleanup(() => chain.stop());
  for (const p of [chain.outer, chain.inner]) {
    p.child.stdout!.removeAllListeners('data');
    p.child.stdout!.on('data', () => undefined);
  }
  return {
    target: { connectUrl: chain.proxy, smallPath: `http://${HOST}/1k`, proxyUser: `alice:${PASSWORDS.alice}`, url: (p) => `http://${HOST}${p}` },
    procs: [
      { label: 'outer', pid: chain.outer.child.pid! },
      { label: 'inner', pid: chain.inner.child.pid! },
    ],
    stop: () => chain.stop(),
  };
}

interface Run {
  idle: Sample;
  small: Sample;
  down: Sample;
  bulk: Sample;
  /** VmHWM since start (idle), and of each phase alone. */
  peaks: { idle: number; small: number; down: number; up: number };
  cpuPerRequest: number;
  cpuPerMiB: number;
}

const MiB = (b: number) => (Number.isFinite(b) ? (b / 1048576).toFixed(1) : '—');
const med = (xs: number[]) => stat(xs).median;

async function main(): Promise<void> {
  // The build setups measure the sources as they are now.
  if (SETUPS.some((s) => s.endsWith('-build'))) {
    const b = await run(process.execPath, [join(BENCH_DIR, '..', 'scripts', 'build.mjs'), '--quiet']);
    if (b.code !== 0) throw new Error(`npm run build failed:\n${b.stderr}`);
  }
  const work = tempDir('sws-memory-');
  process.env.SWS_MEMPROBE_DIR = work;
  const origin = await startNodeScript('origin.ts', []);
  const originUrl = `http://127.0.0.1:${origin.info.port as number}`;
  const upFile = join(work, 'body');
  writeFileSync(upFile, Buffer.alloc(BULK, 7));
  console.log(`node ${process.version}; ${CONNS} connections × ${SECONDS} s, then ${BULK / 1048576} MiB down and up; ${REPEAT} round(s)`);
  const runs = new Map<string, Run[]>();
  const rates = new Map<string, number[][]>();
  for (let round = 0; round < REPEAT; round++) {
    for (const name of SETUPS) {
      for (const flags of VARIANTS) {
        const key = `${name}\t${flags}`;
        const tsx = name.endsWith('-tsx');
        const m = name.startsWith('fwd') ? await startForwarders(originUrl, tsx, flags) : await startSws(originUrl, tsx, flags);
        await probe(m.target);
        await sleep(1000);
        const phase = async () => {
          const r = await Promise.all(m.procs.map((p) => sample(p.pid, work)));
          for (const p of m.procs) resetPeak(p.pid);
          return r;
        };
        const idle = await phase();
        const w = await wrk(work, m.target, CONNS, SECONDS);
        const small = await phase();
        const d = await download(m.target, BULK);
        const down = await phase();
        const u = await upload(m.target, upFile, BULK);
        const bulk = await phase();
        const peaks = m.procs.map((_, i) => ({ idle: idle[i]!.hwm, small: small[i]!.hwm, down: down[i]!.hwm, up: bulk[i]!.hwm }));
        const peakOf = (x: Run['peaks']) => Math.max(x.idle, x.small, x.down, x.up);
        console.log(`round ${round + 1} ${name} "${flags}": ${w.rps.toFixed(0)} req/s @${CONNS} (${w.errors} errors); ${d.mbps.toFixed(0)} MB/s down, ${u.mbps.toFixed(0)} MB/s up; peak ${peaks.map((x) => `${MiB(peakOf(x))} (${[x.idle, x.small, x.down, x.up].map(MiB).join(', ')})`).join(' / ')} MiB (start, small, down, up)`);
        for (const [i, p] of m.procs.entries()) {
          const k = `${key}\t${p.label}`;
          const list = runs.get(k) ?? [];
          list.push({ idle: idle[i]!, small: small[i]!, down: down[i]!, bulk: bulk[i]!, peaks: peaks[i]!, cpuPerRequest: (small[i]!.cpu - idle[i]!.cpu) / w.requests, cpuPerMiB: (bulk[i]!.cpu - small[i]!.cpu) / ((2 * BULK) / 1048576) });
          runs.set(k, list);
        }
        rates.set(key, [...(rates.get(key) ?? []), [w.rps, d.mbps, u.mbps]]);
        await m.stop();
      }
    }
  }
  console.log(`\nMedians of ${REPEAT} run(s), MiB. RSS = anon + file. V8 heap: committed / used / new space (both semi-spaces) / external.\n`);
  console.log('| setup | node flags | process | idle RSS (anon + file) | idle V8 heap | small: peak | RSS after | V8 heap after | CPU µs/request | download: peak | upload: peak | RSS after | V8 heap after | CPU ms/MiB | peak (VmHWM), range |');
  console.log('|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
  for (const [k, list] of runs) {
    const [name, flags, label] = k.split('\t');
    const m = (f: (r: Run) => number) => med(list.map(f));
    const heap = (f: (r: Run) => Sample, ext: boolean) =>
      `${MiB(m((r) => f(r).heapTotal))} / ${MiB(m((r) => f(r).heapUsed))} / ${MiB(m((r) => f(r).newSpace))}${ext ? ` / ${MiB(m((r) => f(r).external))}` : ''}`;
    const peak = list.map((r) => Math.max(r.peaks.idle, r.peaks.small, r.peaks.down, r.peaks.up));
    console.log(
      `| ${name} | ${flags || '(none)'} | ${label} | ${MiB(m((r) => r.idle.rss))} (${MiB(m((r) => r.idle.anon))} + ${MiB(m((r) => r.idle.file))}) | ${heap((r) => r.idle, true)} | ${MiB(m((r) => r.peaks.small))} | ${MiB(m((r) => r.small.rss))} | ${heap((r) => r.small, false)} | ${(m((r) => r.cpuPerRequest) * 1e6).toFixed(0)} | ${MiB(m((r) => r.peaks.down))} | ${MiB(m((r) => r.peaks.up))} | ${MiB(m((r) => r.bulk.rss))} | ${heap((r) => r.bulk, true)} | ${(m((r) => r.cpuPerMiB) * 1e3).toFixed(1)} | ${MiB(med(peak))} (${MiB(Math.min(...peak))}–${MiB(Math.max(...peak))}) |`,
    );
  }
  console.log('\n| setup | node flags | req/s | download MB/s | upload MB/s |');
  console.log('|---|---|---:|---:|---:|');
  for (const [k, list] of rates) {
    const [name, flags] = k.split('\t');
    console.log(`| ${name} | ${flags || '(none)'} | ${med(list.map((r) => r[0]!)).toFixed(0)} | ${med(list.map((r) => r[1]!)).toFixed(0)} | ${med(list.map((r) => r[2]!)).toFixed(0)} |`);
  }
}

await runBenchmark(main);

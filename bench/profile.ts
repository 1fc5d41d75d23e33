/**
 * Profiles the sws chain under load (issue 7: "profile before changing anything").
 *
 *   npx tsx bench/profile.ts [--seconds 15] [--connections 64] [--bulk 5] [--bulk-warm 1] [--rekey destination] [--warm 3] [--out DIR] [--top 25]
 *                            [--no-prof] [--node-args "--max-semi-space-size=4"]
 *
 * Builds the chain through the CLI (e2e helpers), then restarts both sidecars as
 * `node --cpu-prof bin/sws.js … start` on the same data dirs, and profiles two phases on fresh
 * processes each: small requests (wrk, 1 KiB responses) and bulk (64 MiB downloads, then
 * uploads, curl). Prints, per sidecar and phase: CPU per request or per MiB from
 * /proc/PID/task (main thread vs libuv pool vs V8 helper threads) and the main thread's
 * self time by source and by function, restricted to the load window. For comparison, the
 * same CPU accounting for one hop of the Node forwarder. The .cpuprofile files stay in DIR.
 * `--warm` is the warm-up before the small-request window (the JIT needs longer at `request`);
 * `--bulk-warm N`: N uncounted 64 MiB transfers each way before the bulk window, for the sidecars
 * and the forwarder alike. Without them the window of a fresh process holds its JIT compiles:
 * TurboFan runs on helper threads, which then showed as `other threads` per MiB.
 * `--no-prof` keeps only the CPU accounting (the sampling profiler itself costs CPU);
 * `--node-args` passes V8/Node flags to both sidecars and both forwarder hops (to try a flag before adopting it).
 */
import { closeSync, ftruncateSync, mkdirSync, openSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PASSWORDS, startChain, SWS } from '../test/helpers/e2e.ts';
import { formatRows, summarize } from './cpuprofile.ts';
import { onCleanup, optionValue, runBenchmark, type Started, startNodeScript, startProcess, tempDir } from './harness.ts';
import { download, probe, upload, wrk, type Target } from './load.ts';

const argv = process.argv.slice(2);
const opt = (name: string, dflt: string) => optionValue(process.argv, name, dflt);
const SECONDS = Number(opt('seconds', '15'));
const CONNS = Number(opt('connections', '64'));
const BULK_N = Number(opt('bulk', '5'));
const REKEY = opt('rekey', 'destination');
const WARM = Number(opt('warm', '3'));
const BULK_WARM = Number(opt('bulk-warm', '1'));
const TOP = Number(opt('top', '25'));
const PROFILE = !argv.includes('--no-prof');
const NODE_ARGS = opt('node-args', '').split(' ').filter(Boolean);
const BULK = 64 * 1048576;
const HOST = 'intranet.example';

const nowUs = () => Number(process.hrtime.bigint() / 1000n);

interface ThreadCpu {
  main: number;
  pool: number;
  other: number;
  /** Of all threads' CPU, the part spent in the kernel. */
  sys: number;
  /** read and write system calls so far (/proc/PID/io). */
  syscr: number;
  syscw: number;
  /** Minor page faults, all threads (the kernel maps a page on first touch: heap growth, fresh buffers). */
  minflt: number;
}

/**
 * CPU seconds of a process from /proc/PID/task/TID/stat: its main thread, and every other
 * thread (V8 GC/compiler helpers and the libuv pool where WebCrypto jobs run: Node 20 does
 * not name them apart here). Plus its system-call counts.
 */
function threadCpu(pid: number): ThreadCpu {
  const hz = 100;
  const out: ThreadCpu = { main: 0, pool: 0, other: 0, sys: 0, syscr: 0, syscw: 0, minflt: 0 };
  try {
    const io = readFileSync(`/proc/${pid}/io`, 'utf8');
    out.syscr = Number(/syscr:\s+(\d+)/.exec(io)?.[1] ?? 0);
    out.syscw = Number(/syscw:\s+(\d+)/.exec(io)?.[1] ?? 0);
  } catch {
    // not readable
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    out.minflt = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[7]);
  } catch {
    // gone
  }
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const s = (Number(f[11]) + Number(f[12])) / hz;
      const comm = readFileSync(`/proc/${pid}/task/${tid}/comm`, 'utf8').trim();
      out.sys += Number(f[12]) / hz;
      if (Number(tid) === pid) out.main += s;
      else if (comm.startsWith('libuv-worker')) out.pool += s;
      else out.other += s;
    } catch {
      // thread gone
    }
  }
  return out;
}

const diff = (a: ThreadCpu, b: ThreadCpu): ThreadCpu => ({ main: b.main - a.main, pool: b.pool - a.pool, other: b.other - a.other, sys: b.sys - a.sys, syscr: b.syscr - a.syscr, syscw: b.syscw - a.syscw, minflt: b.minflt - a.minflt });

/** `node [nodeArgs] bin/sws.js ARGS --listen … --admin-listen …`, resolved on its "listening" log line. */
async function startProfiled(role: 'inner' | 'outer', args: string[], listen: string, profDir: string): Promise<{ proc: Started; listen: string }> {
  mkdirSync(profDir, { recursive: true });
  const proc = startProcess(process.execPath, [...(PROFILE ? ['--cpu-prof', `--cpu-prof-dir=${profDir}`] : []), ...NODE_ARGS, SWS, role, 'start', ...args, '--listen', listen, '--admin-listen', '127.0.0.1:0']);
  const addr = await new Promise<string>((resolve, reject) => {
    let buf = '';
    const onData = (d: Buffer) => {
      buf += d.toString();
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        try {
          const rec = JSON.parse(line) as { msg?: string; listen?: string };
          if (rec.msg === `${role} sidecar listening` && rec.listen) {
            proc.child.stdout!.off('data', onData);
            resolve(rec.listen);
            return;
          }
        } catch {
          // not JSON
        }
      }
    };
    proc.child.stdout!.on('data', onData);
    proc.child.once('exit', (code) => reject(new Error(`${role} exited with ${code}\n${proc.output()}`)));
  });
  return { proc, listen: addr };
}

function profileOf(dir: string, pid: number): string | undefined {
  const f = readdirSync(dir).find((n) => n.includes(`.${pid}.0.`) && n.endsWith('.cpuprofile'));
  return f ? join(dir, f) : undefined;
}

function report(title: string, role: string, file: string | undefined, cpu: ThreadCpu, window: { fromUs: number; toUs: number }, units: number, unit: string): void {
  const per = (s: number) => `${((s * 1e6) / units).toFixed(0)} µs/${unit}`;
  console.log(`\n=== ${title} — ${role}: CPU ${per(cpu.main + cpu.pool + cpu.other)} (main thread ${per(cpu.main)}, other threads ${per(cpu.pool + cpu.other)}; in the kernel ${per(cpu.sys)}); ${(cpu.syscw / units).toFixed(1)} write and ${(cpu.syscr / units).toFixed(1)} read system calls/${unit}; ${(cpu.minflt / units).toFixed(2)} minor page faults/${unit}`);
  if (!file) {
    if (PROFILE) console.log('(no profile written)');
    return;
  }
  const s = summarize(file, window);
  const incl = (re: RegExp) => s.inclusive((f) => re.test(f.url) || re.test(f.functionName));
  console.log(`main thread busy ${s.busyMs.toFixed(0)} ms of ${s.totalMs.toFixed(0)} ms in the load window`);
  const cats: [string, RegExp][] = [
    ['logging (pino, access lines)', /node_modules\/(pino|sonic-boom|fast-redact|@pinojs|quick-format-unescaped)|sidecar-shared\/accesslog/],
    ['prom-client (metrics)', /node_modules\/prom-client/],
    ['undici', /node_modules\/undici/],
    ['core/ (protocol)', /\/core\//],
    ['WebCrypto JS glue', /node:internal\/crypto\/(webcrypto|aes|cipher|keys|util|hkdf|rsa|mac)/],
    ['streams', /node:internal\/streams\//],
    ['stream.pipeline', /^pipeline$|pipelineImpl/],
    ['Readable.from', /node:internal\/streams\/from/],
    ['better-sqlite3 / store', /better-sqlite3|\/store\//],
    ['garbage collector', /^\(garbage collector\)$/],
  ];
  console.log('-- inclusive time by category (share of busy main thread)');
  for (const [label, re] of cats) {
    const ms = incl(re);
    console.log(`${((ms / s.busyMs) * 100).toFixed(1).padStart(5)} %  ${ms.toFixed(0).padStart(7)} ms  ${label}`);
  }
  console.log('-- self time by source');
  console.log(formatRows(s.bySource, 12));
  console.log('-- self time by function');
  console.log(formatRows(s.byFunction, TOP));
}

async function main(): Promise<void> {
  const out = opt('out', tempDir('sws-profile-'));
  const work = tempDir('sws-profile-work-');
  const origin = await startNodeScript('origin.ts', []);
  const originUrl = `http://127.0.0.1:${origin.info.port as number}`;
  const upFile = join(work, 'body-64m');
  const fd = openSync(upFile, 'w');
  ftruncateSync(fd, BULK);
  closeSync(fd);
  const bulkWarmUp = async (t: Target): Promise<void> => {
    for (let i = 0; i < BULK_WARM; i++) {
      await download(t, BULK);
      await upload(t, upFile, BULK);
    }
  };

  const chain = await startChain({ originUrl, host: HOST, rekey: REKEY });
  onCleanup(() => chain.stop());
  const innerListen = new URL(chain.inner.url).host;
  await chain.outer.stop();
  await chain.inner.stop();
  console.log(`profiles in ${out}; rekey ${REKEY}; ${CONNS} connections × ${SECONDS} s; ${BULK_N} × 64 MiB each way`);

  // --bulk 0: the small-request phase only (no empty bulk report).
  for (const phase of BULK_N > 0 ? (['small', 'bulk'] as const) : (['small'] as const)) {
    const inner = await startProfiled('inner', ['--data', chain.innerData], innerListen, join(out, phase));
    const outer = await startProfiled('outer', ['--data', chain.outerData, '--rekey', REKEY], '127.0.0.1:0', join(out, phase));
    for (const p of [inner.proc, outer.proc]) p.child.stdout!.on('data', () => undefined);
    const target: Target = { connectUrl: `http://${outer.listen}`, smallPath: `http://${HOST}/1k`, proxyUser: `alice:${PASSWORDS.alice}`, url: (p) => `http://${HOST}${p}` };
    await probe(target);
    let units: number;
    let unit: string;
    let window: { fromUs: number; toUs: number };
    let c0: ThreadCpu[];
    let c1: ThreadCpu[];
    if (phase === 'small') {
      await wrk(work, target, CONNS, WARM); // warm-up, outside the window
      c0 = [threadCpu(outer.proc.pid), threadCpu(inner.proc.pid)];
      const fromUs = nowUs();
      const w = await wrk(work, target, CONNS, SECONDS);
      window = { fromUs, toUs: nowUs() };
      c1 = [threadCpu(outer.proc.pid), threadCpu(inner.proc.pid)];
      units = w.requests;
      unit = 'request';
      console.log(`\nsmall: ${w.rps.toFixed(0)} req/s, p50 ${w.p50Ms.toFixed(2)} ms, p99 ${w.p99Ms.toFixed(2)} ms, ${w.errors} errors`);
    } else {
      await download(target, 1048576);
      await bulkWarmUp(target);
      c0 = [threadCpu(outer.proc.pid), threadCpu(inner.proc.pid)];
      const fromUs = nowUs();
      const d: number[] = [];
      const u: number[] = [];
      for (let i = 0; i < BULK_N; i++) d.push((await download(target, BULK)).mbps);
      for (let i = 0; i < BULK_N; i++) u.push((await upload(target, upFile, BULK)).mbps);
      window = { fromUs, toUs: nowUs() };
      c1 = [threadCpu(outer.proc.pid), threadCpu(inner.proc.pid)];
      units = 2 * BULK_N * 64;
      unit = 'MiB';
      console.log(`\nbulk: download ${d.map((x) => x.toFixed(0)).join(', ')} MB/s; upload ${u.map((x) => x.toFixed(0)).join(', ')} MB/s`);
    }
    const pids = [outer.proc.pid, inner.proc.pid];
    await outer.proc.stop();
    await inner.proc.stop();
    for (const [i, role] of (['outer', 'inner'] as const).entries()) {
      report(phase, role, profileOf(join(out, phase), pids[i]!), diff(c0[i]!, c1[i]!), window, units, unit);
    }
  }

  // The floor: one hop of the Node forwarder, same CPU accounting.
  const h2 = await startNodeScript('forwarder.ts', ['--upstream', originUrl], NODE_ARGS);
  const h1 = await startNodeScript('forwarder.ts', ['--upstream', `http://127.0.0.1:${h2.info.port as number}`], NODE_ARGS);
  const t: Target = { connectUrl: `http://127.0.0.1:${h1.info.port as number}`, smallPath: '/1k', url: (p) => `http://127.0.0.1:${h1.info.port as number}${p}` };
  await wrk(work, t, CONNS, 3);
  const f0 = [threadCpu(h1.proc.pid), threadCpu(h2.proc.pid)];
  const w = await wrk(work, t, CONNS, SECONDS);
  const f1 = [threadCpu(h1.proc.pid), threadCpu(h2.proc.pid)];
  if (BULK_N > 0) await bulkWarmUp(t);
  const g0 = [threadCpu(h1.proc.pid), threadCpu(h2.proc.pid)];
  const d: number[] = [];
  const u: number[] = [];
  for (let i = 0; i < BULK_N; i++) d.push((await download(t, BULK)).mbps);
  for (let i = 0; i < BULK_N; i++) u.push((await upload(t, upFile, BULK)).mbps);
  const g1 = [threadCpu(h1.proc.pid), threadCpu(h2.proc.pid)];
  const tot = (c: ThreadCpu) => c.main + c.pool + c.other;
  const bulkSummary = BULK_N > 0 ? `; bulk: download ${d.map((x) => x.toFixed(0)).join(', ')} MB/s; upload ${u.map((x) => x.toFixed(0)).join(', ')} MB/s` : '';
  console.log(`\n=== Node forwarder for comparison: ${w.rps.toFixed(0)} req/s @${CONNS}${bulkSummary}`);
  for (const [i, hop] of ['hop1', 'hop2'].entries()) {
    const sm = diff(f0[i]!, f1[i]!);
    const bk = diff(g0[i]!, g1[i]!);
    console.log(`${hop}: ${((tot(sm) * 1e6) / w.requests).toFixed(0)} µs CPU/request (main ${((sm.main * 1e6) / w.requests).toFixed(0)}, kernel ${((sm.sys * 1e6) / w.requests).toFixed(0)}), ${(sm.syscw / w.requests).toFixed(1)} writes + ${(sm.syscr / w.requests).toFixed(1)} reads/request, ${(sm.minflt / w.requests).toFixed(2)} minor faults/request${BULK_N > 0 ? `; ${((tot(bk) * 1e6) / (2 * BULK_N * 64)).toFixed(0)} µs CPU/MiB, ${(bk.syscw / (2 * BULK_N * 64)).toFixed(1)} writes/MiB` : ''}`);
  }
}

await runBenchmark(main);

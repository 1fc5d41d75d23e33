/**
 * Paired A/B of sidecar variants (node flags or environment), the only comparison this noisy VM
 * allows: every variant's chain (outer + inner, one origin shared) runs side by side, and the
 * load alternates between them round by round, so a slow second hurts all variants alike.
 *
 *   npx tsx bench/ab.ts --variants "A|B[|…]" [--rounds 8] [--seconds 2] [--connections 64] [--idle 0] [--bulk 3] [--mixed 0]
 *
 * A variant is space-separated tokens: `--flag[=value]` goes to node, `NAME=value` to the
 * sidecars' environment, `outer:--flag[=value]` / `inner:--flag[=value]` to that sidecar's
 * `start` command, `bin:PATH` runs another build's bin/sws.js (a checkout of the base commit,
 * built, to compare a change against); an empty variant is the default start. Prints per variant the
 * small-request req/s and p99 latency of every round, CPU µs per request (outer / inner, /proc/PID/stat), bulk MB/s and CPU µs per MiB and,
 * after the small-request rounds and again after `--bulk` 64 MiB downloads and uploads, RSS and
 * peak RSS (VmHWM) of both sidecars. `--idle S`: then S seconds without requests, and three
 * 1 s rounds per variant (what a sidecar serves right after a pause), with RSS before and after
 * the pause. `--mixed N`: then N rounds per variant of small requests (`--seconds` × 2 long) while
 * 64 MiB downloads run back to back on the same chain: req/s, p99 and MiB downloaded per round.
 * Used for docs/PERFORMANCE.md, "Heap growth", "After idle" and "Young collections paced by octets".
 */
import { spawn } from 'node:child_process';
import { closeSync, ftruncateSync, openSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PASSWORDS, SWS, startChain } from '../test/helpers/e2e.ts';
import { freePort, onCleanup, optionValue, runBenchmark, sleep, startNodeScript, stopChild, tempDir } from './harness.ts';
import { download, probe, upload, wrk, type Target } from './load.ts';

const opt = (name: string, dflt: string) => optionValue(process.argv, name, dflt);
const VARIANTS = opt('variants', '|SWS_HEAP_GROWING_PERCENT=0').split('|');
const ROUNDS = Number(opt('rounds', '8'));
const SECONDS = Number(opt('seconds', '2'));
const CONNS = Number(opt('connections', '64'));
const BULK_N = Number(opt('bulk', '3'));
const IDLE_S = Number(opt('idle', '0'));
const MIXED_N = Number(opt('mixed', '0'));
const BULK = 64 * 1048576;
const HOST = 'intranet.example';

/** User + system CPU of a process so far, ms (clock ticks of 10 ms). */
function cpuMs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) * 10;
}

function statusMiB(pid: number, field: 'VmRSS' | 'VmHWM'): number {
  const m = new RegExp(`${field}:\\s+(\\d+)`).exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Math.round(Number(m![1]) / 1024);
}

interface Setup {
  name: string;
  target: Target;
  pids: [number, number];
  rps: number[];
  p99: number[];
  cpu: [number, number];
  requests: number;
  down: number[];
  up: number[];
}

function memory(s: Setup): string {
  const [o, i] = s.pids;
  return `RSS ${statusMiB(o, 'VmRSS')} / ${statusMiB(i, 'VmRSS')}, peak ${statusMiB(o, 'VmHWM')} / ${statusMiB(i, 'VmHWM')} MiB`;
}

async function startVariant(variant: string, originUrl: string): Promise<Setup> {
  const tokens = variant.split(' ').filter(Boolean);
  const nodeArgs = tokens.filter((t) => t.startsWith('--'));
  const sidecarArgs = (role: 'outer' | 'inner') => tokens.filter((t) => t.startsWith(`${role}:`)).map((t) => t.slice(role.length + 1));
  const env: NodeJS.ProcessEnv = { ...process.env };
  const bin = tokens.find((t) => t.startsWith('bin:'))?.slice(4) ?? SWS;
  for (const t of tokens.filter((t) => !t.startsWith('--') && !/^(outer|inner|bin):/.test(t))) {
    const eq = t.indexOf('=');
    if (eq <= 0) throw new Error(`variant token ${JSON.stringify(t)} is neither --flag nor NAME=value`);
    env[t.slice(0, eq)] = t.slice(eq + 1);
  }
  const chain = await startChain({ originUrl, host: HOST });
  onCleanup(() => chain.stop());
  const innerListen = new URL(chain.inner.url).host;
  await chain.outer.stop();
  await chain.inner.stop();
  const start = (args: string[]) => {
    const child = spawn(process.execPath, [...nodeArgs, bin, ...args, '--admin-listen', '127.0.0.1:0'], { env, stdio: ['ignore', 'ignore', 'inherit'] });
    onCleanup(() => stopChild(child));
    return child;
  };
  const inner = start(['inner', 'start', '--data', chain.innerData, '--listen', innerListen, ...sidecarArgs('inner')]);
  const port = await freePort();
  const outer = start(['outer', 'start', '--data', chain.outerData, '--listen', `127.0.0.1:${port}`, ...sidecarArgs('outer')]);
  const target: Target = {
    connectUrl: `http://127.0.0.1:${port}`,
    smallPath: `http://${HOST}/1k`,
    proxyUser: `alice:${PASSWORDS.alice}`,
    url: (path) => `http://${HOST}${path}`,
  };
  for (let i = 0; ; i++) {
    try {
      await probe(target);
      break;
    } catch (e) {
      if (i >= 150) throw e;
      await sleep(100); // readiness probe, not a timing assumption: retried until the chain answers
    }
  }
  return { name: variant || '(default)', target, pids: [outer.pid!, inner.pid!], rps: [], p99: [], cpu: [0, 0], requests: 0, down: [], up: [] };
}

async function main(): Promise<void> {
  const work = tempDir('sws-ab-');
  const upFile = join(work, 'body-64m');
  const fd = openSync(upFile, 'w');
  ftruncateSync(fd, BULK);
  closeSync(fd);
  const origin = await startNodeScript('origin.ts', []);
  const originUrl = `http://127.0.0.1:${origin.info.port as number}`;
  const setups: Setup[] = [];
  for (const v of VARIANTS) setups.push(await startVariant(v, originUrl));
  console.log(`${setups.length} variants; ${ROUNDS} rounds of ${CONNS} connections × ${SECONDS} s each, then ${BULK_N} × 64 MiB each way`);

  for (const s of setups) await wrk(work, s.target, CONNS, SECONDS); // warm-up, not counted
  for (let r = 0; r < ROUNDS; r++) {
    for (const s of setups) {
      const before = s.pids.map(cpuMs);
      const w = await wrk(work, s.target, CONNS, SECONDS);
      const after = s.pids.map(cpuMs);
      s.rps.push(w.rps);
      s.p99.push(w.p99Ms);
      s.requests += w.requests;
      s.cpu[0] += after[0]! - before[0]!;
      s.cpu[1] += after[1]! - before[1]!;
    }
  }
  for (const s of setups) {
    const perReq = s.cpu.map((ms) => ((ms * 1000) / Math.max(1, s.requests)).toFixed(0)).join(' / ');
    console.log(`[${s.name}] small: req/s ${s.rps.map((x) => x.toFixed(0)).join(' ')}; p99 ms ${s.p99.map((x) => x.toFixed(1)).join(' ')}; CPU µs/request ${perReq}; ${memory(s)}`);
  }
  if (IDLE_S > 0) {
    const rssOf = (s: Setup) => s.pids.map((pid) => statusMiB(pid, 'VmRSS')).join(' / ');
    const before = setups.map(rssOf);
    await sleep(IDLE_S * 1000);
    const after = setups.map(rssOf);
    for (const [i, s] of setups.entries()) {
      const rounds: number[] = [];
      for (let r = 0; r < 3; r++) rounds.push((await wrk(work, s.target, CONNS, 1)).rps);
      console.log(`[${s.name}] after ${IDLE_S} s idle: req/s in 1 s rounds ${rounds.map((x) => x.toFixed(0)).join(' ')}; RSS ${before[i]} MiB before the pause, ${after[i]} after`);
    }
  }
  // One uncounted transfer each way first (the JIT and the heap settle on the bulk path).
  for (const s of BULK_N > 0 ? setups : []) {
    await download(s.target, BULK);
    await upload(s.target, upFile, BULK);
  }
  const bulkCpu = setups.map(() => [0, 0, 0, 0]);
  for (let r = 0; r < BULK_N; r++) {
    for (const [i, s] of setups.entries()) {
      const c0 = s.pids.map(cpuMs);
      s.down.push((await download(s.target, BULK)).mbps);
      const c1 = s.pids.map(cpuMs);
      s.up.push((await upload(s.target, upFile, BULK)).mbps);
      const c2 = s.pids.map(cpuMs);
      const c = bulkCpu[i]!;
      c[0]! += c1[0]! - c0[0]!;
      c[1]! += c1[1]! - c0[1]!;
      c[2]! += c2[0]! - c1[0]!;
      c[3]! += c2[1]! - c1[1]!;
    }
  }
  for (const [i, s] of (BULK_N > 0 ? setups : []).entries()) {
    // CPU per MiB moved, outer / inner, each direction: steadier than MB/s on a shared machine.
    const perMiB = bulkCpu[i]!.map((ms) => ((ms * 1000) / (BULK_N * 64)).toFixed(0));
    console.log(
      `[${s.name}] bulk: MB/s down ${s.down.map((x) => x.toFixed(0)).join(' ')}, up ${s.up.map((x) => x.toFixed(0)).join(' ')}; CPU µs/MiB down ${perMiB[0]} / ${perMiB[1]}, up ${perMiB[2]} / ${perMiB[3]}; ${memory(s)}`,
    );
  }
  const mixed = setups.map(() => [] as string[]);
  for (let r = 0; r < MIXED_N; r++) {
    for (const [i, s] of setups.entries()) {
      // Downloads back to back until the small-request round ends; the one in progress then finishes.
      let stop = false;
      let mib = 0;
      const bulk = (async () => {
        while (!stop) {
          await download(s.target, BULK);
          mib += 64;
        }
      })();
      const w = await wrk(work, s.target, CONNS, SECONDS * 2).finally(() => (stop = true));
      await bulk;
      mixed[i]!.push(`${w.rps.toFixed(0)} req/s, p99 ${w.p99Ms.toFixed(1)} ms, ${mib} MiB`);
    }
  }
  for (const [i, s] of (MIXED_N > 0 ? setups : []).entries()) console.log(`[${s.name}] small requests during downloads: ${mixed[i]!.join('; ')}; ${memory(s)}`);
}

await runBenchmark(main);

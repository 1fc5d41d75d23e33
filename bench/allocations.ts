/**
 * Where the sidecars allocate per request (the garbage collector's work: 8-12 % of each
 * sidecar's main thread under small requests, bench/profile.ts). Starts the chain with
 * bench/allocprobe.mjs preloaded, warms it up, samples V8 heap allocations (freed ones included)
 * over a wrk window of 1 KiB requests, and prints per sidecar the JS heap allocated per request
 * and the functions that allocate most (self), as the sampler attributes them; then the same
 * for one hop of the Node forwarder (the floor: node:http + undici, no crypto).
 *
 *   npx tsx bench/allocations.ts [--seconds 4] [--warm 6] [--connections 16] [--top 25]
 *                                [--node-args "--min-semi-space-size=4"]
 *
 * `--node-args` adds V8/Node flags to both sidecars and the forwarder hops (after the
 * benchmark's own NODE_FLAGS), to see what a flag does to allocation or promotion.
 *
 * Off-heap buffers (Buffer/ArrayBuffer contents) are not counted: only V8 heap objects.
 * With `SWS_ALLOCPROBE_SURVIVORS=1` in the environment only objects that outlived a young
 * collection are counted: what is promoted to the old generation and so sets off full
 * collections (bench/allocprobe.mjs).
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PASSWORDS, startChain } from '../test/helpers/e2e.ts';
import { BENCH_DIR, onCleanup, optionValue, runBenchmark, sleep, startNodeScript, tempDir } from './harness.ts';
import { wrk, type Target } from './load.ts';
import { NODE_FLAGS } from './setups.ts';

const opt = (name: string, dflt: string) => optionValue(process.argv, name, dflt);
const SECONDS = Number(opt('seconds', '4'));
const WARM = Number(opt('warm', '6'));
const CONNS = Number(opt('connections', '16'));
const TOP = Number(opt('top', '25'));
const NODE_ARGS = [...NODE_FLAGS, ...opt('node-args', '').split(' ').filter(Boolean)];
const HOST = 'intranet.example';

interface ProfileNode {
  callFrame: { functionName: string; url: string; lineNumber: number };
  selfSize: number;
  children: ProfileNode[];
}

/** Self bytes by function (name, file, line), summed over the sampled call tree. */
function bySite(root: ProfileNode): { total: number; sites: [string, number][] } {
  const sites = new Map<string, number>();
  let total = 0;
  const stack = [root];
  while (stack.length > 0) {
    const n = stack.pop()!;
    const f = n.callFrame;
    const site = `${f.functionName || '(anonymous)'}  ${f.url.replace(/^.*\//, '') || '(native)'}:${f.lineNumber + 1}`;
    total += n.selfSize;
    if (n.selfSize > 0) sites.set(site, (sites.get(site) ?? 0) + n.selfSize);
    stack.push(...n.children);
  }
  return { total, sites: [...sites.entries()].sort((a, b) => b[1] - a[1]) };
}

/** Samples `pids` over one wrk window against `target`; the profiles' paths and the window's request count. */
async function sampleWindow(work: string, out: string, target: Target, pids: readonly number[]): Promise<{ files: string[]; requests: number; rps: number }> {
  await wrk(work, target, CONNS, WARM); // warm-up: the JIT, pools and caches settle outside the window
  for (const pid of pids) process.kill(pid, 'SIGUSR2');
  await sleep(100); // the signal is handled on the process's next turn of its event loop
  const w = await wrk(work, target, CONNS, SECONDS);
  for (const pid of pids) process.kill(pid, 'SIGPWR');
  const files = pids.map((pid) => join(out, `${pid}.json`));
  for (let i = 0; i < 200 && !files.every((f) => existsSync(f)); i++) await sleep(50); // waits for the written profiles
  return { files, requests: w.requests, rps: w.rps };
}

function report(name: string, file: string, requests: number, top: number): void {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as { head?: ProfileNode; error?: string };
  if (!profile.head) throw new Error(`${name}: no allocation profile (${profile.error ?? 'unknown'})`);
  const { total, sites } = bySite(profile.head);
  console.log(`\n=== ${name}: ${(total / requests / 1024).toFixed(1)} KiB of V8 heap ${process.env.SWS_ALLOCPROBE_SURVIVORS === '1' ? 'outliving a young collection' : 'allocated'} per request (${(total / 1048576).toFixed(0)} MiB sampled)`);
  for (const [site, bytes] of sites.slice(0, top)) console.log(`${((100 * bytes) / total).toFixed(1).padStart(5)} %  ${(bytes / requests).toFixed(0).padStart(6)} B/request  ${site}`);
}

async function main(): Promise<void> {
  const work = tempDir('sws-alloc-');
  const out = tempDir('sws-alloc-profiles-');
  const origin = await startNodeScript('origin.ts', []);
  const probe = `--import=${join(BENCH_DIR, 'allocprobe.mjs')}`;
  const env = { NODE_OPTIONS: probe, SWS_ALLOCPROBE_DIR: out };
  const chain = await startChain({ originUrl: `http://127.0.0.1:${origin.info.port as number}`, host: HOST, env, nodeArgs: NODE_ARGS });
  onCleanup(() => chain.stop());
  const target: Target = { connectUrl: chain.proxy, smallPath: `http://${HOST}/1k`, proxyUser: `alice:${PASSWORDS.alice}`, url: (p) => `http://${HOST}${p}` };
  const sws = await sampleWindow(work, out, target, [chain.outer.child.pid!, chain.inner.child.pid!]);
  console.log(`sws: ${sws.requests} requests (${sws.rps.toFixed(0)} req/s, ${CONNS} connections × ${SECONDS} s); sampled every ${process.env.SWS_ALLOCPROBE_INTERVAL ?? 4096} octets on average`);
  report('outer', sws.files[0]!, sws.requests, TOP);
  report('inner', sws.files[1]!, sws.requests, TOP);
  await chain.stop();

  // The floor: the forwarder's second hop (it forwards to the origin, as the inner does).
  process.env.SWS_ALLOCPROBE_DIR = out; // inherited by the forwarder processes
  const h2 = await startNodeScript('forwarder.ts', ['--upstream', `http://127.0.0.1:${origin.info.port as number}`], [...NODE_ARGS, probe]);
  const h1 = await startNodeScript('forwarder.ts', ['--upstream', `http://127.0.0.1:${h2.info.port as number}`], NODE_ARGS);
  const fwdTarget: Target = { connectUrl: `http://127.0.0.1:${h1.info.port as number}`, smallPath: '/1k', url: (p) => `http://127.0.0.1:${h1.info.port as number}${p}` };
  const fwd = await sampleWindow(work, out, fwdTarget, [h2.proc.pid]);
  console.log(`\nNode forwarder: ${fwd.requests} requests (${fwd.rps.toFixed(0)} req/s)`);
  report('forwarder hop', fwd.files[0]!, fwd.requests, Math.min(TOP, 10));
}

await runBenchmark(main);

/**
 * What V8's collector does in each sidecar under small requests: young collections per second,
 * what each one promotes to the old generation, and how many full collections run. Objects
 * promoted and dying there are what sets off full collections (docs/PERFORMANCE.md "The
 * in-flight set"). Starts the chain with V8's `--trace-gc-nvp`, warms it up, and reads the
 * trace over one wrk window of 1 KiB requests.
 *
 *   npx tsx bench/gctrace.ts [--seconds 4] [--warm 6] [--connections 16] [--node-args "…"]
 *
 * `--node-args` adds V8/Node flags to both sidecars after the benchmark's own NODE_FLAGS.
 */
import { PASSWORDS, startChain } from '../test/helpers/e2e.ts';
import { onCleanup, optionValue, runBenchmark, startNodeScript, tempDir } from './harness.ts';
import { wrk, type Target } from './load.ts';
import { NODE_FLAGS } from './setups.ts';

const opt = (name: string, dflt: string) => optionValue(process.argv, name, dflt);
const SECONDS = Number(opt('seconds', '4'));
const WARM = Number(opt('warm', '6'));
const CONNS = Number(opt('connections', '16'));
const NODE_ARGS = [...NODE_FLAGS, '--trace-gc-nvp', ...opt('node-args', '').split(' ').filter(Boolean)];
const HOST = 'intranet.example';

/** One `--trace-gc-nvp` line: its kind (s: scavenge, mc/ms: full) and the figures used here. */
function parse(line: string): { kind: string; promoted: number; survived: number; pauseMs: number } | undefined {
  const kind = /\bgc=(\w+)/.exec(line)?.[1];
  if (kind === undefined) return undefined;
  const num = (name: string) => Number(new RegExp(`\\b${name}=([\\d.]+)`).exec(line)?.[1] ?? 0);
  return { kind, promoted: num('promoted'), survived: num('new_space_survived'), pauseMs: num('pause') };
}

await runBenchmark(async () => {
  const work = tempDir('sws-gctrace-');
  const origin = await startNodeScript('origin.ts', []);
  const chain = await startChain({ originUrl: `http://127.0.0.1:${origin.info.port as number}`, host: HOST, nodeArgs: NODE_ARGS });
  onCleanup(() => chain.stop());
  const roles = ['outer', 'inner'] as const;
  const traces: Record<(typeof roles)[number], string[]> = { outer: [], inner: [] };
  let recording = false;
  for (const role of roles) {
    let buf = '';
    chain[role].child.stdout!.on('data', (d: string) => {
      buf += d;
      for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        if (recording && !line.startsWith('{')) traces[role].push(line); // JSON lines are the sidecar's logs
      }
    });
  }
  const target: Target = { connectUrl: chain.proxy, smallPath: `http://${HOST}/1k`, proxyUser: `alice:${PASSWORDS.alice}`, url: (p) => `http://${HOST}${p}` };
  await wrk(work, target, CONNS, WARM);
  recording = true;
  const w = await wrk(work, target, CONNS, SECONDS);
  recording = false;
  console.log(`${w.requests} requests (${w.rps.toFixed(0)} req/s, p99 ${w.p99Ms.toFixed(1)} ms), ${CONNS} connections × ${SECONDS} s; node ${NODE_ARGS.join(' ')}`);
  for (const role of roles) {
    const gcs = traces[role].map(parse).filter((g) => g !== undefined);
    const young = gcs.filter((g) => g.kind === 's');
    const full = gcs.filter((g) => g.kind !== 's');
    const sum = (xs: typeof gcs, f: (g: (typeof gcs)[number]) => number) => xs.reduce((a, g) => a + f(g), 0);
    const perYoung = (f: (g: (typeof gcs)[number]) => number) => (young.length ? sum(young, f) / young.length / 1024 : 0);
    console.log(
      `${role}: ${young.length} young collections (${(young.length / SECONDS).toFixed(0)}/s), each surviving ${perYoung((g) => g.survived).toFixed(0)} KiB and promoting ${perYoung((g) => g.promoted).toFixed(0)} KiB` +
        ` (${(sum(young, (g) => g.promoted) / w.requests).toFixed(0)} B per request); ${full.length} full collections; GC pauses ${sum(gcs, (g) => g.pauseMs).toFixed(0)} ms`,
    );
  }
  await chain.stop();
});

/**
 * How fast a fresh chain reaches its steady rate: the Node forwarder and the sws chain
 * (`destination`), both just started, then `--rounds` interleaved 1 s rounds of wrk at
 * `--connections`, printing req/s per round and the ratio. Used to choose the warm-up of
 * `npm run bench` (the sidecars' JIT needs longer than the forwarder's) and to see what a
 * chain's first second costs (the first password check, the first key exchange).
 *
 *   npx tsx bench/warmup.ts [--rounds 15] [--connections 16]
 */
import { PASSWORDS, startChain } from '../test/helpers/e2e.ts';
import { onCleanup, optionValue, runBenchmark, startNodeScript, tempDir } from './harness.ts';
import { wrk, type Target } from './load.ts';
import { NODE_FLAGS } from './setups.ts';

const opt = (name: string, dflt: string) => optionValue(process.argv, name, dflt);
const ROUNDS = Number(opt('rounds', '15'));
const CONNS = Number(opt('connections', '16'));
const HOST = 'intranet.example';

async function main(): Promise<void> {
  const work = tempDir('sws-warmup-');
  const origin = await startNodeScript('origin.ts', []);
  const originUrl = `http://127.0.0.1:${origin.info.port as number}`;
  const h2 = await startNodeScript('forwarder.ts', ['--upstream', originUrl], NODE_FLAGS);
  const h1 = await startNodeScript('forwarder.ts', ['--upstream', `http://127.0.0.1:${h2.info.port as number}`], NODE_FLAGS);
  const forwarder: Target = { connectUrl: `http://127.0.0.1:${h1.info.port as number}`, smallPath: '/1k', url: (p) => `http://127.0.0.1:${h1.info.port as number}${p}` };
  const chain = await startChain({ originUrl, host: HOST, nodeArgs: NODE_FLAGS });
  onCleanup(() => chain.stop());
  const sws: Target = { connectUrl: chain.proxy, smallPath: `http://${HOST}/1k`, proxyUser: `alice:${PASSWORDS.alice}`, url: (p) => `http://${HOST}${p}` };
  const f: number[] = [];
  const s: number[] = [];
  for (let i = 0; i < ROUNDS; i++) {
    f.push((await wrk(work, forwarder, CONNS, 1)).rps);
    s.push((await wrk(work, sws, CONNS, 1)).rps);
  }
  console.log(`${CONNS} connections, 1 s rounds from start-up (req/s)`);
  console.log(`forwarder ${f.map((x) => x.toFixed(0)).join(' ')}`);
  console.log(`sws       ${s.map((x) => x.toFixed(0)).join(' ')}`);
  console.log(`ratio     ${s.map((x, i) => (x / f[i]!).toFixed(2)).join(' ')}`);
}

await runBenchmark(main);

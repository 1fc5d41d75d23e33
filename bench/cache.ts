/**
 * Cache benchmark (claim 4; issue 5's targets): requests/s for a cacheable 1 KiB page
 *   - from the origin directly,
 *   - through the whole chain with both caches off (every request sealed, sent, opened),
 *   - through the chain with inner-cache hits (the WWW server sees one request),
 *   - through the outer with outer-cache hits (no envelope at all).
 * Run: `npx tsx bench/cache.ts [--seconds 5] [--connections 16] [--rounds 3]`. Uses wrk
 * when installed (a C client, so the figures are the servers'), else a keep-alive node:http
 * loop. Loopback only; every process and server it starts is stopped at the end.
 */
import { execFile, spawnSync } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { Agent, request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { PASSWORDS, metricValue, startChain, startOrigin, startSidecar, type Chain, type SidecarProcess } from '../test/helpers/e2e.ts';

const { values } = parseArgs({ options: { seconds: { type: 'string', default: '5' }, connections: { type: 'string', default: '16' }, rounds: { type: 'string', default: '3' } } });
const SECONDS = Number(values.seconds);
const CONNECTIONS = Number(values.connections);
const ROUNDS = Number(values.rounds);
const HOST = 'intranet.example';
const PAGE = '/page';
const AUTH = `Basic ${Buffer.from(`alice:${PASSWORDS.alice}`).toString('base64')}`;
const work = mkdtempSync(join(tmpdir(), 'sws-bench-cache-'));
const execFileP = promisify(execFile);
const hasWrk = spawnSync('wrk', ['--version']).error === undefined;

interface Target {
  readonly url: string;
  readonly path: string;
  readonly proxyAuth?: string;
  /** Length of this run (default --seconds). */
  readonly seconds?: number;
}

/** Async: the origin runs in this process, so the event loop must keep turning while wrk runs. */
async function wrk(t: Target): Promise<number> {
  const script = join(work, 'req.lua');
  writeFileSync(script, `wrk.method = "GET"\nwrk.path = "${t.path}"\n${t.proxyAuth ? `wrk.headers["Proxy-Authorization"] = "${t.proxyAuth}"\nwrk.headers["Host"] = "${HOST}"\n` : ''}done = function(s) io.write(string.format("RPS %f ERR %d connect=%d read=%d write=%d status=%d timeout=%d\\n", s.requests / (s.duration / 1e6), s.errors.connect + s.errors.read + s.errors.write + s.errors.status + s.errors.timeout, s.errors.connect, s.errors.read, s.errors.write, s.errors.status, s.errors.timeout)) end\n`);
  const r = await execFileP('wrk', ['-t1', `-c${CONNECTIONS}`, `-d${t.seconds ?? SECONDS}s`, '--timeout', '10s', '-s', script, t.url], { encoding: 'utf8', timeout: ((t.seconds ?? SECONDS) + 30) * 1000 });
  const m = /RPS ([\d.]+) ERR (\d+) (.*)/.exec(r.stdout);
  if (!m || (m[1] === '0' && Number(m[2]) === 0)) throw new Error(`wrk failed: ${r.stderr}${r.stdout}`);
  // A few read errors when wrk stops mid-request are normal; anything more is reported.
  if (Number(m[2]) > 0) console.error(`  note: ${t.url} ${t.path}: wrk counted ${m[2]} errors (${m[3]})`);
  return Number(m[1]);
}

async function nodeLoop(t: Target): Promise<number> {
  const agent = new Agent({ keepAlive: true, maxSockets: CONNECTIONS });
  const u = new URL(t.url);
  const headers: Record<string, string> = t.proxyAuth ? { host: HOST, 'proxy-authorization': t.proxyAuth } : {};
  const end = Date.now() + (t.seconds ?? SECONDS) * 1000;
  let n = 0;
  const one = () =>
    new Promise<void>((resolve, reject) => {
      const req = httpRequest({ host: u.hostname, port: u.port, path: t.path, headers, agent }, (res) => {
        if (res.statusCode !== 200) reject(new Error(`status ${res.statusCode}`));
        res.resume().on('end', () => resolve());
      });
      req.on('error', reject).end();
    });
  const started = Date.now();
  await Promise.all(Array.from({ length: CONNECTIONS }, async () => {
    while (Date.now() < end) {
      await one();
      n++;
    }
  }));
  agent.destroy();
  return n / ((Date.now() - started) / 1000);
}

function once(t: Target): Promise<number> {
  return hasWrk ? wrk(t) : nodeLoop(t);
}

const body = Buffer.alloc(1024, 'x');
// startOrigin records every request; this run makes millions, so the record is kept short (a
// growing array cost the origin, and so the "direct" baseline, more GC each round) and counted here.
let served = 0;
const origin = await startOrigin((_req, res) => {
  served++;
  if (origin.requests.length > 1000) origin.requests.length = 0;
  res.writeHead(200, { 'content-type': 'text/plain', 'cache-control': 'public, max-age=3600', etag: '"p1"' }).end(body);
});
const chains: Chain[] = [];
const extra: SidecarProcess[] = [];
try {
  // Chain 1: inner cache off. Its outer caches (hits); a second outer on the same data dir does not (uncached chain).
  const c1 = await startChain({ originUrl: origin.url, host: HOST, innerArgs: ['--no-cache'] });
  chains.push(c1);
  const uncachedOuter = await startSidecar(['outer', 'start', '--data', c1.outerData, '--no-cache']);
  extra.push(uncachedOuter);
  // Chain 2: inner cache on, outer cache off: every request crosses the tunnel; the inner answers from its cache.
  const c2 = await startChain({ originUrl: origin.url, host: HOST, outerArgs: ['--no-cache'] });
  chains.push(c2);

  // Access logs are still written, but this process stops parsing them (it also runs the origin).
  for (const p of [c1.inner, c1.outer, uncachedOuter, c2.inner, c2.outer]) p.child.stdout?.removeAllListeners('data').resume();
  // Round by round, every setup in turn: outside load then falls on all of them alike.
  const targets = {
    direct: { url: origin.url, path: PAGE },
    uncached: { url: uncachedOuter.url, path: `http://${HOST}${PAGE}`, proxyAuth: AUTH },
    innerHits: { url: c2.proxy, path: `http://${HOST}${PAGE}`, proxyAuth: AUTH },
    outerHits: { url: c1.proxy, path: `http://${HOST}${PAGE}`, proxyAuth: AUTH },
  };
  const runs: Record<keyof typeof targets, number[]> = { direct: [], uncached: [], innerHits: [], outerHits: [] };
  // Warm-up (JIT, keep-alive connections, the one miss that fills each cache), not counted.
  for (const t of Object.values(targets)) await once({ ...t, seconds: 1 });
  let originSawForInnerHits = 0;
  for (let round = 0; round < ROUNDS; round++) {
    for (const name of Object.keys(targets) as (keyof typeof targets)[]) {
      const before = served;
      runs[name].push(await once(targets[name]));
      if (name === 'innerHits') originSawForInnerHits += served - before;
    }
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  const direct = median(runs.direct);
  const uncached = median(runs.uncached);
  const innerHits = median(runs.innerHits);
  const outerHits = median(runs.outerHits);
  // The same ratio per round (both runs a few seconds apart), then its median: less exposed to load that comes and goes.
  const outerVsDirect = median(runs.outerHits.map((r, i) => r / runs.direct[i]!));
  const outerHitCount = metricValue(await c1.outer.metrics(), 'sws_cache_hits_total', { cache: 'outer' });
  const innerHitCount = metricValue(await c2.inner.metrics(), 'sws_cache_hits_total', { cache: 'inner' });

  const row = (name: string, rps: number) => `| ${name.padEnd(44)} | ${rps.toFixed(0).padStart(8)} | ${(rps / direct).toFixed(2).padStart(9)} | ${(rps / uncached).toFixed(2).padStart(11)} |`;
  console.log(`\ncache benchmark: 1 KiB cacheable page, ${CONNECTIONS} connections, ${SECONDS} s x ${ROUNDS} rounds (each round runs every setup in turn; medians), client ${hasWrk ? 'wrk' : 'node:http'}\n`);
  console.log('| setup                                        |    req/s | vs direct | vs uncached |');
  console.log('|----------------------------------------------|---------:|----------:|------------:|');
  console.log(row('origin direct', direct));
  console.log(row('chain, both caches off', uncached));
  console.log(row('chain, inner-cache hits (outer cache off)', innerHits));
  console.log(row('outer-cache hits', outerHits));
  console.log(`\nouter-cache hits vs origin direct, median of the per-round ratios: ${outerVsDirect.toFixed(2)} (rounds: ${runs.outerHits.map((r, i) => (r / runs.direct[i]!).toFixed(2)).join(' ')})`);
  console.log(`WWW server requests during the inner-cache-hit runs: ${originSawForInnerHits} (inner cache hits: ${innerHitCount}); outer cache hits: ${outerHitCount}`);
} finally {
  await Promise.all(extra.map((p) => p.stop()));
  await Promise.all(chains.map((c) => c.stop()));
  await origin.close();
  rmSync(work, { recursive: true, force: true });
}

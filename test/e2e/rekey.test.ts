/**
 * Claim 8 (S101–S105) end to end: the number of key exchanges each `--rekey` policy causes,
 * read from the real outer's /metrics, and the inner agreeing.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { request as httpRequest } from 'node:http';
import { basic, metricValue, PASSWORDS, startChain, startOrigin, startSidecar, type Chain, type Origin, type SidecarProcess } from '../helpers/e2e.ts';

let origin: Origin;
let chain: Chain;
const extra: SidecarProcess[] = [];

before(async () => {
  origin = await startOrigin((_req, res) => res.writeHead(200, { 'content-type': 'text/plain' }).end('ok'));
  chain = await startChain({ originUrl: origin.url, extraSites: { 'b.example': origin.url }, rekey: 'request' });
});

after(async () => {
  await Promise.all(extra.map((p) => p.stop()));
  await chain?.stop();
  await origin?.close();
});

function get(proxyUrl: string, host: string, method = 'GET'): Promise<number> {
  const proxy = new URL(proxyUrl);
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      { host: proxy.hostname, port: proxy.port, method, path: `http://${host}/x`, headers: { host, 'proxy-authorization': basic('alice', PASSWORDS.alice) } },
      (res) => (res.resume(), res.on('end', () => resolve(res.statusCode!))),
    );
    req.on('error', reject);
    req.end();
  });
}

const exchanges = async (p: SidecarProcess, labels: Record<string, string> = {}) => metricValue(await p.metrics(), 'sws_key_exchanges_total', { result: 'ok', ...labels });

test('--rekey request: every request exchanges a new key (the most secure, slowest setting)', async () => {
  const before = await exchanges(chain.outer);
  for (let i = 0; i < 6; i++) assert.equal(await get(chain.proxy, 'intranet.example'), 200);
  assert.equal((await exchanges(chain.outer)) - before, 6);
  assert.equal(await exchanges(chain.outer, { reason: 'every-request' }), 5, 'after the first (first-request), each was every-request');
});

test('--rekey destination: the same destination reuses the key; each change of destination exchanges', async () => {
  const outer = await startSidecar(['outer', 'start', '--data', chain.outerData, '--rekey', 'destination']);
  extra.push(outer);
  for (let i = 0; i < 5; i++) assert.equal(await get(outer.url, 'intranet.example'), 200);
  assert.equal(await exchanges(outer), 1, 'S101 once, then S102 → S105 reuse');
  for (const host of ['b.example', 'intranet.example', 'b.example']) assert.equal(await get(outer.url, host), 200);
  assert.equal(await exchanges(outer, { reason: 'destination-changed' }), 3);
  assert.equal(await exchanges(outer), 4);
});

test('--rekey count:3: a key serves at most three requests', async () => {
  const outer = await startSidecar(['outer', 'start', '--data', chain.outerData, '--rekey', 'count:3']);
  extra.push(outer);
  for (let i = 0; i < 7; i++) assert.equal(await get(outer.url, 'intranet.example'), 200);
  assert.equal(await exchanges(outer), 3, '7 requests at 3 per key need 3 keys');
  assert.equal(await exchanges(outer, { reason: 'request-count' }), 2);
});

test('concurrent requests that need a key share one exchange', async () => {
  const outer = await startSidecar(['outer', 'start', '--data', chain.outerData, '--rekey', 'destination']);
  extra.push(outer);
  const statuses = await Promise.all(Array.from({ length: 16 }, () => get(outer.url, 'intranet.example')));
  assert.ok(statuses.every((s) => s === 200));
  assert.equal(await exchanges(outer), 1);
});

test('an invalid --rekey is refused with exit 2 naming the flag', async () => {
  const { sws } = await import('../helpers/e2e.ts');
  const r = await sws(['outer', 'start', '--data', chain.outerData, '--listen', '127.0.0.1:0', '--rekey', 'count:0']);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /--rekey/);
});

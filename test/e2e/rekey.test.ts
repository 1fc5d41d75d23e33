/**
 * Claim 8 (S101–S105) end to end: the number of key exchanges each `--rekey` policy causes,
 * read from the real outer's /metrics, and the inner's /metrics agreeing. The inner here also
 * runs with a non-default `--forwarded-user-header`.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { request as httpRequest } from 'node:http';
import { basic, metricValue, PASSWORDS, startChain, startOrigin, startSidecar, type Chain, type Origin, type SidecarProcess } from '../helpers/e2e.ts';

let origin: Origin;
let chain: Chain;
const extra: SidecarProcess[] = [];

before(async () => {
  origin = await startOrigin((req, res) => {
    if (req.url === '/headers') res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(req.headers));
    else res.writeHead(200, { 'content-type': 'text/plain' }).end('ok');
  });
  chain = await startChain({ originUrl: origin.url, extraSites: { 'b.example': origin.url }, rekey: 'request', innerArgs: ['--forwarded-user-header', 'X-Remote-User'] });
});

after(async () => {
  await Promise.all(extra.map((p) => p.stop()));
  await chain?.stop();
  await origin?.close();
});

function get(proxyUrl: string, host: string, method = 'GET'): Promise<number> {
  return fetchVia(proxyUrl, host, '/x', method).then((r) => r.status);
}

function fetchVia(proxyUrl: string, host: string, path: string, method = 'GET', headers: Record<string, string> = {}): Promise<{ status: number; body: string }> {
  const proxy = new URL(proxyUrl);
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      { host: proxy.hostname, port: proxy.port, method, path: `http://${host}${path}`, headers: { ...headers, host, 'proxy-authorization': basic('alice', PASSWORDS.alice) } },
      (res) => {
        let body = '';
        res.setEncoding('utf8').on('data', (d: string) => (body += d));
        res.on('end', () => resolve({ status: res.statusCode!, body }));
      },
    );
    req.on('error', reject);
    req.end();
  });
}

const exchanges = async (p: SidecarProcess, labels: Record<string, string> = {}) => metricValue(await p.metrics(), 'sws_key_exchanges_total', { result: 'ok', ...labels });

test('--rekey request: every request exchanges a new key (the most secure, slowest setting), and the inner agrees', async () => {
  const [before, innerBefore] = [await exchanges(chain.outer), await exchanges(chain.inner)];
  for (let i = 0; i < 6; i++) assert.equal(await get(chain.proxy, 'intranet.example'), 200);
  assert.equal((await exchanges(chain.outer)) - before, 6);
  assert.equal(await exchanges(chain.outer, { reason: 'every-request' }), 5, 'after the first (first-request), each was every-request');
  assert.equal((await exchanges(chain.inner)) - innerBefore, 6, 'the inner accepted exactly as many exchanges');
  assert.equal(await exchanges(chain.inner, { result: 'failed' }), 0, 'and refused none');
});

test('--forwarded-user-header: the web server gets the user in the configured header, and a client cannot set it', async () => {
  const r = await fetchVia(chain.proxy, 'intranet.example', '/headers', 'GET', { 'X-Remote-User': 'admin', 'x_remote_user': 'admin' });
  assert.equal(r.status, 200);
  const seen = JSON.parse(r.body) as Record<string, string>;
  assert.equal(seen['x-remote-user'], 'alice', 'the configured header carries the authenticated user, not the spoofed value');
  assert.equal(seen['x_remote_user'], undefined, 'nor an underscore look-alike');
  assert.equal(seen['x-forwarded-user'], undefined, 'the default header is not used when another is configured');
});

test('--rekey destination: the same destination reuses the key; each change of destination exchanges', async () => {
  const outer = await startSidecar(['outer', 'start', '--data', chain.outerData, '--rekey', 'destination']);
  extra.push(outer);
  const innerBefore = await exchanges(chain.inner);
  for (let i = 0; i < 5; i++) assert.equal(await get(outer.url, 'intranet.example'), 200);
  assert.equal(await exchanges(outer), 1, 'S101 once, then S102 → S105 reuse');
  for (const host of ['b.example', 'intranet.example', 'b.example']) assert.equal(await get(outer.url, host), 200);
  assert.equal(await exchanges(outer, { reason: 'destination-changed' }), 3);
  assert.equal(await exchanges(outer), 4);
  assert.equal((await exchanges(chain.inner)) - innerBefore, 4, 'the inner saw the same four exchanges');
});

test('--rekey count:3: a key serves at most three requests', async () => {
  const outer = await startSidecar(['outer', 'start', '--data', chain.outerData, '--rekey', 'count:3']);
  extra.push(outer);
  const innerBefore = await exchanges(chain.inner);
  for (let i = 0; i < 7; i++) assert.equal(await get(outer.url, 'intranet.example'), 200);
  assert.equal(await exchanges(outer), 3, '7 requests at 3 per key need 3 keys');
  assert.equal(await exchanges(outer, { reason: 'request-count' }), 2);
  assert.equal((await exchanges(chain.inner)) - innerBefore, 3, 'the inner saw the same three exchanges');
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

test('a bad $SWS_HEAP_GROWING_PERCENT or $SWS_YOUNG_GC_MIB stops a sidecar start with exit 2 naming the variable', async () => {
  const { sws } = await import('../helpers/e2e.ts');
  const cases = [
    { env: { SWS_HEAP_GROWING_PERCENT: 'lots' }, message: /\$SWS_HEAP_GROWING_PERCENT: must be an integer from 0 to 1000/ },
    { env: { SWS_YOUNG_GC_MIB: '2.5' }, message: /\$SWS_YOUNG_GC_MIB: must be an integer from 0 to 1024/ },
  ];
  for (const { env, message } of cases) {
    for (const role of ['outer', 'inner'] as const) {
      const data = role === 'outer' ? chain.outerData : chain.innerData;
      const r = await sws([role, 'start', '--data', data, '--listen', '127.0.0.1:0'], { env });
      assert.equal(r.code, 2, role);
      assert.match(r.stderr, message, role);
    }
  }
});

/**
 * Destination change (issue 4): one outer, two inner servers, each fronting its own hosts. The
 * outer picks the inner from its inner-server list by the requested host, a server added while
 * it runs is used without a restart, and a host an inner has no site for is refused there with
 * 502 in words. Real `sws` processes, two real origins, loopback only.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { metricValue, startChain, startOrigin, startSidecar, swsOk, viaProxy, type Chain, type Origin, type SidecarProcess } from '../helpers/e2e.ts';

let originA: Origin;
let originB: Origin;
let chain: Chain;
let second: SidecarProcess;

async function get(host: string, path: string): Promise<{ status: number; body: string }> {
  const r = await viaProxy(chain.proxy, host, path);
  return { status: r.status, body: r.body.toString() };
}

before(async () => {
  originA = await startOrigin((req, res) => res.writeHead(200, { 'content-type': 'text/plain' }).end(`A ${req.url}`));
  originB = await startOrigin((req, res) => res.writeHead(200, { 'content-type': 'text/plain' }).end(`B ${req.url}`));
  chain = await startChain({ originUrl: originA.url, host: 'a.example' });
  // A second inner with its own key and data, fronting b.example only; alice registered there too.
  const data = join(chain.dir, 'inner-b');
  await swsOk(['inner', 'init', '--data', data]);
  const innerPem = join(chain.dir, 'inner-b.pem');
  writeFileSync(innerPem, await swsOk(['inner', 'key', '--data', data]));
  await swsOk(['inner', 'site', 'add', 'b.example', '--upstream', originB.url, '--data', data]);
  const alicePem = join(chain.dir, 'alice-for-b.pem');
  writeFileSync(alicePem, await swsOk(['user', 'key', 'alice', '--data', chain.outerData]));
  await swsOk(['client', 'add', 'alice', '--key', alicePem, '--data', data]);
  await swsOk(['acl', 'grant', 'alice', '/**', '--data', data]);
  second = await startSidecar(['inner', 'start', '--data', data]);
  // Added while the outer runs: nosite.example is routed to the second inner, which has no site for it.
  await swsOk(['server', 'add', 'second', '--url', second.url, '--key', innerPem, '--hosts', 'b.example,nosite.example', '--data', chain.outerData]);
});

after(async () => {
  await second?.stop();
  await chain?.stop();
  await Promise.all([originA?.close(), originB?.close()]);
});

test('each host goes to the inner that fronts it, and a server added while the outer runs is used without a restart', async () => {
  // The outer's store watcher notices the new server within a poll; until then b.example has no inner (502).
  let b = await get('b.example', '/one');
  for (const end = Date.now() + 5000; b.status === 502 && Date.now() < end; b = await get('b.example', '/one')) await new Promise((r) => setTimeout(r, 20));
  assert.deepEqual(b, { status: 200, body: 'B /one' });
  assert.deepEqual(await get('a.example', '/two'), { status: 200, body: 'A /two' });
  assert.deepEqual(
    originA.requests.map((r) => r.url),
    ['/two'],
    'origin A saw only its own host',
  );
  assert.deepEqual(
    originB.requests.map((r) => r.url),
    ['/one'],
    'origin B saw only its own host',
  );
  assert.equal(metricValue(await second.metrics(), 'sws_key_exchanges_total', { reason: 'accepted', result: 'ok' }), 1, "alice's session with the second inner is its own");
});

test('a host the outer routes to an inner that has no site for it: 502 in words from that inner, no web server contacted', async () => {
  const before = originA.requests.length + originB.requests.length;
  const r = await get('nosite.example', '/x');
  assert.equal(r.status, 502);
  assert.match(r.body, /no web server is configured at this inner for host nosite\.example/);
  assert.equal(originA.requests.length + originB.requests.length, before);
  assert.equal(metricValue(await second.metrics(), 'sws_rejections_total', { code: 'SWS_ERR_NO_SITE' }), 1, 'counted by its code');
});

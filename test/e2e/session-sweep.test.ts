/**
 * Sessions past their idle timeout leave the inner's memory on their own (a periodic sweep),
 * and the outer's next request on such a session is retried on a new key invisibly (issue 4:
 * "when the inner reports that it no longer knows the session (restart, expiry)"). Real `sws`
 * processes and origin on loopback; the inner's /metrics is the readiness probe (no sleep).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { metricValue, startChain, startOrigin, viaProxy, type Chain, type Origin } from '../helpers/e2e.ts';

const HOST = 'intranet.example';
const IDLE_SECONDS = 10; // the smallest --idle-timeout the inner accepts
let origin: Origin;
let chain: Chain;

async function get(path: string): Promise<{ status: number; body: string }> {
  const r = await viaProxy(chain.proxy, HOST, path);
  return { status: r.status, body: r.body.toString() };
}

const gauge = async (name: string) => metricValue(await chain.inner.metrics(), name);
const outerExchanges = async () => metricValue(await chain.outer.metrics(), 'sws_key_exchanges_total', { result: 'ok' });

before(async () => {
  origin = await startOrigin((req, res) => res.writeHead(200, { 'content-type': 'text/plain', 'cache-control': 'no-store' }).end(`page ${req.url}`));
  chain = await startChain({ originUrl: origin.url, host: HOST, innerArgs: ['--idle-timeout', String(IDLE_SECONDS)] });
});

after(async () => {
  await chain?.stop();
  await origin?.close();
});

test('an idle session is dropped by the inner on its own, and the next request is retried on a new key without the client noticing', async () => {
  assert.deepEqual(await get('/first'), { status: 200, body: 'page /first' });
  assert.equal(await gauge('sws_sessions'), 1);
  const exchanged = await outerExchanges();
  // The sweep runs every quarter of the idle timeout: the session goes within ~1.25 × IDLE_SECONDS.
  const startedWaiting = Date.now();
  let held = await gauge('sws_sessions');
  for (const end = Date.now() + 3 * IDLE_SECONDS * 1000; held > 0 && Date.now() < end; held = await gauge('sws_sessions')) await new Promise((r) => setTimeout(r, 200));
  assert.equal(held, 0, 'the idle session left the inner without any request on it');
  assert.ok(Date.now() - startedWaiting >= (IDLE_SECONDS - 1) * 1000, 'and not before its idle timeout');
  const before = origin.requests.length;
  assert.deepEqual(await get('/second'), { status: 200, body: 'page /second' }, 'the client sees a plain answer');
  assert.equal(origin.requests.length - before, 1, 'the web server saw the request once');
  assert.equal((await outerExchanges()) - exchanged, 1, 'the outer exchanged a new key for it');
  assert.equal(await gauge('sws_sessions'), 1);
});

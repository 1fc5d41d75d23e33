/**
 * Rotating long-term keys without downtime, end to end:
 * - `sws inner key rotate` under a steady stream of requests, the outer moved over by
 *   `sws server update --statement` (the new key endorsed by the old), then `sws inner key
 *   retire`: zero failed requests throughout;
 * - a user's key replaced at both sides (`sws user rekey`, `sws client add --replace`).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { join } from 'node:path';
import { basic, eventually, metricValue, PASSWORDS, startChain, startOrigin, swsOk, type Chain, type Origin } from '../helpers/e2e.ts';

const HOST = 'intranet.example';
let origin: Origin;
let chain: Chain;
type User = keyof typeof PASSWORDS;

function get(user: User, path: string): Promise<{ status: number; body: string }> {
  const proxy = new URL(chain.proxy);
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      { host: proxy.hostname, port: proxy.port, path: `http://${HOST}${path}`, headers: { host: HOST, 'proxy-authorization': basic(user, PASSWORDS[user]) } },
      (res) => {
        let body = '';
        res.setEncoding('utf8').on('data', (c: string) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode!, body }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end();
  });
}

before(async () => {
  origin = await startOrigin((req, res) => res.writeHead(200, { 'content-type': 'text/plain' }).end(`ok ${req.url}`));
  chain = await startChain({ originUrl: origin.url, host: HOST, grants: [['alice', '/**'], ['bob', '/**']] });
});

after(async () => {
  await chain?.stop();
  await origin?.close();
});

interface Worker {
  readonly user: User;
  /** Start times of the requests that completed with 200. */
  readonly done: number[];
  readonly failures: string[];
}

test('inner key rotation under a steady stream of requests: both keys accepted during the overlap, the outer moves over, zero failed requests', async () => {
  const workers: Worker[] = (['alice', 'alice', 'bob', 'bob'] as const).map((user) => ({ user, done: [], failures: [] }));
  let running = true;
  const loops = workers.map(async (w, n) => {
    for (let i = 0; running; i++) {
      const started = Date.now();
      try {
        const r = await get(w.user, `/docs/${n}/${i}`);
        if (r.status === 200 && r.body === `ok /docs/${n}/${i}`) w.done.push(started);
        else w.failures.push(`${r.status} ${r.body}`);
      } catch (e) {
        w.failures.push(String(e));
      }
    }
  });
  /** Resolves once every worker completed `n` requests that started at or after `since`. */
  const eachCompleted = (since: number, n: number, what: string) =>
    eventually(() => (workers.every((w) => w.done.filter((t) => t >= since).length >= n) ? true : undefined), 20_000, what);

  try {
    await eachCompleted(0, 3, 'the stream to warm up');
    const oldKey = (await swsOk(['inner', 'key', '--data', chain.innerData])).trim();
    const statement = join(chain.dir, 'statement.json');
    await swsOk(['inner', 'key', 'rotate', '--overlap', '600', '--statement-out', statement, '--data', chain.innerData]);
    const { newKeyId, previousKeyId } = JSON.parse(readFileSync(statement, 'utf8')) as { newKeyId: string; previousKeyId: string };
    // The running inner imported the new key and answers with both.
    await eventually(() => chain.inner.logs.find((l) => l.msg === 'inner key ring loaded' && l.current === `sha256:${newKeyId}`), 10_000, 'the inner to load the new key');
    const loaded = chain.inner.logs.find((l) => l.msg === 'inner key ring loaded' && l.current === `sha256:${newKeyId}`)!;
    assert.deepEqual(loaded.innerKeys, [`sha256:${newKeyId}`, `sha256:${previousKeyId}`]);
    await eachCompleted(Date.now(), 2, 'requests during the overlap, on the old key');

    const exchangesBefore = metricValue(await chain.outer.metrics(), 'sws_key_exchanges_total', { result: 'ok' });
    const updated = await swsOk(['server', 'update', 'main', '--statement', statement, '--data', chain.outerData]);
    assert.match(updated, new RegExp(`key changed from sha256:${previousKeyId} \\(endorsed by it\\)`));
    assert.equal((await swsOk(['inner', 'key', '--data', chain.innerData])).includes(oldKey), false);
    // Both users' channels exchange again, now with the new key.
    const until = Date.now() + 10_000;
    while (metricValue(await chain.outer.metrics(), 'sws_key_exchanges_total', { result: 'ok' }) < exchangesBefore + 2) {
      if (Date.now() > until) throw new Error('the outer did not exchange with the new key');
      await new Promise((r) => setTimeout(r, 20));
    }
    await eachCompleted(Date.now(), 3, 'requests on the new key');

    // End the overlap: the old key stops answering and its sessions end; the stream goes on.
    await swsOk(['inner', 'key', 'retire', '--data', chain.innerData]);
    const retired = await eventually(() => chain.inner.logs.find((l) => l.msg === 'inner key retired'), 5000, 'the inner to retire the old key');
    assert.deepEqual(retired.retired, [`sha256:${previousKeyId}`]);
    await eachCompleted(Date.now(), 3, 'requests after the retirement');
  } finally {
    running = false;
    await Promise.all(loops);
  }
  const total = workers.reduce((n, w) => n + w.done.length, 0);
  assert.deepEqual(
    workers.flatMap((w) => w.failures),
    [],
    `zero failed requests out of ${total}`,
  );
  assert.ok(total >= 40, `a steady stream (${total} requests)`);
  const innerMetrics = await chain.inner.metrics();
  assert.equal(metricValue(innerMetrics, 'sws_rejections_total', { code: 'SWS_ERR_UNKNOWN_KEY' }), 0, 'no exchange ever named a key the inner did not hold');
});

test("a user's key is replaced at both sides: after `user rekey` the inner refuses the new key until `client add --replace`; then it serves the user again", async () => {
  assert.equal((await get('bob', '/before')).status, 200);
  await swsOk(['user', 'rekey', 'bob', '--data', chain.outerData]);
  // The outer signs with the new key from its next exchange; the inner does not know that key yet.
  const until = Date.now() + 5000;
  let refused = { status: 200, body: '' };
  while (refused.status === 200 && Date.now() < until) {
    refused = await get('bob', '/during');
    if (refused.status === 200) await new Promise((res) => setTimeout(res, 20));
  }
  assert.equal(refused.status, 502);
  assert.match(refused.body, /SWS_ERR_UNKNOWN_USER/);
  const pem = join(chain.dir, 'bob-new.pem');
  writeFileSync(pem, await swsOk(['user', 'key', 'bob', '--data', chain.outerData]));
  await swsOk(['client', 'add', 'bob', '--key', pem, '--replace', '--data', chain.innerData]);
  const back = Date.now() + 5000;
  let r = { status: 0, body: '' };
  while (r.status !== 200 && Date.now() < back) {
    r = await get('bob', '/after');
    if (r.status !== 200) await new Promise((res) => setTimeout(res, 20));
  }
  assert.equal(r.status, 200);
  assert.equal(r.body, 'ok /after');
});

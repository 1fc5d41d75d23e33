/**
 * `sws outer start --password-checks N`: how many password checks (scrypt, 32 MiB each at the
 * default cost) the outer runs at once, which bounds what a burst of logins, or of wrong
 * passwords from anyone who can reach the proxy, adds to its memory. And the same credentials
 * arriving on many connections at once cost one check.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { request as httpRequest } from 'node:http';
import { basic, metricValue, PASSWORDS, startChain, startOrigin, sws, type Chain, type Origin } from '../helpers/e2e.ts';

const MiB = 1048576;
let origin: Origin;
let chain: Chain;

before(async () => {
  origin = await startOrigin((_req, res) => res.writeHead(200, { 'content-type': 'text/plain' }).end('ok'));
  chain = await startChain({ originUrl: origin.url, outerArgs: ['--password-checks', '1'] });
});

after(async () => {
  await chain?.stop();
  await origin?.close();
});

/** One request on a new connection (agent: false), as a browser's parallel connections are. */
function getAs(user: string, password: string): Promise<number> {
  const proxy = new URL(chain.proxy);
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      { host: proxy.hostname, port: proxy.port, agent: false, path: 'http://intranet.example/', headers: { host: 'intranet.example', 'proxy-authorization': basic(user, password) } },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode!));
      },
    );
    req.on('error', reject);
    req.end();
  });
}

test('wrong passwords arriving together are checked one at a time: the outer grows by one check, not six', async () => {
  const refused = async () => metricValue(await chain.outer.metrics(), 'sws_rejections_total', { code: 'SWS_ERR_PROXY_AUTH' });
  const refusedBefore = await refused();
  const before = chain.outer.peakRss();
  const statuses = await Promise.all(Array.from({ length: 6 }, (_, i) => getAs('alice', `wrong-${i}`)));
  assert.deepEqual(statuses, Array(6).fill(407));
  const grew = (chain.outer.peakRss() - before) / MiB;
  // One scrypt holds 32 MiB; six at once would add ~190 MiB (two, 64).
  assert.ok(grew < 56, `peak RSS grew by ${grew.toFixed(1)} MiB`);
  assert.equal((await refused()) - refusedBefore, 6, 'each refusal counted');
});

test('the right password on many new connections at once: every one is served', async () => {
  const statuses = await Promise.all(Array.from({ length: 6 }, () => getAs('alice', PASSWORDS.alice)));
  assert.deepEqual(statuses, Array(6).fill(200));
});

test('--password-checks outside 1–64 stops the start with exit 2', async () => {
  for (const bad of ['0', '65', 'two']) {
    const r = await sws(['outer', 'start', '--data', chain.outerData, '--listen', '127.0.0.1:0', '--password-checks', bad]);
    assert.equal(r.code, 2, `${bad}: ${r.stderr}`);
    assert.match(r.stderr, /--password-checks.*must be an integer from 1 to 64/);
  }
});

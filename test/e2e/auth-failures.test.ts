/**
 * `sws outer start --auth-failures N`: a client address gets N wrong passwords a minute; past
 * that it is answered 429 with Retry-After and no password is checked (not even a right one),
 * while credentials it already proved keep working and other addresses are not affected.
 * Loopback has a whole /8, so a second client address is 127.0.0.2.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { request as httpRequest } from 'node:http';
import { basic, metricValue, PASSWORDS, startChain, startOrigin, sws, type Chain, type Origin } from '../helpers/e2e.ts';

let origin: Origin;
let chain: Chain;

before(async () => {
  origin = await startOrigin((_req, res) => res.writeHead(200, { 'content-type': 'text/plain' }).end('ok'));
  chain = await startChain({ originUrl: origin.url, outerArgs: ['--auth-failures', '3'], grants: [['alice', '/**'], ['bob', '/**']] });
});

after(async () => {
  await chain?.stop();
  await origin?.close();
});

interface Answer {
  status: number;
  retryAfter: string | undefined;
  body: string;
}

/** One request through the outer on a new connection from `from`. */
function getAs(user: string, password: string, from = '127.0.0.1'): Promise<Answer> {
  const proxy = new URL(chain.proxy);
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      { host: proxy.hostname, port: proxy.port, localAddress: from, agent: false, path: 'http://intranet.example/', headers: { host: 'intranet.example', 'proxy-authorization': basic(user, password) } },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (body += d));
        res.on('end', () => resolve({ status: res.statusCode!, retryAfter: res.headers['retry-after'], body }));
      },
    );
    req.on('error', reject);
    req.end();
  });
}

test('past its allowance an address gets 429 with Retry-After, for right and wrong passwords alike; others are served', async () => {
  const limited = async () => metricValue(await chain.outer.metrics(), 'sws_rejections_total', { code: 'SWS_ERR_AUTH_RATE_LIMITED' });
  // Proven before the guessing starts: stays usable (no check needed, nothing revealed).
  assert.equal((await getAs('bob', PASSWORDS.bob)).status, 200);
  for (let i = 0; i < 3; i++) assert.equal((await getAs('alice', `wrong-${i}`)).status, 407, `guess ${i}`);
  const before = await limited();
  const wrong = await getAs('alice', 'wrong-3');
  assert.equal(wrong.status, 429);
  assert.ok(Number(wrong.retryAfter) >= 1 && Number(wrong.retryAfter) <= 20, `Retry-After: ${wrong.retryAfter}`);
  assert.match(wrong.body, /too many wrong passwords/);
  const right = await getAs('alice', PASSWORDS.alice);
  assert.equal(right.status, 429, 'a right password is not checked either');
  assert.equal((await getAs('bob', PASSWORDS.bob)).status, 200, 'already proven credentials still pass');
  assert.equal((await getAs('alice', PASSWORDS.alice, '127.0.0.2')).status, 200, 'another address has its own allowance');
  assert.equal((await limited()) - before, 2, 'each refusal counted');
});

test('--auth-failures must be a whole number from 0; a bad value stops the start with exit 2', async () => {
  for (const bad of ['-1', 'ten', '1.5']) {
    const r = await sws(['outer', 'start', '--data', chain.outerData, '--listen', '127.0.0.1:0', '--auth-failures', bad]);
    assert.equal(r.code, 2, `${bad}: ${r.stderr}`);
    assert.match(r.stderr, /--auth-failures/);
  }
});

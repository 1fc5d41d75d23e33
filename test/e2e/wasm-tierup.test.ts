/**
 * A sidecar's peak memory once it serves traffic (issue 4: peak RSS no higher than a plain Node
 * forwarder's). undici parses HTTP/1.1 with llhttp compiled to WebAssembly; V8's TurboFan
 * recompiling that hot parser held ~30 MiB for a few hundred ms, in both sidecars, soon after
 * their first requests (measured with `SWS_WASM_LIFTOFF_ONLY=0`: +29 to +35 MiB in this test's
 * load against +3 to +12 with the default; docs/PERFORMANCE.md, "WebAssembly tier-up").
 * `sws … start` keeps the parser in Liftoff, so the peak under load stays near the RSS at
 * rest. Both sidecars run with the image's `--max-semi-space-size=4`, as in production, so
 * the young generation's growth does not hide what this measures.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { Agent, request as httpRequest } from 'node:http';
import { basic, PASSWORDS, startChain, startOrigin, type Chain, type Origin } from '../helpers/e2e.ts';

const MiB = 1048576;
let origin: Origin;
let chain: Chain;
let agent: Agent;

before(async () => {
  origin = await startOrigin((_req, res) => res.writeHead(200, { 'content-type': 'text/plain' }).end('x'.repeat(1024)));
  chain = await startChain({ originUrl: origin.url, nodeArgs: ['--max-semi-space-size=4'] });
  agent = new Agent({ keepAlive: true, maxSockets: 8 });
});

after(async () => {
  agent?.destroy();
  await chain?.stop();
  await origin?.close();
});

function get(): Promise<number> {
  const proxy = new URL(chain.proxy);
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      { host: proxy.hostname, port: proxy.port, agent, path: 'http://intranet.example/page', headers: { host: 'intranet.example', 'proxy-authorization': basic('alice', PASSWORDS.alice) } },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode!));
      },
    );
    req.on('error', reject);
    req.end();
  });
}

/** VmHWM back to the current RSS (Linux), so the peak measured next is this phase's alone. */
function resetPeak(pid: number): boolean {
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, '5');
    return true;
  } catch {
    return false;
  }
}

test('800 small requests after the first one raise neither sidecar\'s peak RSS by 20 MiB', async (t) => {
  // The first request pays the one-time costs this test is not about (the password check's
  // 32 MiB scrypt, the key exchange, the first compilations).
  assert.equal(await get(), 200);
  const pids = { outer: chain.outer.child.pid!, inner: chain.inner.child.pid! };
  if (!resetPeak(pids.outer) || !resetPeak(pids.inner)) return t.skip('cannot reset VmHWM here (/proc/PID/clear_refs not writable)');
  const before = { outer: chain.outer.peakRss(), inner: chain.inner.peakRss() };
  const statuses = await Promise.all(Array.from({ length: 8 }, async () => {
    const seen: number[] = [];
    for (let i = 0; i < 100; i++) seen.push(await get());
    return seen;
  }));
  assert.deepEqual(new Set(statuses.flat()), new Set([200]));
  const grew = { outer: (chain.outer.peakRss() - before.outer) / MiB, inner: (chain.inner.peakRss() - before.inner) / MiB };
  assert.ok(grew.outer < 20 && grew.inner < 20, `peak RSS grew by ${grew.outer.toFixed(1)} MiB (outer) and ${grew.inner.toFixed(1)} MiB (inner)`);
});

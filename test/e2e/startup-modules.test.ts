/**
 * What an idle sidecar costs, in every pod that runs one: how often its main thread wakes up
 * (prom-client's event-loop-delay monitor sampled every 10 ms by default, ~107 wake-ups a
 * second; now every 100 ms), and what it has loaded: zod (~6 MiB of RSS per process) is left
 * to the commands that validate input with it. Both sidecars are started through the CLI with a preload that
 * records, at exit, every module loaded through `require` (test/helpers/loaded-modules.mjs);
 * the chain serves a request, then stops. `sws acl grant` under the same preload is the
 * control: it does load zod, so the probe would see it.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { basic, PASSWORDS, ROOT, startChain, startOrigin, swsOk, type Chain, type Origin } from '../helpers/e2e.ts';

const outDir = mkdtempSync(join(tmpdir(), 'sws-loaded-'));
const probe = pathToFileURL(join(ROOT, 'test', 'helpers', 'loaded-modules.mjs')).href;
const env = { NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --import=${probe}`.trim(), SWS_TEST_LOADED_MODULES_DIR: outDir };

let origin: Origin;
let chain: Chain | undefined;

before(async () => {
  origin = await startOrigin((_req, res) => res.writeHead(200, { 'content-type': 'text/plain' }).end('ok'));
  chain = await startChain({ originUrl: origin.url, env });
});

after(async () => {
  await chain?.stop();
  await origin?.close();
  rmSync(outDir, { recursive: true, force: true });
});

function getVia(proxyUrl: string): Promise<number> {
  const proxy = new URL(proxyUrl);
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      { host: proxy.hostname, port: proxy.port, path: 'http://intranet.example/', headers: { host: 'intranet.example', 'proxy-authorization': basic('alice', PASSWORDS.alice) } },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode!));
      },
    );
    req.on('error', reject);
    req.end();
  });
}

/** The recorded module lists, by the command words after `sws`. */
function recorded(): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const f of readdirSync(outDir)) {
    const r = JSON.parse(readFileSync(join(outDir, f), 'utf8')) as { argv: string[]; modules: string[] };
    out.set(r.argv.slice(0, 3).join(' '), r.modules);
  }
  return out;
}

/** Times the process's main thread went to sleep and was woken (it blocks in epoll when idle). */
function mainThreadWakeups(pid: number): number {
  const status = readFileSync(`/proc/${pid}/task/${pid}/status`, 'utf8');
  return Number(/^voluntary_ctxt_switches:\s+(\d+)$/m.exec(status)![1]);
}

test('an idle inner and outer wake up about twenty times a second, not a hundred', async () => {
  const pids = [chain!.inner.child.pid!, chain!.outer.child.pid!];
  const before = pids.map(mainThreadWakeups);
  await sleep(2000);
  const perSecond = pids.map((pid, i) => (mainThreadWakeups(pid) - before[i]!) / 2);
  // Expected: 10 store polls (PRAGMA data_version) + 10 event-loop-delay samples per second.
  for (const [i, name] of ['inner', 'outer'].entries()) assert.ok(perSecond[i]! < 40, `${name}: ${perSecond[i]} wake-ups per second`);
});

const fromPackage = (modules: string[], pkg: string) => modules.some((m) => m.includes(`/node_modules/${pkg}/`));

test('a serving inner and outer have not loaded zod; a command that validates input has', async () => {
  assert.equal(await getVia(chain!.proxy), 200);
  await swsOk(['acl', 'grant', 'bob', '/docs/**', '--data', chain!.innerData], { env });
  await chain!.outer.stop();
  await chain!.inner.stop();

  const lists = recorded();
  const inner = lists.get('inner start --data');
  const outer = lists.get('outer start --data');
  const grant = lists.get('acl grant bob');
  assert.ok(inner && outer && grant, `recorded: ${[...lists.keys()].join('; ')}`);
  for (const [name, modules] of [['inner', inner], ['outer', outer]] as const) {
    assert.ok(fromPackage(modules, 'better-sqlite3'), `${name}: the probe saw its store's better-sqlite3`);
    assert.ok(!fromPackage(modules, 'zod'), `${name} loaded zod`);
  }
  assert.ok(fromPackage(grant, 'zod'), 'sws acl grant validates with zod');
});

/**
 * `sws demo`: a sample WWW server, an inner and an outer, each with its own temporary data
 * dir, two users and their grants, all on 127.0.0.1 only. `--check` runs a scripted round
 * trip through the real sidecars and reports each step.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, request as httpRequest, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEFAULT_REKEY_POLICY } from '../core/keyrotation.ts';
import { InnerSidecar } from '../sidecar-inner/server.ts';
import { INNER_DEFAULTS } from '../sidecar-inner/config.ts';
import { OuterSidecar } from '../sidecar-outer/server.ts';
import { OUTER_DEFAULTS } from '../sidecar-outer/config.ts';
import { aclRules, clients, initStore, innerKey, innerServers, openStore, outerUsers, sites, type Store } from '../store/index.ts';

export const DEMO_HOST = 'intranet.example';
export const DEMO_USERS = {
  alice: { password: 'alice-demo-password', grants: [{ pattern: '/**' }] },
  bob: { password: 'bob-demo-password', grants: [{ pattern: '/docs/**', methods: 'GET,HEAD' }] },
} as const;

export interface Demo {
  readonly dir: string;
  readonly origin: Server;
  readonly originUrl: string;
  readonly inner: InnerSidecar;
  readonly outer: OuterSidecar;
  readonly proxyUrl: string;
  stop(): Promise<void>;
}

function sampleSite(): Server {
  return createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    const user = req.headers['x-forwarded-user'];
    if (url.pathname === '/docs/welcome.html') {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'max-age=60' });
      res.end('<!doctype html><title>Welcome</title><h1>Welcome to the intranet</h1><p>This page crossed the network encrypted by sws.</p>\n');
    } else if (url.pathname === '/admin/secret.html') {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
      res.end('<!doctype html><title>Admin</title><h1>Admins only</h1>\n');
    } else if (url.pathname === '/whoami') {
      res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8' });
      res.end(`you are ${String(user)}\n`);
    } else if (url.pathname === '/echo' && req.method === 'POST') {
      res.writeHead(200, { 'content-type': req.headers['content-type'] ?? 'application/octet-stream' });
      req.pipe(res);
    } else if (url.pathname === '/') {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
      res.end('<!doctype html><title>Intranet</title><ul><li><a href="/docs/welcome.html">docs</a><li><a href="/admin/secret.html">admin</a><li><a href="/whoami">who am I</a></ul>\n');
    } else {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
    }
  });
}

function listenLocal(server: Server): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port));
  });
}

/** Sets everything up and starts it; the caller must call stop(). */
export async function startDemo(opts: { logLevel?: string } = {}): Promise<Demo> {
  const dir = mkdtempSync(join(tmpdir(), 'sws-demo-'));
  const innerDir = join(dir, 'inner');
  const outerDir = join(dir, 'outer');
  const origin = sampleSite();
  const stores: Store[] = [];
  let inner: InnerSidecar | undefined;
  let outer: OuterSidecar | undefined;
  try {
    const originUrl = `http://127.0.0.1:${await listenLocal(origin)}`;
    const env = { ...process.env, SWS_MASTER_KEY: '' };
    const innerStore = (await initStore(innerDir, 'inner', { env, actor: 'demo' })).store;
    stores.push(innerStore);
    const outerStore = (await initStore(outerDir, 'outer', { env, actor: 'demo' })).store;
    stores.push(outerStore);
    sites(innerStore).add({ host: DEMO_HOST, upstream: originUrl });
    for (const [name, u] of Object.entries(DEMO_USERS)) {
      const added = await outerUsers(outerStore).add(name, u.password);
      await clients(innerStore).add({ user: name, publicKeyPem: added.publicKeyPem });
      for (const g of u.grants) aclRules(innerStore).grant({ user: name, ...g });
    }
    const innerPem = innerKey(innerStore).publicKeyPem();
    for (const s of stores.splice(0)) s.close();

    const logLevel = opts.logLevel ?? 'warn';
    inner = await InnerSidecar.start({
      ...INNER_DEFAULTS,
      dataDir: innerDir,
      listen: { host: '127.0.0.1', port: 0 },
      adminListen: { host: '127.0.0.1', port: 0 },
      logLevel,
      policy: {},
    });
    const innerUrl = `http://127.0.0.1:${inner.address.port}`;
    const os = openStore(outerDir, { expectRole: 'outer', actor: 'demo' });
    await innerServers(os).add({ name: 'intranet', url: innerUrl, publicKeyPem: innerPem, hosts: [DEMO_HOST] });
    os.close();
    outer = await OuterSidecar.start({
      ...OUTER_DEFAULTS,
      dataDir: outerDir,
      listen: { host: '127.0.0.1', port: 0 },
      adminListen: { host: '127.0.0.1', port: 0 },
      rekey: DEFAULT_REKEY_POLICY,
      logLevel,
    });
    const o = outer;
    const i = inner;
    return {
      dir,
      origin,
      originUrl,
      inner: i,
      outer: o,
      proxyUrl: `http://127.0.0.1:${o.address.port}`,
      async stop() {
        await o.stop(1000);
        await i.stop(1000);
        await new Promise<void>((r) => {
          origin.closeAllConnections();
          origin.close(() => r());
        });
        rmSync(dir, { recursive: true, force: true });
      },
    };
  } catch (err) {
    for (const s of stores) s.close();
    await outer?.stop(0);
    await inner?.stop(0);
    origin.close();
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
}

export interface ProxyAnswer {
  readonly status: number;
  readonly headers: IncomingMessage['headers'];
  readonly body: string;
}

/** One request through the outer as a forward proxy, the way curl -x does it. */
export function viaProxy(proxyUrl: string, url: string, opts: { user?: string; password?: string; method?: string; body?: string } = {}): Promise<ProxyAnswer> {
  const proxy = new URL(proxyUrl);
  const headers: Record<string, string> = { host: new URL(url).host };
  if (opts.user !== undefined) headers['proxy-authorization'] = `Basic ${Buffer.from(`${opts.user}:${opts.password ?? ''}`).toString('base64')}`;
  if (opts.body !== undefined) headers['content-type'] = 'text/plain';
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: proxy.hostname, port: proxy.port, method: opts.method ?? 'GET', path: url, headers }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(opts.body);
  });
}

export interface CheckStep {
  readonly name: string;
  readonly ok: boolean;
  readonly saw: string;
}

/** The scripted round trip of `sws demo --check`. */
export async function checkDemo(demo: Demo): Promise<CheckStep[]> {
  const p = demo.proxyUrl;
  const a = DEMO_USERS.alice;
  const b = DEMO_USERS.bob;
  const base = `http://${DEMO_HOST}`;
  const steps: CheckStep[] = [];
  const step = async (name: string, run: () => Promise<[boolean, string]>) => {
    try {
      const [ok, saw] = await run();
      steps.push({ name, ok, saw });
    } catch (err) {
      steps.push({ name, ok: false, saw: `error: ${(err as Error).message}` });
    }
  };
  await step('alice reads /docs/welcome.html through the outer and inner', async () => {
    const r = await viaProxy(p, `${base}/docs/welcome.html`, { user: 'alice', password: a.password });
    return [r.status === 200 && r.body.includes('Welcome to the intranet'), `${r.status}, ${r.body.length} bytes`];
  });
  await step('the web server sees the authenticated user in X-Forwarded-User', async () => {
    const r = await viaProxy(p, `${base}/whoami`, { user: 'alice', password: a.password });
    return [r.status === 200 && r.body.trim() === 'you are alice', `${r.status} "${r.body.trim()}"`];
  });
  await step('a POST body goes through and comes back intact', async () => {
    const text = 'hello through sws ✓';
    const r = await viaProxy(p, `${base}/echo`, { user: 'alice', password: a.password, method: 'POST', body: text });
    return [r.status === 200 && r.body === text, `${r.status} "${r.body}"`];
  });
  await step('bob is denied /admin/secret.html by the inner ACL (403)', async () => {
    const r = await viaProxy(p, `${base}/admin/secret.html`, { user: 'bob', password: b.password });
    return [r.status === 403, `${r.status} "${r.body.trim()}"`];
  });
  await step('bob may read /docs/welcome.html', async () => {
    const r = await viaProxy(p, `${base}/docs/welcome.html`, { user: 'bob', password: b.password });
    return [r.status === 200, `${r.status}`];
  });
  await step('no credentials: 407 with a Basic challenge', async () => {
    const r = await viaProxy(p, `${base}/docs/welcome.html`);
    return [r.status === 407 && /Basic realm="sws"/.test(String(r.headers['proxy-authenticate'])), `${r.status} ${String(r.headers['proxy-authenticate'])}`];
  });
  await step('a wrong password: 407', async () => {
    const r = await viaProxy(p, `${base}/docs/welcome.html`, { user: 'alice', password: 'wrong' });
    return [r.status === 407, `${r.status}`];
  });
  await step('a host no inner fronts: 502, nothing sent in clear', async () => {
    const r = await viaProxy(p, 'http://elsewhere.example/', { user: 'alice', password: a.password });
    return [r.status === 502, `${r.status} "${r.body.trim()}"`];
  });
  await step('the outer counted key exchanges (S101: first request exchanges)', async () => {
    const text = await demo.outer.metrics.registry.getSingleMetricAsString('sws_key_exchanges_total');
    const n = [...text.matchAll(/^sws_key_exchanges_total\{[^}]*result="ok"[^}]*\} (\d+)/gm)].reduce((s, m) => s + Number(m[1]), 0);
    return [n >= 2, `${n} exchanges (one per user and inner)`];
  });
  return steps;
}

export function demoInstructions(demo: Demo): string {
  const a = DEMO_USERS.alice;
  const b = DEMO_USERS.bob;
  const p = demo.proxyUrl;
  return [
    'sws demo is running on 127.0.0.1 only:',
    `  web server (unchanged)   ${demo.originUrl}   serves http://${DEMO_HOST}/`,
    `  inner sidecar            http://127.0.0.1:${demo.inner.address.port}   admin http://127.0.0.1:${demo.inner.adminAddress?.port}/metrics`,
    `  outer sidecar (a proxy)  ${p}   admin http://127.0.0.1:${demo.outer.adminAddress?.port}/metrics`,
    `  data dirs                ${demo.dir}`,
    '',
    'Try it:',
    `  curl -x ${p} -U alice:${a.password} http://${DEMO_HOST}/docs/welcome.html`,
    `  curl -x ${p} -U alice:${a.password} http://${DEMO_HOST}/whoami`,
    `  curl -x ${p} -U bob:${b.password} http://${DEMO_HOST}/admin/secret.html     # 403: bob may only read /docs/**`,
    `  curl -x ${p} http://${DEMO_HOST}/docs/welcome.html                          # 407: log in first`,
    `  curl http://127.0.0.1:${demo.outer.adminAddress?.port}/metrics | grep sws_`,
    '',
    'Press Ctrl-C to stop; the temporary data dirs are removed.',
  ].join('\n');
}

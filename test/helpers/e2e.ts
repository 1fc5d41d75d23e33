/**
 * End-to-end harness: runs the real `sws` binary, starts real sidecar processes on
 * OS-chosen loopback ports, and waits for readiness by probe (the "listening" log line,
 * then GET /readyz), never by sleeping. Every process and server started here is stopped by
 * the returned handle.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer, request as httpRequest, type IncomingHttpHeaders, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { request } from 'undici';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const SWS = join(ROOT, 'bin', 'sws.js');

export interface RunResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs `sws ARGS` to completion. */
export function sws(args: readonly string[], opts: { stdin?: string; env?: NodeJS.ProcessEnv } = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [SWS, ...args], { env: { ...process.env, ...opts.env }, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
    child.stdin.end(opts.stdin ?? '');
  });
}

/** Runs `sws ARGS` and fails with its output unless it exits 0. */
export async function swsOk(args: readonly string[], opts: { stdin?: string; env?: NodeJS.ProcessEnv } = {}): Promise<string> {
  const r = await sws(args, opts);
  if (r.code !== 0) throw new Error(`sws ${args.join(' ')} exited ${r.code}\n${r.stderr}${r.stdout}`);
  return r.stdout;
}

export interface SidecarProcess {
  readonly child: ChildProcess;
  readonly url: string;
  readonly adminUrl: string;
  readonly port: number;
  /** Every JSON log line so far. */
  readonly logs: Record<string, unknown>[];
  metrics(): Promise<string>;
  /** Peak resident set size so far (Linux VmHWM), in bytes. */
  peakRss(): number;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/**
 * Starts `sws inner start` / `sws outer start` and resolves once it listens and /readyz says
 * ready. `nodeArgs` go to node itself (flags NODE_OPTIONS refuses, as the image's entrypoint gives them).
 */
export function startSidecar(args: readonly string[], env: NodeJS.ProcessEnv = {}, port = 0, nodeArgs: readonly string[] = []): Promise<SidecarProcess> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...nodeArgs, SWS, ...args, '--listen', `127.0.0.1:${port}`, '--admin-listen', '127.0.0.1:0'], {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const logs: Record<string, unknown>[] = [];
    let stderr = '';
    let buf = '';
    let settled = false;
    const fail = (why: string) => {
      if (settled) return;
      settled = true;
      child.kill('SIGKILL');
      reject(new Error(`${args.join(' ')}: ${why}\n${stderr}`));
    };
    child.stderr!.setEncoding('utf8').on('data', (d) => (stderr += d));
    child.on('exit', (code) => fail(`exited with ${code} before it was ready`));
    child.stdout!.setEncoding('utf8').on('data', (d: string) => {
      buf += d;
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        let rec: Record<string, unknown>;
        try {
          rec = JSON.parse(line);
        } catch {
          continue;
        }
        logs.push(rec);
        if (!settled && typeof rec.msg === 'string' && rec.msg.endsWith('sidecar listening')) {
          const url = `http://${rec.listen as string}`;
          const adminUrl = `http://${rec.admin as string}`;
          void waitReady(adminUrl).then(
            () => {
              settled = true;
              child.removeAllListeners('exit');
              const exited = new Promise<number | null>((r) => child.once('exit', (c) => r(c)));
              resolve({
                child,
                url,
                adminUrl,
                port: Number(new URL(url).port),
                logs,
                metrics: async () => (await request(`${adminUrl}/metrics`)).body.text(),
                peakRss: () => peakRss(child.pid!),
                stop: async (signal = 'SIGTERM') => {
                  if (child.exitCode === null && child.signalCode === null) child.kill(signal);
                  return exited;
                },
              });
            },
            (err) => fail(String(err)),
          );
        }
      }
    });
  });
}

async function waitReady(adminUrl: string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    try {
      const r = await request(`${adminUrl}/readyz`);
      await r.body.dump();
      if (r.statusCode === 200) return;
    } catch {
      // not accepting yet
    }
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error('never became ready');
}

export function peakRss(pid: number): number {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const m = /VmHWM:\s+(\d+) kB/.exec(status);
    return m ? Number(m[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

/** Sum of a Prometheus counter's samples whose labels include `match`. */
export function metricValue(text: string, name: string, match: Record<string, string> = {}): number {
  let total = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const m = /^([a-z_]+)(?:\{([^}]*)\})?\s+([0-9.eE+-]+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const labels = Object.fromEntries([...(m[2] ?? '').matchAll(/([a-z_]+)="([^"]*)"/g)].map((x) => [x[1], x[2]]));
    if (Object.entries(match).every(([k, v]) => labels[k] === v)) total += Number(m[3]);
  }
  return total;
}

export interface Origin {
  readonly server: Server;
  readonly url: string;
  readonly port: number;
  readonly requests: { method: string; url: string; headers: IncomingMessage['headers'] }[];
  close(): Promise<void>;
}

/** A real WWW server (node:http) on a loopback port chosen by the OS. */
export async function startOrigin(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<Origin> {
  const requests: Origin['requests'] = [];
  const server = createServer((req, res) => {
    requests.push({ method: req.method!, url: req.url!, headers: req.headers });
    handler(req, res);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as AddressInfo).port;
  return {
    server,
    url: `http://127.0.0.1:${port}`,
    port,
    requests,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

export interface Chain {
  readonly dir: string;
  readonly innerData: string;
  readonly outerData: string;
  readonly inner: SidecarProcess;
  readonly outer: SidecarProcess;
  readonly proxy: string;
  /** Restart the inner on the same data dir (new process, new port unless given). */
  restartInner(): Promise<SidecarProcess>;
  stop(): Promise<void>;
}

export const PASSWORDS = { alice: 'correct horse battery staple', bob: 'bob-secret-π' } as const;

/**
 * Builds the whole chain through the real CLI: inner init + site + users' keys + grants,
 * outer init + server + users, then starts both sidecars.
 */
export async function startChain(opts: {
  originUrl: string;
  host?: string;
  rekey?: string;
  grants?: [user: string, pattern: string, ...flags: string[]][];
  innerArgs?: string[];
  outerArgs?: string[];
  /** Extra hosts the inner serves (host → upstream URL) and the outer routes to it. */
  extraSites?: Record<string, string>;
  /** Put something (a recording relay, a proxy) between outer and inner: returns the URL the outer should use. */
  via?: (innerUrl: string) => Promise<string>;
  env?: NodeJS.ProcessEnv;
  /** Node flags for both sidecars (startSidecar). */
  nodeArgs?: readonly string[];
}): Promise<Chain> {
  const dir = mkdtempSync(join(tmpdir(), 'sws-e2e-'));
  const innerData = join(dir, 'inner');
  const outerData = join(dir, 'outer');
  const host = opts.host ?? 'intranet.example';
  await swsOk(['inner', 'init', '--data', innerData]);
  await swsOk(['outer', 'init', '--data', outerData]);
  const innerPem = join(dir, 'inner.pem');
  writeFileSync(innerPem, await swsOk(['inner', 'key', '--data', innerData]));
  const siteList: [string, string][] = [[host, opts.originUrl], ...Object.entries(opts.extraSites ?? {})];
  const hosts = siteList.map(([h]) => h);
  for (const [h, up] of siteList) await swsOk(['inner', 'site', 'add', h, '--upstream', up, '--data', innerData]);
  for (const [user, password] of Object.entries(PASSWORDS)) {
    await swsOk(['user', 'add', user, '--password-stdin', '--data', outerData], { stdin: `${password}\n` });
    const pem = join(dir, `${user}.pem`);
    writeFileSync(pem, await swsOk(['user', 'key', user, '--data', outerData]));
    await swsOk(['client', 'add', user, '--key', pem, '--data', innerData]);
  }
  for (const [user, pattern, ...flags] of opts.grants ?? [['alice', '/**']]) await swsOk(['acl', 'grant', user, pattern, ...flags, '--data', innerData]);
  let inner = await startSidecar(['inner', 'start', '--data', innerData, ...(opts.innerArgs ?? [])], opts.env, 0, opts.nodeArgs);
  const innerUrl = opts.via ? await opts.via(inner.url) : inner.url;
  await swsOk(['server', 'add', 'main', '--url', innerUrl, '--key', innerPem, '--hosts', hosts.join(','), '--data', outerData]);
  const outer = await startSidecar(['outer', 'start', '--data', outerData, ...(opts.rekey ? ['--rekey', opts.rekey] : []), ...(opts.outerArgs ?? [])], opts.env, 0, opts.nodeArgs);
  const chain: Chain = {
    dir,
    innerData,
    outerData,
    get inner() {
      return inner;
    },
    outer,
    proxy: outer.url,
    async restartInner() {
      const port = inner.port;
      await inner.stop();
      inner = await startSidecar(['inner', 'start', '--data', innerData, ...(opts.innerArgs ?? [])], opts.env, port, opts.nodeArgs);
      return inner;
    },
    async stop() {
      await Promise.all([outer.stop(), inner.stop()]);
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return chain;
}


/** Probes `find` until it returns something (logs are written asynchronously), failing after `ms`. */
export async function eventually<T>(find: () => T | undefined, ms = 5000, what = 'condition'): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = find();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

export interface ProxiedAnswer {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly body: Buffer;
}

/**
 * One request through an outer as a forward proxy, on a new client connection: absolute-form
 * target, Basic proxy credentials of `user` (alice unless given; null for none). Rejects when
 * the answer is cut short, so a truncated body never passes for a whole one.
 */
export function viaProxy(
  proxyUrl: string,
  host: string,
  path: string,
  opts: { user?: keyof typeof PASSWORDS | null; password?: string; method?: string; body?: Buffer | string; headers?: Record<string, string> } = {},
): Promise<ProxiedAnswer> {
  const proxy = new URL(proxyUrl);
  const headers: Record<string, string> = { host, ...opts.headers };
  const user = opts.user === undefined ? 'alice' : opts.user;
  if (user) headers['proxy-authorization'] = basic(user, opts.password ?? PASSWORDS[user]);
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: proxy.hostname, port: proxy.port, method: opts.method ?? 'GET', path: `http://${host}${path}`, headers, agent: false }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (c: Buffer) => parts.push(c));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(parts) }));
      res.on('error', reject);
      res.on('aborted', () => reject(new Error('response aborted')));
    });
    req.on('error', reject);
    req.end(opts.body);
  });
}

export function basic(user: string, password: string): string {
  return `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
}

/** A loopback port with nothing listening on it (for "upstream down" cases). */
export async function closedPort(): Promise<number> {
  const { createServer: createNetServer } = await import('node:net');
  const srv = createNetServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  const port = (srv.address() as AddressInfo).port;
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

/** `n` octets of a fixed, non-repeating-looking pattern (bodies checked by hash). */
export function pattern(n: number, mul = 31, shift = 10): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = (i * mul + (i >> shift)) & 0xff;
  return b;
}

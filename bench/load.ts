/**
 * Load generators: wrk for small requests (a Lua script sets the request line, the proxy
 * credentials for the sws outer, and prints exact figures as JSON from `done`), curl for
 * the bulk transfers (a C client, so the figure is the proxies' and not the client's).
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ensureTools, run } from './harness.ts';

export interface Target {
  /** http://127.0.0.1:PORT where the client connects. */
  readonly connectUrl: string;
  /** Request target for the small test: `/1k` (origin-form) or `http://host/1k` (forward proxy). */
  readonly smallPath: string;
  /** `user:password` for Basic proxy authentication (sws outer), else undefined. */
  readonly proxyUser?: string;
  /** The URL the client asks for, given a path: absolute when going through a forward proxy. */
  url(path: string): string;
}

export interface WrkResult {
  readonly rps: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly requests: number;
  readonly errors: number;
}

let scriptSeq = 0;
function wrkScript(dir: string, t: Target): string {
  const file = join(dir, `wrk-${++scriptSeq}.lua`);
  const auth = t.proxyUser ? `wrk.headers["Proxy-Authorization"] = "Basic ${Buffer.from(t.proxyUser).toString('base64')}"\n` : '';
  writeFileSync(
    file,
    `wrk.method = "GET"
wrk.path = "${t.smallPath}"
${auth}
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('WRKJSON {"requests":%d,"duration_us":%d,"p50":%d,"p99":%d,"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d}\\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99), e.connect, e.read, e.write, e.status, e.timeout))
end
`,
  );
  return file;
}

/** One wrk run: `connections` keep-alive connections, one thread, `seconds` long. */
export async function wrk(dir: string, t: Target, connections: number, seconds: number): Promise<WrkResult> {
  ensureTools({ wrk: 'wrk' }); // every bench tool that drives wrk installs it on a fresh machine, not only run.ts
  const script = wrkScript(dir, t);
  const r = await run('wrk', ['-t1', `-c${connections}`, `-d${seconds}s`, '--timeout', '10s', '-s', script, t.connectUrl], { timeoutMs: (seconds + 30) * 1000 });
  const m = /WRKJSON (\{.*\})/.exec(r.stdout);
  if (r.code !== 0 || !m) throw new Error(`wrk failed (${r.code}): ${r.stderr}${r.stdout}`);
  const j = JSON.parse(m[1]!) as Record<string, number>;
  const errors = j.connect! + j.read! + j.write! + j.status! + j.timeout!;
  return { rps: j.requests! / (j.duration_us! / 1e6), p50Ms: j.p50! / 1000, p99Ms: j.p99! / 1000, requests: j.requests!, errors };
}

export interface Transfer {
  readonly mbps: number;
  readonly bytes: number;
  readonly seconds: number;
}

const CURL_W = '\n%{http_code} %{size_download} %{size_upload} %{time_total}';

function curlProxyArgs(t: Target): string[] {
  return t.proxyUser ? ['-x', t.connectUrl, '--proxy-user', t.proxyUser] : [];
}

/** GET `bytes` octets through the setup; MB/s = 10^6 octets per second of the whole transfer. */
export async function download(t: Target, bytes: number): Promise<Transfer> {
  ensureTools({ curl: 'curl' });
  const r = await run('curl', ['-sS', '--http1.1', ...curlProxyArgs(t), '-o', '/dev/null', '-w', CURL_W, t.url(`/bulk?bytes=${bytes}`)], { timeoutMs: 600_000 });
  const [code, down, , total] = r.stdout.trim().split(' ');
  if (r.code !== 0 || code !== '200' || Number(down) !== bytes) throw new Error(`download of ${bytes} octets failed: curl ${r.code}, HTTP ${code}, ${down} octets\n${r.stderr}`);
  return { mbps: bytes / Number(total) / 1e6, bytes, seconds: Number(total) };
}

/** POST the file (streamed by curl, Content-Length known) through the setup; the origin counts what arrives. */
export async function upload(t: Target, file: string, bytes: number): Promise<Transfer> {
  ensureTools({ curl: 'curl' });
  const r = await run('curl', ['-sS', '--http1.1', ...curlProxyArgs(t), '-X', 'POST', '-T', file, '-H', 'Expect:', '-H', 'Content-Type: application/octet-stream', '-w', CURL_W, t.url('/upload')], { timeoutMs: 600_000 });
  const lines = r.stdout.trim().split('\n');
  const [code, , up, total] = (lines.pop() ?? '').split(' ');
  let got = -1;
  try {
    got = (JSON.parse(lines.join('\n')) as { bytes: number }).bytes;
  } catch {
    // reported below
  }
  if (r.code !== 0 || code !== '200' || got !== bytes || Number(up) !== bytes) throw new Error(`upload of ${bytes} octets failed: curl ${r.code}, HTTP ${code}, origin got ${got}\n${r.stderr}${lines.join('\n').slice(0, 300)}`);
  return { mbps: bytes / Number(total) / 1e6, bytes, seconds: Number(total) };
}

/** One small request through the setup, checked: 200 and 1024 octets. */
export async function probe(t: Target): Promise<void> {
  ensureTools({ curl: 'curl' });
  const r = await run('curl', ['-sS', '--http1.1', ...curlProxyArgs(t), '-o', '/dev/null', '-w', '%{http_code} %{size_download}', t.url(t.smallPath.replace(/^http:\/\/[^/]+/, ''))], { timeoutMs: 30_000 });
  if (r.code !== 0 || r.stdout.trim() !== '200 1024') throw new Error(`probe through ${t.connectUrl} failed: curl ${r.code}: ${r.stdout} ${r.stderr}`);
}

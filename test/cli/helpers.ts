/**
 * Runs the real `sws` executable (node bin/sws.js) against temp data dirs. The environment is
 * scrubbed of the caller's SWS_* variables; NODE_ENV=test with SWS_SCRYPT_N=1024 keeps password
 * hashing cheap (the production default stays 2^15, see store/password.ts).
 */
import { spawnSync, spawn } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const SWS = join(ROOT, 'bin', 'sws.js');

export interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  input?: string | Buffer;
  env?: Record<string, string | undefined>;
  cwd?: string;
  /** Run this file instead of `node bin/sws.js` (e.g. a symlink, executed directly). */
  exe?: string;
}

export function baseEnv(extra: Record<string, string | undefined> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('SWS_') && k !== 'NODE_OPTIONS') env[k] = v;
  Object.assign(env, { NODE_ENV: 'test', SWS_SCRYPT_N: '1024' }, extra);
  for (const [k, v] of Object.entries(env)) if (v === undefined) delete env[k];
  return env;
}

export function sws(args: readonly string[], opts: RunOptions = {}): Result {
  const [cmd, argv] = opts.exe ? [opts.exe, [...args]] : [process.execPath, [SWS, ...args]];
  const r = spawnSync(cmd, argv, { input: opts.input ?? '', env: baseEnv(opts.env), cwd: opts.cwd ?? ROOT, encoding: 'utf8', timeout: 60_000 });
  if (r.error) throw r.error;
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

/** The same, without blocking the event loop (to run several at once). */
export function swsAsync(args: readonly string[], opts: RunOptions = {}): Promise<Result> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [SWS, ...args], { env: baseEnv(opts.env), cwd: opts.cwd ?? ROOT });
    let stdout = '';
    let stderr = '';
    p.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
    p.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    p.on('error', reject);
    p.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
    p.stdin.end(opts.input ?? '');
  });
}

export function tempDir(): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'sws-cli-'));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Writes a fresh RSA public key (PEM SPKI) to `path`. */
export function writePublicKey(path: string, bits = 2048): string {
  const { publicKey } = generateKeyPairSync('rsa', { modulusLength: bits });
  const pem = publicKey.export({ type: 'spki', format: 'pem' }).toString();
  writeFileSync(path, pem);
  return pem;
}

/** Asserts the failure shape: exit code, and an `error:` line naming `mention` (a flag, code...). */
export function expectFail(r: Result, code: number, ...mentions: (string | RegExp)[]): void {
  if (r.code !== code) throw new Error(`expected exit ${code}, got ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
  if (!/error:/.test(r.stderr)) throw new Error(`expected an error message on stderr, got: ${r.stderr}`);
  for (const m of mentions) {
    const ok = typeof m === 'string' ? r.stderr.includes(m) : m.test(r.stderr);
    if (!ok) throw new Error(`expected stderr to mention ${String(m)}, got: ${r.stderr}`);
  }
}

export function expectOk(r: Result): Result {
  if (r.code !== 0) throw new Error(`expected exit 0, got ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
  return r;
}

/**
 * Runs the same program in-process (bin/cli.ts `main`), for the many input variants whose
 * binary round trip would add nothing but start-up time. Same env scrubbing as `sws`.
 */
export async function inproc(args: readonly string[], opts: RunOptions = {}): Promise<Result> {
  const { main } = await import('../../bin/cli.ts');
  const { Readable } = await import('node:stream');
  let stdout = '';
  let stderr = '';
  const code = await main(args, {
    stdout: { write: (s: string) => (stdout += s) },
    stderr: { write: (s: string) => (stderr += s) },
    stdin: Readable.from(opts.input !== undefined ? [Buffer.from(opts.input)] : []),
    env: baseEnv(opts.env),
    cwd: opts.cwd ?? ROOT,
  });
  return { code, stdout, stderr };
}

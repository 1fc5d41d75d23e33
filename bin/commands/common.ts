/**
 * What every command module shares: the I/O context (so tests can run the program in-process),
 * command groups that any module can extend, the data dir and store options parsed once from
 * flags and environment, input helpers (files, stdin passwords) and the one table that maps
 * error codes to the contract's exit codes (0 ok, 1 runtime failure, 2 bad usage/input, 3 denied).
 */
import { readFileSync, statSync } from 'node:fs';
import { userInfo } from 'node:os';
import { resolve } from 'node:path';
import type { Command } from 'commander';
import type { LazySchema, Z } from '../../store/zod.ts';
import { KeyFormatError } from '../../core/errors.ts';
import { openStore, resolveDataDir, SwsError, UsageError, DEFAULT_SCRYPT, schemas, type OpenStoreOptions, type Role, type Store } from '../../store/index.ts';

export interface TextSink {
  write(chunk: string): unknown;
}

export interface CliIO {
  stdout: TextSink;
  stderr: TextSink;
  stdin: NodeJS.ReadableStream;
  env: NodeJS.ProcessEnv;
  cwd: string;
}

export interface CliContext extends CliIO {
  /** The process exit code once the command returns (a command sets 3 for "deny"). */
  exitCode: number;
  out(text: string): void;
  /** Notes and warnings for a person (stderr); never data a script parses. */
  note(text: string): void;
  json(value: unknown): void;
}

export function makeContext(io: Partial<CliIO> = {}): CliContext {
  const full: CliIO = {
    stdout: io.stdout ?? process.stdout,
    stderr: io.stderr ?? process.stderr,
    stdin: io.stdin ?? process.stdin,
    env: io.env ?? process.env,
    cwd: io.cwd ?? process.cwd(),
  };
  return {
    ...full,
    exitCode: 0,
    out: (t) => void full.stdout.write(t.endsWith('\n') ? t : t + '\n'),
    note: (t) => void full.stderr.write(t.endsWith('\n') ? t : t + '\n'),
    json: (v) => void full.stdout.write(JSON.stringify(v, null, 2) + '\n'),
  };
}

/** A command module: `register` adds its commands to the program (see commands/index.ts). */
export interface CommandModule {
  register(program: Command, ctx: CliContext): void;
}

/** The top-level groups and their one-line help, whichever module creates them first. */
export const GROUPS = {
  inner: 'the inner sidecar (beside the WWW server): data dir, key pair, sites',
  outer: 'the outer sidecar (at the client LAN): data dir',
  client: "users' public keys registered at the inner (inner data dir)",
  acl: 'the access control list at the inner (inner data dir)',
  server: 'inner servers known to the outer (outer data dir)',
  user: 'users of the outer: passwords and key pairs (outer data dir)',
} as const;

/** Gets or creates a command group under `parent`, so modules can add to the same group in any order. */
export function group(parent: Command, name: string, description?: string): Command {
  const found = parent.commands.find((c) => c.name() === name);
  if (found) return found;
  const desc = description ?? (GROUPS as Record<string, string>)[name] ?? '';
  return parent.command(name).description(desc);
}

export function dataDirOf(cmd: Command, ctx: CliContext): string {
  const opts = cmd.optsWithGlobals<{ data?: string }>();
  return resolveDataDir(opts.data, ctx.env, ctx.cwd);
}

function envInt(ctx: CliContext, name: string, min: number, max: number): number | undefined {
  const v = ctx.env[name];
  if (v === undefined || v === '') return undefined;
  return schemas.checkInt(v, min, max, `$${name}`);
}

/**
 * Store options from the environment, parsed here at the edge:
 * - `$SWS_LOCK_TIMEOUT_MS`: how long to wait for another writer (default 5000).
 * - `$SWS_SCRYPT_N` (tests only): scrypt N for new password hashes; a value below the default
 *   (2^15) is honoured only when `NODE_ENV=test`, so production cannot be weakened by accident.
 */
export function storeOptions(ctx: CliContext): OpenStoreOptions {
  const o: OpenStoreOptions = { env: ctx.env, actor: actor() };
  const busy = envInt(ctx, 'SWS_LOCK_TIMEOUT_MS', 0, 600_000);
  if (busy !== undefined) o.busyTimeoutMs = busy;
  const n = envInt(ctx, 'SWS_SCRYPT_N', 2, 2 ** 22);
  if (n !== undefined) {
    const log2N = Math.log2(n);
    if (!Number.isInteger(log2N)) throw new UsageError('must be a power of two', '$SWS_SCRYPT_N');
    if (log2N >= DEFAULT_SCRYPT.log2N || ctx.env.NODE_ENV === 'test') o.scrypt = { ...DEFAULT_SCRYPT, log2N };
  }
  return o;
}

function actor(): string {
  try {
    return `cli:${userInfo().username}`;
  } catch {
    return `cli:uid-${process.getuid?.() ?? '?'}`;
  }
}

/** Opens the data dir for a command that needs `role`, runs `fn`, always closes. */
export async function withStore<T>(cmd: Command, ctx: CliContext, role: Role | undefined, fn: (store: Store) => T | Promise<T>, opts: { readonly?: boolean } = {}): Promise<T> {
  const o: OpenStoreOptions = { ...storeOptions(ctx), readonly: opts.readonly ?? false };
  if (role) o.expectRole = role;
  const store = openStore(dataDirOf(cmd, ctx), o);
  try {
    return await fn(store);
  } finally {
    store.close();
  }
}

/** Validates an argument with a zod schema; the error names `field`. */
export function arg<S extends Z.ZodType>(schema: S | LazySchema<S>, value: unknown, field: string): Z.output<S> {
  return schemas.check(schema, value, field);
}

const MAX_INPUT_FILE = 1024 * 1024;

/** Reads a small text file named by a flag; errors name the flag and the file. */
export function readInputFile(path: string, flag: string, ctx: CliContext): string {
  const full = resolve(ctx.cwd, path);
  try {
    const st = statSync(full);
    if (!st.isFile()) throw new UsageError(`${path} is not a regular file`, flag);
    if (st.size > MAX_INPUT_FILE) throw new UsageError(`${path} is larger than 1 MiB`, flag);
    return readFileSync(full, 'utf8');
  } catch (e) {
    if (e instanceof SwsError) throw e;
    const code = (e as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : 'cannot read it';
    throw new UsageError(`cannot read ${path}: ${why}`, flag, { cause: e });
  }
}

/** Runs `fn`; a KeyFormatError (unreadable PEM) becomes a UsageError naming the flag and file. */
export async function asKeyInput<T>(flag: string, file: string, fn: () => Promise<T> | T): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    if (e instanceof KeyFormatError) throw new UsageError(`${file}: ${e.message}`, flag, { cause: e });
    throw e;
  }
}

/**
 * `--password-stdin`: reads stdin to the end, removes one trailing "\n" or "\r\n" (not part of
 * the password), rejects an empty result and invalid UTF-8. The password is never echoed.
 */
export async function readPasswordStdin(ctx: CliContext): Promise<string> {
  const stdin = ctx.stdin as NodeJS.ReadableStream & { isTTY?: boolean };
  if (stdin.isTTY) ctx.note('reading the password from stdin (end with Ctrl-D)');
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of stdin) {
    const b = typeof c === 'string' ? Buffer.from(c, 'utf8') : Buffer.from(c);
    size += b.length;
    if (size > 64 * 1024) throw new UsageError('stdin holds more than 64 KiB; expected a password', '--password-stdin');
    chunks.push(b);
  }
  const buf = Buffer.concat(chunks);
  let s: string;
  try {
    s = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(buf);
  } catch {
    throw new UsageError('the password read from stdin is not valid UTF-8', '--password-stdin');
  } finally {
    buf.fill(0);
    for (const c of chunks) c.fill(0);
  }
  if (s.endsWith('\r\n')) s = s.slice(0, -2);
  else if (s.endsWith('\n')) s = s.slice(0, -1);
  if (s.length === 0) throw new UsageError('the password read from stdin is empty', '--password-stdin');
  return s;
}

/** Exit code for an error (contract: 1 runtime failure, 2 bad usage or input, 3 denied). */
export function exitCodeFor(err: unknown): 1 | 2 | 3 {
  const code = err instanceof SwsError ? err.code : undefined;
  switch (code) {
    case 'SWS_ERR_USAGE':
    case 'SWS_ERR_ROLE':
    case 'SWS_ERR_PATH_AMBIGUOUS':
    case 'SWS_ERR_HOST':
    case 'SWS_ERR_KEY_FORMAT':
    case 'SWS_ERR_POLICY':
      return 2;
    case 'SWS_ERR_ACL_DENIED':
      return 3;
    default:
      return 1;
  }
}

/** Left-aligned columns for list output. */
export function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const all = [header, ...rows];
  const widths = header.map((_, i) => Math.max(...all.map((r) => (r[i] ?? '').length)));
  return all.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ')).join('\n') + '\n';
}

export const fingerprintOf = (keyIdHex: string) => `sha256:${keyIdHex}`;

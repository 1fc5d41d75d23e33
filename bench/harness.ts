/**
 * Process and measurement plumbing for `npm run bench` (bench/run.ts) and bench/profile.ts:
 * every process started here is tracked and stopped by `cleanup()` (also on error and on
 * SIGINT/SIGTERM), ports are loopback only, figures are medians with their spread.
 */
import { spawn, spawnSync, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer, connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { builtEntry } from '../bin/built.js';

export const BENCH_DIR = fileURLToPath(new URL('.', import.meta.url));

// ------------------------------------------------------------------ cleanup registry

type Cleanup = () => Promise<void> | void;
const cleanups: Cleanup[] = [];
const tracked = new Set<ChildProcess>();
let cleaning: Promise<void> | undefined;

/** Runs `fn` at cleanup time (last registered, first run). */
export function onCleanup(fn: Cleanup): void {
  cleanups.push(fn);
}

/** A temp dir removed at cleanup. */
export function tempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  onCleanup(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** Stops everything this process started: registered cleanups, tracked children, then any remaining child of ours. */
export function cleanup(): Promise<void> {
  cleaning ??= (async () => {
    while (cleanups.length) {
      const fn = cleanups.pop()!;
      try {
        await withTimeout(Promise.resolve(fn()), 15_000);
      } catch {
        // keep going: the rest must still be stopped
      }
    }
    await Promise.all([...tracked].map((c) => stopChild(c)));
    // Backstop: any process whose parent is this one was started by this benchmark.
    for (const pid of childPids(process.pid)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  })();
  return cleaning;
}

/** Runs a benchmark's `main`: signal handlers first, then exit code 1 on error, and always `cleanup()`. */
export async function runBenchmark(main: () => Promise<void>): Promise<void> {
  installSignalHandlers();
  try {
    await main();
  } catch (e) {
    console.error(e);
    process.exitCode = 1;
  } finally {
    await cleanup();
  }
}

let signalsInstalled = false;
/** Ctrl-C / SIGTERM: stop everything, then exit 130. */
export function installSignalHandlers(): void {
  if (signalsInstalled) return;
  signalsInstalled = true;
  // Ctrl-C reaches the whole process group, and wrappers (npm, tsx) relay it once more:
  // repeats are ignored so that the cleanup always finishes.
  let stopping = false;
  const onSignal = (sig: NodeJS.Signals) => {
    if (stopping) return;
    stopping = true;
    console.error(`\n${sig}: stopping every process the benchmark started…`);
    void cleanup().finally(() => process.exit(130));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T | undefined> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => resolve(undefined), ms);
    p.then(
      (v) => (clearTimeout(t), resolve(v)),
      (e) => (clearTimeout(t), reject(e)),
    );
  });
}

// ------------------------------------------------------------------ processes

export interface Started {
  readonly child: ChildProcess;
  readonly pid: number;
  output(): string;
  stop(): Promise<void>;
}

/** Spawns a tracked long-running process; its stdout+stderr are kept (bounded) for error messages. */
export function startProcess(cmd: string, args: readonly string[], opts: SpawnOptions = {}): Started {
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], ...opts });
  tracked.add(child);
  let out = '';
  const keep = (d: Buffer | string) => {
    out += d.toString();
    if (out.length > 64 * 1024) out = out.slice(-32 * 1024);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  child.on('exit', () => tracked.delete(child));
  child.on('error', (e) => keep(`spawn error: ${e.message}\n`));
  return {
    child,
    get pid() {
      return child.pid ?? -1;
    },
    output: () => out,
    stop: () => stopChild(child),
  };
}

/** SIGTERM, then SIGKILL after `graceMs`. */
export async function stopChild(child: ChildProcess, graceMs = 5_000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  child.kill('SIGTERM');
  const t = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(t);
}

/**
 * How a script of bench/ runs: its precompiled build (scripts/build.mjs; the forwarder has one,
 * so it runs as plain JavaScript like the sidecars) when fresh and $SWS_BUILD is not `never`,
 * else through tsx. Returns node's arguments before the script's own.
 */
export function nodeScript(file: string): { argv: string[]; built: boolean } {
  const name = file.replace(/\.ts$/, '');
  const mode = process.env.SWS_BUILD || 'auto';
  const build = mode === 'never' ? undefined : builtEntry(new URL('..', pathToFileURL(BENCH_DIR)), name);
  if (build?.url !== undefined) return { argv: [fileURLToPath(build.url)], built: true };
  if (mode === 'require' && name === 'forwarder') throw new Error(`SWS_BUILD=require but ${build?.why}: run \`npm run build\``);
  return { argv: ['--import', 'tsx', join(BENCH_DIR, file)], built: false };
}

/** Node child running a TypeScript file of bench/ (see nodeScript); resolves with its first JSON stdout line. */
export async function startNodeScript(file: string, args: readonly string[], nodeArgs: readonly string[] = []): Promise<{ proc: Started; info: Record<string, unknown> }> {
  const proc = startProcess(process.execPath, [...nodeArgs, ...nodeScript(file).argv, ...args], { cwd: join(BENCH_DIR, '..') });
  const info = await new Promise<Record<string, unknown>>((resolve, reject) => {
    let buf = '';
    const onData = (d: Buffer) => {
      buf += d.toString();
      const nl = buf.indexOf('\n');
      if (nl < 0) return;
      proc.child.stdout!.off('data', onData);
      try {
        resolve(JSON.parse(buf.slice(0, nl)) as Record<string, unknown>);
      } catch {
        reject(new Error(`${file}: unexpected output: ${buf.slice(0, nl)}`));
      }
    };
    proc.child.stdout!.on('data', onData);
    proc.child.once('exit', (code) => reject(new Error(`${file} exited with ${code}\n${proc.output()}`)));
  });
  return { proc, info };
}

/** PIDs whose parent is `pid` (from /proc). */
export function childPids(pid: number): number[] {
  const out: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === pid) out.push(Number(name));
    } catch {
      // exited meanwhile
    }
  }
  return out;
}

/** VmHWM (peak resident set) and VmRSS of a process, in bytes. */
export function memOf(pid: number): { hwm: number; rss: number } {
  try {
    const s = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (k: string) => Number(new RegExp(`${k}:\\s+(\\d+) kB`).exec(s)?.[1] ?? 0) * 1024;
    return { hwm: kb('VmHWM'), rss: kb('VmRSS') };
  } catch {
    return { hwm: 0, rss: 0 };
  }
}

/** Runs a command to completion (no shell). */
export function run(cmd: string, args: readonly string[], opts: { timeoutMs?: number; input?: string } = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    tracked.add(child);
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const t = opts.timeoutMs ? setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs) : undefined;
    child.on('error', (e) => {
      tracked.delete(child);
      reject(e);
    });
    child.on('close', (code, signal) => {
      tracked.delete(child);
      if (t) clearTimeout(t);
      resolve({ code: code ?? (signal ? 128 : -1), stdout, stderr });
    });
    // A command that exits without reading its input (EPIPE) is not an error of the caller's.
    child.stdin!.on('error', () => undefined);
    child.stdin!.end(opts.input ?? '');
  });
}

export function which(cmd: string): string | undefined {
  for (const dir of (process.env.PATH ?? '/usr/bin:/bin').split(':').concat(['/usr/sbin', '/sbin'])) {
    const p = join(dir, cmd);
    if (existsSync(p)) return p;
  }
  return undefined;
}

/** Installs the Debian packages that provide missing commands (apt-get update first). */
export function ensureTools(needed: Record<string, string>): void {
  const missing = Object.entries(needed).filter(([cmd]) => !which(cmd));
  if (missing.length === 0) return;
  const pkgs = [...new Set(missing.map(([, pkg]) => pkg))];
  console.log(`installing ${pkgs.join(' ')} (apt-get)…`);
  const sudo = process.getuid?.() === 0 ? [] : ['sudo'];
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const upd = spawnSync(sudo[0] ?? 'apt-get', [...sudo.slice(1), ...(sudo.length ? ['apt-get'] : []), 'update'], { stdio: 'inherit', env });
  if (upd.status !== 0) throw new Error('apt-get update failed');
  const inst = spawnSync(sudo[0] ?? 'apt-get', [...sudo.slice(1), ...(sudo.length ? ['apt-get'] : []), 'install', '-y', ...pkgs], { stdio: 'inherit', env });
  if (inst.status !== 0) throw new Error(`apt-get install ${pkgs.join(' ')} failed`);
  for (const [cmd] of missing) if (!which(cmd)) throw new Error(`${cmd} still missing after installing ${pkgs.join(' ')}`);
}

// ------------------------------------------------------------------ network

/** A free loopback port (bind 0, read, close). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/** Resolves once 127.0.0.1:port accepts a TCP connection. */
export async function waitPort(port: number, what: string, proc?: Started, timeoutMs = 15_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect(port, '127.0.0.1');
      s.once('connect', () => (s.destroy(), resolve(true)));
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    if (proc && (proc.child.exitCode !== null || proc.child.signalCode !== null)) throw new Error(`${what} exited before listening\n${proc.output()}`);
    if (Date.now() > end) throw new Error(`${what} never listened on ${port}\n${proc?.output() ?? ''}`);
    await sleep(50);
  }
}

/** The value after `--NAME` in a script's arguments, or `dflt`. */
export function optionValue(argv: readonly string[], name: string, dflt: string): string {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 && i + 1 < argv.length ? argv[i + 1]! : dflt;
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

// ------------------------------------------------------------------ statistics

export interface Stat {
  readonly median: number;
  readonly min: number;
  readonly max: number;
  readonly n: number;
}

export function stat(xs: readonly number[]): Stat {
  if (xs.length === 0) return { median: NaN, min: NaN, max: NaN, n: 0 };
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  const median = s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
  return { median, min: s[0]!, max: s[s.length - 1]!, n: s.length };
}

export function fmtNum(n: number, digits = 0): string {
  if (!Number.isFinite(n)) return '—';
  return n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });
}

/** "12,345 (±3 %)": median and the half-spread (max−min)/2 relative to the median. */
export function fmtStat(s: Stat | undefined, digits = 0): string {
  if (!s || !Number.isFinite(s.median)) return '—';
  const spread = s.median ? ((s.max - s.min) / 2 / s.median) * 100 : 0;
  return `${fmtNum(s.median, digits)} ±${spread < 10 ? spread.toFixed(1) : spread.toFixed(0)}%`;
}

export function fmtMiB(bytes: number): string {
  return bytes > 0 ? `${(bytes / 1048576).toFixed(0)}` : '—';
}

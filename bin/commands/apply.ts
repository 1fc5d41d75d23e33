/**
 * `sws apply -f FILE [--dry-run] [--prune] [--init] [--json]`: makes a data dir match a
 * declarative config (config/): inner → sites, clients' public keys, ACL; outer → inner
 * servers. Prints the differences; `--dry-run` shows them (and proves they would apply) without
 * changing anything. A bad file exits 2 and changes nothing. `--init` creates the data dir
 * first when there is none (the role comes from the file): what the injected `sws-init`
 * container runs in Kubernetes, so the sidecars start from a ConfigMap.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import { applyDesiredState, diffState, parseConfig, readConfigFile, summarize, warningsFor, type Change, type DesiredState } from '../../config/index.ts';
import { DB_FILE, initStore, UsageError, type Role } from '../../store/index.ts';
import { dataDirOf, fingerprintOf, storeOptions, withStore, type CliContext } from './common.ts';

interface Flags {
  file: string;
  dryRun?: boolean;
  prune?: boolean;
  init?: boolean;
  json?: boolean;
}

const MAX_STDIN = 4 * 1024 * 1024;

async function readStdin(ctx: CliContext): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of ctx.stdin) {
    const b = typeof c === 'string' ? Buffer.from(c, 'utf8') : Buffer.from(c);
    size += b.length;
    if (size > MAX_STDIN) throw new UsageError('stdin holds more than 4 MiB', '-f');
    chunks.push(b);
  }
  return Buffer.concat(chunks).toString('utf8');
}

const SIGN = { add: '+', change: '~', remove: '-', unmanaged: ' ' } as const;

function show(v: Change['after']): string {
  if (!v) return '';
  return Object.entries(v)
    .filter(([k]) => !['user', 'pattern'].includes(k))
    .map(([k, x]) => `${k}=${x === null ? '*' : Array.isArray(x) ? x.join(',') : String(x)}`)
    .join(' ');
}

function describe(c: Change): string {
  const head = `${SIGN[c.action]} ${c.kind} ${c.key}`;
  switch (c.action) {
    case 'add':
      return `${head}  ${show(c.after)}`;
    case 'change':
      return `${head}  ${show(c.before)} → ${show(c.after)}`;
    case 'remove':
      return `${head}`;
    case 'unmanaged':
      return `${head}  (not in the file: kept; --prune removes it)`;
  }
}

/** What one apply did: the parsed file, the changes and whether they were committed. */
export interface ApplyOutcome {
  readonly desired: DesiredState;
  readonly source: string;
  readonly dir: string;
  readonly changes: readonly Change[];
  readonly committed: boolean;
  readonly initialized?: string;
}

/**
 * Reads, checks and applies a config to the data dir of `cmd`: the one code path of `sws apply`
 * and of `sws inner|outer start --config`. Everything about the file is checked before the data
 * dir is touched (UsageError, exit 2, naming file, line and field); the changes run in one
 * transaction (a clash rolls everything back). `role`: the role the caller needs (`start`),
 * undefined to take it from the file (`apply`).
 */
export async function applyConfig(
  input: { text: string; source: string; baseDir: string },
  cmd: Command,
  ctx: CliContext,
  opts: { dryRun: boolean; prune: boolean; init: boolean; role?: Role; flag?: string },
): Promise<ApplyOutcome> {
  const desired: DesiredState = await parseConfig(input.text, input.source, input.baseDir);
  if (opts.role !== undefined && desired.role !== opts.role) {
    throw new UsageError(`${input.source} is an ${desired.role} config (role: ${desired.role}); sws ${opts.role} start needs role: ${opts.role}`, opts.flag ?? '-f');
  }
  const dir = dataDirOf(cmd, ctx);
  const { dryRun, prune } = opts;
  if (opts.init && !existsSync(join(dir, DB_FILE))) {
    if (dryRun) return { desired, source: input.source, dir, changes: diffState(desired, {}, prune), committed: false, initialized: `would initialize ${desired.role} data dir ${dir}` };
    const r = await initStore(dir, desired.role, storeOptions(ctx));
    const initialized = `initialized ${desired.role} data dir ${dir}${r.keyId ? ` (inner key ${fingerprintOf(r.keyId)})` : ''}`;
    try {
      const { changes, committed } = await applyDesiredState(r.store, desired, { dryRun, prune });
      return { desired, source: input.source, dir, changes, committed, initialized };
    } finally {
      r.store.close();
    }
  }
  const { changes, committed } = await withStore(cmd, ctx, desired.role, (store) => applyDesiredState(store, desired, { dryRun, prune }));
  return { desired, source: input.source, dir, changes, committed };
}

/** The human summary line of an apply. */
export function summaryLine(o: ApplyOutcome, dryRun: boolean): string {
  const summary = summarize(o.changes);
  const pending = summary.add + summary.change + summary.remove;
  const unmanaged = summary.unmanaged > 0 ? `, ${summary.unmanaged} unmanaged` : '';
  if (dryRun) return `dry run: ${summary.add} to add, ${summary.change} to change, ${summary.remove} to remove${unmanaged}; nothing changed`;
  if (pending === 0) return `no changes: the data dir matches ${o.source}${unmanaged}`;
  return `applied: ${summary.add} added, ${summary.change} changed, ${summary.remove} removed${unmanaged}`;
}

export { describe as describeChange };

export function register(program: Command, ctx: CliContext): void {
  program
    .command('apply')
    .description('make the data dir match a declarative config file (GitOps): sites, client keys and ACL (inner) or inner servers (outer)')
    .requiredOption('-f, --file <FILE>', 'the config (YAML or JSON; - for stdin); see docs/KUBERNETES.md for the format')
    .option('--dry-run', 'show the differences, change nothing')
    .option('--prune', 'also remove what the data dir holds but the file does not list')
    .option('--init', 'create the data dir (role from the file) when there is none')
    .option('--json', 'machine-readable output')
    .action(async (opts: Flags, cmd: Command) => {
      const input = opts.file === '-' ? { text: await readStdin(ctx), source: '<stdin>', baseDir: ctx.cwd } : readConfigFile(opts.file, ctx.cwd);
      const dryRun = opts.dryRun ?? false;
      const prune = opts.prune ?? false;
      const o = await applyConfig(input, cmd, ctx, { dryRun, prune, init: opts.init ?? false });
      const summary = summarize(o.changes);
      const warnings = warningsFor(o.desired);
      if (opts.json) {
        ctx.json({ role: o.desired.role, dataDir: o.dir, dryRun, prune, committed: o.committed, ...(o.initialized ? { initialized: o.initialized } : {}), summary, changes: o.changes, warnings });
        return;
      }
      if (o.initialized) ctx.note(o.initialized);
      for (const w of warnings) ctx.note(`warning: ${w}`);
      for (const c of o.changes) ctx.out(describe(c));
      ctx.out(summaryLine(o, dryRun));
    });
}

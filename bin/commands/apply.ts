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
import { DB_FILE, initStore, UsageError } from '../../store/index.ts';
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
      const desired: DesiredState = await parseConfig(input.text, input.source, input.baseDir);
      const dir = dataDirOf(cmd, ctx);
      const dryRun = opts.dryRun ?? false;
      const prune = opts.prune ?? false;

      let initialized: string | undefined;
      let changes: readonly Change[];
      let committed = false;
      if (opts.init && !existsSync(join(dir, DB_FILE))) {
        if (dryRun) {
          initialized = `would initialize ${desired.role} data dir ${dir}`;
          changes = diffState(desired, {}, prune);
        } else {
          const r = await initStore(dir, desired.role, storeOptions(ctx));
          initialized = `initialized ${desired.role} data dir ${dir}${r.keyId ? ` (inner key ${fingerprintOf(r.keyId)})` : ''}`;
          try {
            ({ changes, committed } = await applyDesiredState(r.store, desired, { dryRun, prune }));
          } finally {
            r.store.close();
          }
        }
      } else {
        ({ changes, committed } = await withStore(cmd, ctx, desired.role, (store) => applyDesiredState(store, desired, { dryRun, prune })));
      }

      const summary = summarize(changes);
      const warnings = warningsFor(desired);
      if (opts.json) {
        ctx.json({ role: desired.role, dataDir: dir, dryRun, prune, committed, ...(initialized ? { initialized } : {}), summary, changes, warnings });
        return;
      }
      if (initialized) ctx.note(initialized);
      for (const w of warnings) ctx.note(`warning: ${w}`);
      for (const c of changes) ctx.out(describe(c));
      const pending = summary.add + summary.change + summary.remove;
      const unmanaged = summary.unmanaged > 0 ? `, ${summary.unmanaged} unmanaged` : '';
      if (dryRun) ctx.out(`dry run: ${summary.add} to add, ${summary.change} to change, ${summary.remove} to remove${unmanaged}; nothing changed`);
      else if (pending === 0) ctx.out(`no changes: the data dir matches ${input.source}${unmanaged}`);
      else ctx.out(`applied: ${summary.add} added, ${summary.change} changed, ${summary.remove} removed${unmanaged}`);
    });
}

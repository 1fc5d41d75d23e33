/**
 * `--config FILE [--prune] [--init]` for `sws inner start` and `sws outer start`: apply a
 * declarative config (the `sws apply` code, bin/commands/apply.ts) to the data dir before the
 * sidecar starts, so a mounted ConfigMap is all a container needs.
 *
 * Without `--prune` entries the file does not list are kept (the safer default for a command
 * that also serves traffic: a hand-made grant survives a restart); `--prune` makes the file the
 * whole truth, as the injected init container does. A bad file, a file for the other role or a
 * clash with the data dir exits 2 before anything listens, and changes nothing (one transaction).
 */
import type { Command } from 'commander';
import { UsageError, type Role } from '../../store/index.ts';
import type { CliContext } from './common.ts';

export interface StartConfigFlags {
  config?: string;
  prune?: boolean;
  init?: boolean;
}

export function addStartConfigOptions(cmd: Command): Command {
  return cmd
    .option('--config <FILE>', 'apply this declarative config (sws apply format) to the data dir before starting; entries it does not list are kept')
    .option('--prune', 'with --config: also remove what the data dir holds but the file does not list')
    .option('--init', 'with --config: create the data dir first when there is none');
}

/** Applies `--config` (if given) and reports on stderr; throws UsageError (exit 2) before the sidecar starts. */
export async function applyStartConfig(opts: StartConfigFlags, role: Role, cmd: Command, ctx: CliContext): Promise<void> {
  if (opts.config === undefined) {
    if (opts.prune) throw new UsageError('--prune applies to a --config file; give --config FILE', '--prune');
    if (opts.init) throw new UsageError('--init creates the data dir for a --config file; give --config FILE (or run sws inner|outer init)', '--init');
    return;
  }
  // Loaded only with --config: a sidecar started without one never loads the YAML parser.
  const [{ readConfigFile, warningsFor }, { applyConfig, describeChange, summaryLine }] = await Promise.all([import('../../config/index.ts'), import('./apply.ts')]);
  const input = readConfigFile(opts.config, ctx.cwd, '--config');
  const o = await applyConfig(input, cmd, ctx, { dryRun: false, prune: opts.prune ?? false, init: opts.init ?? false, role, flag: '--config' });
  if (o.initialized) ctx.note(o.initialized);
  for (const w of warningsFor(o.desired)) ctx.note(`warning: ${w}`);
  for (const c of o.changes) if (c.action !== 'unmanaged') ctx.note(`config: ${describeChange(c)}`);
  ctx.note(`config ${o.source}: ${summaryLine(o, false)}`);
}

/** `sws audit`: the trail of admin changes in a data dir (either role). */
import { Option, type Command } from 'commander';
import { auditLog } from '../../store/index.ts';
import { table, withStore, type CliContext } from './common.ts';
import { intFlag } from './run.ts';

export function register(program: Command, ctx: CliContext): void {
  program
    .command('audit')
    .description('show the latest admin changes recorded in the data dir (either role)')
    .addOption(new Option('--limit <N>', 'how many entries').default('50'))
    .option('--json', 'machine-readable output')
    .action(async (opts: { limit: string; json?: boolean }, cmd: Command) => {
      const limit = intFlag(opts.limit, '--limit', 1, 999_999)!;
      const entries = await withStore(cmd, ctx, undefined, (store) => auditLog(store).list(limit), { readonly: true });
      if (opts.json) return ctx.json(entries);
      ctx.out(table(['AT', 'ACTOR', 'ACTION', 'SUBJECT', 'DETAIL'], entries.map((e) => [e.at, e.actor, e.action, e.subject, JSON.stringify(e.detail)])));
    });
}

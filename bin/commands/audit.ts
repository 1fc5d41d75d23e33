/** `sws audit`: the trail of admin changes in a data dir (either role). */
import { Option, type Command } from 'commander';
import { auditLog, UsageError } from '../../store/index.ts';
import { table, withStore, type CliContext } from './common.ts';

export function register(program: Command, ctx: CliContext): void {
  program
    .command('audit')
    .description('show the latest admin changes recorded in the data dir (either role)')
    .addOption(new Option('--limit <N>', 'how many entries').default('50'))
    .option('--json', 'machine-readable output')
    .action(async (opts: { limit: string; json?: boolean }, cmd: Command) => {
      if (!/^\d{1,6}$/.test(opts.limit) || Number(opts.limit) < 1) {
        throw new UsageError('a number from 1 to 999999 is expected', '--limit');
      }
      const entries = await withStore(cmd, ctx, undefined, (store) => auditLog(store).list(Number(opts.limit)), { readonly: true });
      if (opts.json) return ctx.json(entries);
      ctx.out(table(['AT', 'ACTOR', 'ACTION', 'SUBJECT', 'DETAIL'], entries.map((e) => [e.at, e.actor, e.action, e.subject, JSON.stringify(e.detail)])));
    });
}

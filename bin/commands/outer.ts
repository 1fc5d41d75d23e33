/** `sws outer init`: the outer's data dir and database. */
import type { Command } from 'commander';
import { initStore } from '../../store/index.ts';
import { dataDirOf, group, storeOptions, type CliContext } from './common.ts';

export function describeMasterKey(source: 'env' | 'file' | 'new', dir: string): string {
  switch (source) {
    case 'env':
      return 'from $SWS_MASTER_KEY (not stored in the data dir; keep providing it)';
    case 'file':
      return `existing ${dir}/master.key`;
    case 'new':
      return `new ${dir}/master.key (mode 0600): back it up apart from the database`;
  }
}

export function register(program: Command, ctx: CliContext): void {
  group(program, 'outer')
    .command('init')
    .description('create the outer data dir and its database')
    .option('--force', 'replace an existing data dir (its users and servers are destroyed)')
    .action(async (opts: { force?: boolean }, cmd: Command) => {
      const dir = dataDirOf(cmd, ctx);
      const r = await initStore(dir, 'outer', { ...storeOptions(ctx), force: opts.force ?? false });
      r.store.close();
      ctx.out(
        `initialized outer data dir ${dir}\n` +
          `  master key: ${describeMasterKey(r.masterKeySource, dir)}\n` +
          'next: `sws server add` for each inner, `sws user add` for each user',
      );
    });
}

/** `sws server add | remove | list`: the outer's inner-server list 19 (destination changer 20). */
import type { Command } from 'commander';
import { innerServers } from '../../store/index.ts';
import { asKeyInput, fingerprintOf, group, readInputFile, table, withStore, type CliContext } from './common.ts';

export function register(program: Command, ctx: CliContext): void {
  const server = group(program, 'server');

  server
    .command('add')
    .description('an inner server: where it listens, its public key and the WWW hosts it fronts')
    .argument('<NAME>', 'a name for the inner server')
    .requiredOption('--url <URL>', 'where the inner sidecar listens, e.g. https://inner.example:8443')
    .requiredOption('--key <FILE>', 'its public key (PEM, from `sws inner key`)')
    .requiredOption('--hosts <HOST,...>', 'the WWW hosts it fronts (comma-separated)')
    .option('--replace', 'change an existing inner server')
    .action(async (name: string, opts: { url: string; key: string; hosts: string; replace?: boolean }, cmd: Command) => {
      const publicKeyPem = readInputFile(opts.key, '--key', ctx);
      const s = await withStore(cmd, ctx, 'outer', (store) =>
        asKeyInput('--key', opts.key, () => innerServers(store).add({ name, url: opts.url, publicKeyPem, hosts: opts.hosts }, { replace: opts.replace ?? false })),
      );
      ctx.out(`inner server ${s.name} at ${s.url} (${fingerprintOf(s.keyId)}) fronts ${s.hosts.join(', ')}`);
    });

  server
    .command('remove')
    .description('forget an inner server (its hosts become unreachable)')
    .argument('<NAME>')
    .action(async (name: string, _opts: object, cmd: Command) => {
      await withStore(cmd, ctx, 'outer', (store) => innerServers(store).remove(name));
      ctx.out(`removed inner server ${name}`);
    });

  server
    .command('list')
    .description('the inner servers')
    .option('--json', 'machine-readable output')
    .action(async (opts: { json?: boolean }, cmd: Command) => {
      const list = await withStore(cmd, ctx, 'outer', (store) => innerServers(store).list(), { readonly: true });
      if (opts.json) return ctx.json(list.map((s) => ({ name: s.name, url: s.url, keyId: s.keyId, hosts: s.hosts, createdAt: s.createdAt })));
      if (list.length === 0) return ctx.note('no inner servers (add one with `sws server add NAME --url URL --key FILE --hosts HOSTS`)');
      ctx.out(table(['NAME', 'URL', 'HOSTS', 'KEY'], list.map((s) => [s.name, s.url, s.hosts.join(','), fingerprintOf(s.keyId)])));
    });
}

/** `sws server add | remove | list`: the outer's inner-server list 19 (destination changer 20). */
import type { Command } from 'commander';
import { innerServers, updateInnerServer } from '../../store/index.ts';
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
    .command('update')
    .description("change an inner server in place, e.g. its key after `sws inner key rotate`: the running outer uses the new key from its next exchange")
    .argument('<NAME>')
    .option('--key <FILE>', 'its new public key (PEM, from `sws inner key`)')
    .option('--statement <FILE>', 'the endorsement from `sws inner key --statement`: the new key, verified against the key held now')
    .option('--url <URL>', 'where the inner sidecar listens now')
    .option('--hosts <HOST,...>', 'the WWW hosts it fronts now (comma-separated; replaces the list)')
    .action(async (name: string, opts: { key?: string; statement?: string; url?: string; hosts?: string }, cmd: Command) => {
      const publicKeyPem = opts.key !== undefined ? readInputFile(opts.key, '--key', ctx) : undefined;
      const statement = opts.statement !== undefined ? readInputFile(opts.statement, '--statement', ctx) : undefined;
      const r = await withStore(cmd, ctx, 'outer', (store) =>
        asKeyInput(opts.key !== undefined ? '--key' : '--statement', opts.key ?? opts.statement ?? '', () => updateInnerServer(store, name, { publicKeyPem, statement, url: opts.url, hosts: opts.hosts })),
      );
      const moved = r.server.keyId !== r.previousKeyId;
      ctx.out(
        `inner server ${r.server.name} at ${r.server.url} (${fingerprintOf(r.server.keyId)}) fronts ${r.server.hosts.join(', ')}` +
          (moved ? `; key changed from ${fingerprintOf(r.previousKeyId)}${r.endorsed ? ' (endorsed by it)' : ''}` : ''),
      );
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

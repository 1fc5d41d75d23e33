/** `sws client add | remove | list`: users' public keys registered at the inner (claim 3). */
import type { Command } from 'commander';
import { clients } from '../../store/index.ts';
import { asKeyInput, fingerprintOf, group, readInputFile, table, withStore, type CliContext } from './common.ts';

export function register(program: Command, ctx: CliContext): void {
  const client = group(program, 'client');

  client
    .command('add')
    .description("register USER's public key (from `sws user key USER` at the outer)")
    .argument('<USER>', 'user name, as at the outer')
    .option('--key <FILE>', 'PEM public key (SPKI, "BEGIN PUBLIC KEY")')
    .option('--cert <FILE>', 'PEM certificate holding the key, with any intermediates: accepted while valid, unrevoked and issued by a trusted CA (`sws ca`); its CN must be USER')
    .option('--replace', "replace the user's registered key")
    .action(async (user: string, opts: { key?: string; cert?: string; replace?: boolean }, cmd: Command) => {
      const publicKeyPem = opts.key !== undefined ? readInputFile(opts.key, '--key', ctx) : undefined;
      const certPem = opts.cert !== undefined ? readInputFile(opts.cert, '--cert', ctx) : undefined;
      const flag = opts.key !== undefined ? '--key' : '--cert';
      const c = await withStore(cmd, ctx, 'inner', (store) =>
        asKeyInput(flag, (opts.key ?? opts.cert) ?? '', () => clients(store).add({ user, publicKeyPem, certPem }, { replace: opts.replace ?? false })),
      );
      ctx.out(`registered ${c.user}: ${fingerprintOf(c.keyId)}${c.certificate ? ` (certificate, valid until ${c.certificate.notAfter})` : ''}`);
      // Validity, trust and revocation are decided again at every exchange: say what today's answer is.
      if (c.certificate?.refused) ctx.note(`warning: the inner refuses this certificate now (${c.certificate.refused.code}): ${c.certificate.refused.message}`);
    });

  client
    .command('remove')
    .description("remove USER's registered key (the user's ACL rules stay)")
    .argument('<USER>')
    .action(async (user: string, _opts: object, cmd: Command) => {
      await withStore(cmd, ctx, 'inner', (store) => clients(store).remove(user));
      ctx.out(`removed ${user}`);
    });

  client
    .command('list')
    .description('the registered users and key fingerprints')
    .option('--json', 'machine-readable output')
    .action(async (opts: { json?: boolean }, cmd: Command) => {
      const list = await withStore(cmd, ctx, 'inner', (store) => clients(store).list(), { readonly: true });
      if (opts.json) return ctx.json(list.map((c) => ({ user: c.user, keyId: c.keyId, certificate: c.certPem !== undefined, createdAt: c.createdAt })));
      if (list.length === 0) return ctx.note('no registered clients (add one with `sws client add USER --key FILE`)');
      ctx.out(table(['USER', 'KEY', 'CREATED'], list.map((c) => [c.user, fingerprintOf(c.keyId), c.createdAt])));
    });
}

/** `sws inner init | key | site add/remove/list`: the inner's data dir, key pair 39 and sites. */
import { Option, type Command } from 'commander';
import { initStore, innerKey, schemas, sites, UsageError, type Site } from '../../store/index.ts';
import { innerKeys } from '../../store/innerkeys.ts';
import { arg, dataDirOf, group, readInputFile, asKeyInput, storeOptions, table, withStore, fingerprintOf, type CliContext } from './common.ts';
import { describeMasterKey } from './outer.ts';

export function register(program: Command, ctx: CliContext): void {
  const inner = group(program, 'inner');

  inner
    .command('init')
    .description("create the inner data dir, its database and the inner's key pair")
    .addOption(new Option('--key-bits <BITS>', 'RSA key size of the inner key pair: 2048, 3072 or 4096').default('2048'))
    .option('--force', 'replace an existing data dir (its key pair, sites, clients and rules are destroyed)')
    .action(async (opts: { keyBits: string; force?: boolean }, cmd: Command) => {
      const dir = dataDirOf(cmd, ctx);
      const bits = arg(schemas.keyBitsSchema, opts.keyBits, '--key-bits');
      const r = await initStore(dir, 'inner', { ...storeOptions(ctx), force: opts.force ?? false, keyBits: bits });
      r.store.close();
      ctx.out(
        `initialized inner data dir ${dir}\n` +
          `  key pair:   RSA ${bits}, ${fingerprintOf(r.keyId ?? '')}\n` +
          `  master key: ${describeMasterKey(r.masterKeySource, dir)}\n` +
          'next: `sws inner key` prints the public key to give the outer (`sws server add ... --key FILE`)',
      );
    });

  // `group`: inner-key.ts adds `key rotate | list | retire` under the same command.
  group(inner, 'key', "print the inner's public key (PEM, SPKI) on stdout; rotate, list and retire keys")
    .option('--statement', 'print instead the signed statement by which the previous key endorsed the current one (for `sws server update --statement`)')
    .action(async (opts: { statement?: boolean }, cmd: Command) => {
      await withStore(
        cmd,
        ctx,
        'inner',
        (store) => {
          if (!opts.statement) return void ctx.stdout.write(innerKey(store).publicKeyPem());
          const current = innerKeys(store).current();
          if (!current.endorsement) throw new UsageError('the current inner key was not made by `sws inner key rotate`: it has no endorsement statement', '--statement');
          ctx.json(current.endorsement);
        },
        { readonly: true },
      );
    });

  const site = group(inner, 'site', 'the WWW servers the inner forwards to, by host');

  site
    .command('add')
    .description('serve requests for HOST from the WWW server at --upstream')
    .argument('<HOST>', 'host name as clients use it (a port other than 80/443 is part of it)')
    .requiredOption('--upstream <URL>', 'origin of the WWW server: http://HOST[:PORT] or https://HOST[:PORT]')
    .option('--ca <FILE>', 'PEM certificate(s) of a private CA to trust for an https upstream')
    .option('--client-cert <FILE>', 'TLS client certificate (PEM, with any intermediates) the inner presents to an https upstream')
    .option('--client-key <FILE>', 'its private key (PEM); stored sealed under the master key')
    .option('--replace', 'change an existing site')
    .action(async (host: string, opts: { upstream: string; ca?: string; clientCert?: string; clientKey?: string; replace?: boolean }, cmd: Command) => {
      const caPem = opts.ca !== undefined ? readInputFile(opts.ca, '--ca', ctx) : undefined;
      if ((opts.clientCert === undefined) !== (opts.clientKey === undefined)) {
        throw new UsageError('--client-cert and --client-key go together', opts.clientCert === undefined ? '--client-cert' : '--client-key');
      }
      const certPem = opts.clientCert !== undefined ? readInputFile(opts.clientCert, '--client-cert', ctx) : undefined;
      const keyPem = opts.clientKey !== undefined ? readInputFile(opts.clientKey, '--client-key', ctx) : undefined;
      const s = await withStore(cmd, ctx, 'inner', async (store) => {
        const clientIdentity =
          certPem !== undefined && keyPem !== undefined
            ? await asKeyInput('--client-cert', opts.clientCert!, () => sites(store).sealClientIdentity(host, certPem, keyPem))
            : undefined;
        return asKeyInput('--ca', opts.ca ?? '', () => sites(store).add({ host, upstream: opts.upstream, caPem, clientIdentity }, { replace: opts.replace ?? false }));
      });
      ctx.out(`site ${s.host} → ${s.upstream}${s.caPem ? ' (private CA)' : ''}${s.clientCertPem ? ' (client certificate)' : ''}`);
    });

  site
    .command('remove')
    .description('stop serving HOST')
    .argument('<HOST>')
    .action(async (host: string, _opts: object, cmd: Command) => {
      await withStore(cmd, ctx, 'inner', (store) => sites(store).remove(host));
      ctx.out(`removed site ${host}`);
    });

  site
    .command('list')
    .description('the sites')
    .option('--json', 'machine-readable output')
    .action(async (opts: { json?: boolean }, cmd: Command) => {
      const list = await withStore(cmd, ctx, 'inner', (store) => sites(store).list(), { readonly: true });
      if (opts.json) return ctx.json(list.map((s: Site) => ({ host: s.host, upstream: s.upstream, ca: s.caPem !== undefined, clientCert: s.clientCertPem !== undefined, createdAt: s.createdAt })));
      if (list.length === 0) return ctx.note('no sites (add one with `sws inner site add HOST --upstream URL`)');
      ctx.out(table(['HOST', 'UPSTREAM', 'CA', 'CREATED'], list.map((s) => [s.host, s.upstream, s.caPem ? 'private' : '-', s.createdAt])));
    });
}

/** `sws user add | key | remove | list | passwd`: the outer's client list 17. */
import { Option, type Command } from 'commander';
import { NotFoundError, outerUsers, schemas } from '../../store/index.ts';
import { arg, asKeyInput, fingerprintOf, group, readInputFile, readPasswordStdin, table, withStore, type CliContext } from './common.ts';
import { writeFileSync } from 'node:fs';
import { resolve } from 'node:path';

export function register(program: Command, ctx: CliContext): void {
  const user = group(program, 'user');

  user
    .command('add')
    .description('create a user: a password (from stdin) and a fresh key pair')
    .argument('<USER>', 'user name (letters, digits, . _ @ + -)')
    .requiredOption('--password-stdin', 'read the password from stdin (one trailing newline is not part of it)')
    .addOption(new Option('--key-bits <BITS>', "RSA size of the user's key pair: 2048, 3072 or 4096").default('2048'))
    .action(async (name: string, opts: { keyBits: string }, cmd: Command) => {
      arg(schemas.userNameSchema, name, 'USER');
      const keyBits = arg(schemas.keyBitsSchema, opts.keyBits, '--key-bits');
      const password = await readPasswordStdin(ctx);
      const u = await withStore(cmd, ctx, 'outer', (store) => outerUsers(store).add(name, password, { keyBits }));
      ctx.out(`created user ${u.name} (${fingerprintOf(u.keyId)}); register the key at the inner: sws user key ${u.name} > ${u.name}.pem, then sws client add ${u.name} --key ${u.name}.pem`);
    });

  user
    .command('key')
    .description("print USER's public key (PEM, SPKI) on stdout, to register at the inner")
    .argument('<USER>')
    .action(async (name: string, _opts: object, cmd: Command) => {
      await withStore(
        cmd,
        ctx,
        'outer',
        (store) => {
          const u = outerUsers(store).get(name);
          if (!u) throw new NotFoundError(`no user named ${name} (see \`sws user list\`)`);
          ctx.stdout.write(u.publicKeyPem);
        },
        { readonly: true },
      );
    });

  user
    .command('csr')
    .description("print a certificate request (PKCS #10, CN = USER) signed with USER's key, for `sws ca sign --csr` at the inner")
    .argument('<USER>')
    .option('--out <FILE>', 'write the request here instead of stdout')
    .action(async (name: string, opts: { out?: string }, cmd: Command) => {
      const { userCertificates } = await import('../../store/usercerts.ts');
      const pem = await withStore(cmd, ctx, 'outer', (store) => userCertificates(store).csr(name), { readonly: true });
      if (opts.out === undefined) ctx.stdout.write(pem);
      else writeFileSync(resolve(ctx.cwd, opts.out), pem, { mode: 0o644 });
    });

  user
    .command('cert')
    .description("install USER's certificate (from `sws ca sign` at the inner); without FILE, print the installed one")
    .argument('<USER>')
    .argument('[FILE]', 'the certificate (PEM, with any intermediates); it must hold USER\'s current key and CN = USER')
    .action(async (name: string, file: string | undefined, _opts: object, cmd: Command) => {
      const { userCertificates } = await import('../../store/usercerts.ts');
      if (file === undefined) {
        const c = await withStore(cmd, ctx, 'outer', (store) => userCertificates(store).get(name), { readonly: true });
        if (!c) throw new NotFoundError(`no certificate installed for ${name} (make one: \`sws user csr ${name}\`, then \`sws ca sign\` at the inner)`);
        return void ctx.stdout.write(c.certPem);
      }
      const pem = readInputFile(file, 'FILE', ctx);
      const c = await withStore(cmd, ctx, 'outer', (store) => asKeyInput('FILE', file, () => userCertificates(store).install(name, pem)));
      ctx.out(`installed the certificate of ${c.user} (serial ${c.serial}, issued by ${c.issuer}, valid until ${c.notAfter}); register it at the inner: sws client add ${c.user} --cert FILE --replace`);
    });

  user
    .command('rekey')
    .description("replace USER's key pair (the old private key is destroyed): running outers sign with the new key from the next exchange")
    .argument('<USER>')
    .addOption(new Option('--key-bits <BITS>', 'RSA size of the new key pair: 2048, 3072 or 4096').default('2048'))
    .action(async (name: string, opts: { keyBits: string }, cmd: Command) => {
      const bits = arg(schemas.keyBitsSchema, opts.keyBits, '--key-bits');
      const { userCertificates } = await import('../../store/usercerts.ts');
      const r = await withStore(cmd, ctx, 'outer', (store) => userCertificates(store).rekey(name, bits));
      ctx.out(
        `new key for ${name}: ${fingerprintOf(r.keyId)} (was ${fingerprintOf(r.previousKeyId)}); register it at the inner: ` +
          `sws user key ${name} > ${name}.pem, then sws client add ${name} --key ${name}.pem --replace`,
      );
    });

  user
    .command('remove')
    .description('delete USER, with the key pair')
    .argument('<USER>')
    .action(async (name: string, _opts: object, cmd: Command) => {
      await withStore(cmd, ctx, 'outer', (store) => outerUsers(store).remove(name));
      ctx.out(`removed user ${name}`);
    });

  user
    .command('list')
    .description('the users and their key fingerprints')
    .option('--json', 'machine-readable output')
    .action(async (opts: { json?: boolean }, cmd: Command) => {
      const list = await withStore(cmd, ctx, 'outer', (store) => outerUsers(store).list(), { readonly: true });
      if (opts.json) return ctx.json(list.map((u) => ({ name: u.name, keyId: u.keyId, createdAt: u.createdAt, updatedAt: u.updatedAt })));
      if (list.length === 0) return ctx.note('no users (add one with `sws user add USER --password-stdin`)');
      ctx.out(table(['USER', 'KEY', 'CREATED'], list.map((u) => [u.name, fingerprintOf(u.keyId), u.createdAt])));
    });

  user
    .command('passwd')
    .description("set USER's password (from stdin)")
    .argument('<USER>')
    .requiredOption('--password-stdin', 'read the new password from stdin (one trailing newline is not part of it)')
    .action(async (name: string, _opts: object, cmd: Command) => {
      const password = await readPasswordStdin(ctx);
      await withStore(cmd, ctx, 'outer', (store) => outerUsers(store).setPassword(name, password));
      ctx.out(`password of ${name} changed`);
    });
}

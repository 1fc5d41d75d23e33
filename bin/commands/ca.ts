/**
 * `sws ca init | cert | sign | revoke | crl | list | trust | untrust`: the inner's certificate
 * authority for users' certificates (claim 3; docs/CERTIFICATES.md).
 */
import { Option, type Command } from 'commander';
import { writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { certificateAuthority, REVOCATION_REASONS, type RevocationReason } from '../../store/ca.ts';
import { schemas, UsageError } from '../../store/index.ts';
import { serverNames } from '../../store/x509.ts';
import { arg, asKeyInput, group, readInputFile, table, withStore, type CliContext } from './common.ts';
import { intFlag } from './run.ts';

const DESCRIPTION = "the inner's certificate authority for users' certificates (inner data dir)";

/** `--not-before` / `--not-after`: an ISO 8601 date or date-time (UTC unless it says otherwise). */
function dateFlag(value: string | undefined, flag: string): Date | undefined {
  if (value === undefined) return undefined;
  if (!/^\d{4}-\d{2}-\d{2}([T ][\d:.]+(Z|[+-]\d{2}:?\d{2})?)?$/.test(value)) throw new UsageError('must be an ISO 8601 date, e.g. 2026-01-31 or 2026-01-31T12:00:00Z', flag);
  const d = new Date(/T|\s/.test(value) && !/(Z|[+-]\d{2}:?\d{2})$/.test(value) ? `${value}Z` : value);
  if (Number.isNaN(d.getTime())) throw new UsageError('is not a valid date', flag);
  return d;
}

/** Writes PEM to --out (mode 0644: certificates are public) or stdout. */
function emit(ctx: CliContext, pem: string, out: string | undefined): void {
  if (out === undefined) return void ctx.stdout.write(pem);
  writeFileSync(resolve(ctx.cwd, out), pem, { mode: 0o644 });
}

export function register(program: Command, ctx: CliContext): void {
  const ca = group(program, 'ca', DESCRIPTION);

  ca.command('init')
    .description('create the CA key pair (sealed under the master key) and its self-signed certificate')
    .option('--name <CN>', 'the CA common name', 'sws inner CA')
    .addOption(new Option('--key-bits <BITS>', 'RSA size of the CA key').choices(['2048', '3072', '4096']).default('3072'))
    .option('--days <N>', 'validity of the CA certificate in days', '3650')
    .option('--force', 'replace an existing CA (certificates it issued stop being accepted)')
    .action(async (opts: { name: string; keyBits: string; days: string; force?: boolean }, cmd: Command) => {
      if (!/^[^\u0000-\u001f]{1,64}$/.test(opts.name)) throw new UsageError('1 to 64 printable characters', '--name');
      const days = intFlag(opts.days, '--days', 1, 36_500)!;
      const r = await withStore(cmd, ctx, 'inner', (store) =>
        certificateAuthority(store).init({ name: opts.name, bits: Number(opts.keyBits) as 2048 | 3072 | 4096, days, force: opts.force ?? false }),
      );
      ctx.out(`created CA "${opts.name}" (certificate sha256:${r.fingerprint}); \`sws ca cert\` prints its certificate`);
    });

  ca.command('cert')
    .description('print the CA certificate (PEM) on stdout')
    .action(async (_opts: object, cmd: Command) => {
      await withStore(cmd, ctx, 'inner', (store) => ctx.stdout.write(certificateAuthority(store).certificatePem()), { readonly: true });
    });

  ca.command('sign')
    .description("issue a user's certificate (CN = the user name, clientAuth) or, with --server, a TLS server certificate, from a CSR or a public key")
    .option('--csr <FILE>', 'a PKCS #10 request (from `sws user csr USER` at the outer, or openssl req)')
    .option('--key <FILE>', 'a PEM public key instead of a request (the operator vouches for its owner)')
    .option('--user <USER>', 'the user name (subject CN); required with --key, checked against the request otherwise')
    .option('--days <N>', 'validity in days from --not-before (default 365)')
    .option('--not-before <DATE>', 'start of validity (ISO 8601; default: a minute ago)')
    .option('--not-after <DATE>', 'end of validity (ISO 8601; overrides --days)')
    .option('--out <FILE>', 'write the certificate here instead of stdout')
    .option('--server <NAMES>', 'a TLS server certificate instead: comma-separated DNS names and IP addresses (subjectAltName, serverAuth)')
    .action(async (opts: { csr?: string; key?: string; user?: string; days?: string; notBefore?: string; notAfter?: string; out?: string; server?: string }, cmd: Command) => {
      if ((opts.csr === undefined) === (opts.key === undefined)) throw new UsageError('give exactly one of --csr FILE or --key FILE', '--csr');
      if (opts.server !== undefined && opts.user !== undefined) throw new UsageError('a server certificate is named by --server, not by a user name', '--user');
      const server = opts.server !== undefined ? serverNames(opts.server.split(','), '--server').map((n) => n.value) : undefined;
      if (opts.user !== undefined) arg(schemas.userNameSchema, opts.user, '--user');
      const csrPem = opts.csr !== undefined ? readInputFile(opts.csr, '--csr', ctx) : undefined;
      const publicKeyPem = opts.key !== undefined ? readInputFile(opts.key, '--key', ctx) : undefined;
      const days = intFlag(opts.days, '--days', 1, 36_500);
      const notBefore = dateFlag(opts.notBefore, '--not-before');
      const notAfter = dateFlag(opts.notAfter, '--not-after');
      const flag = opts.csr !== undefined ? '--csr' : '--key';
      const issued = await withStore(cmd, ctx, 'inner', (store) =>
        asKeyInput(flag, (opts.csr ?? opts.key)!, () => certificateAuthority(store).sign({ csrPem, publicKeyPem, user: opts.user, days, notBefore, notAfter, server })),
      );
      emit(ctx, issued.certPem, opts.out);
      ctx.note(`issued a ${server ? 'server ' : ''}certificate for ${server ? server.join(', ') : issued.user}: serial ${issued.serial}, valid ${issued.notBefore} to ${issued.notAfter}`);
    });

  ca.command('revoke')
    .description('revoke a certificate: running inners end its sessions within a second and refuse it (SWS_ERR_CERT_REVOKED)')
    .argument('[SERIAL]', 'serial number (hex) of a certificate this CA issued (see `sws ca list`)')
    .option('--cert <FILE>', 'the certificate itself (also for certificates of a trusted CA)')
    .option('--crl <FILE>', 'import every entry of a CRL signed by this CA or a trusted CA')
    .addOption(new Option('--reason <REASON>', 'revocation reason').choices(Object.keys(REVOCATION_REASONS)).default('unspecified'))
    .action(async (serial: string | undefined, opts: { cert?: string; crl?: string; reason: string }, cmd: Command) => {
      const given = [serial !== undefined, opts.cert !== undefined, opts.crl !== undefined].filter(Boolean).length;
      if (given !== 1) throw new UsageError('give exactly one of SERIAL, --cert FILE or --crl FILE', 'SERIAL');
      if (opts.crl !== undefined) {
        const pem = readInputFile(opts.crl, '--crl', ctx);
        const n = await withStore(cmd, ctx, 'inner', (store) => asKeyInput('--crl', opts.crl!, () => certificateAuthority(store).importCrl(pem)));
        return ctx.out(`imported ${n} new revocation${n === 1 ? '' : 's'} from ${opts.crl}`);
      }
      const certPem = opts.cert !== undefined ? readInputFile(opts.cert, '--cert', ctx) : undefined;
      const r = await withStore(cmd, ctx, 'inner', (store) =>
        asKeyInput('--cert', opts.cert ?? '', () => certificateAuthority(store).revoke({ serial, certPem, reason: opts.reason as RevocationReason })),
      );
      ctx.out(`revoked certificate ${r.serial} (${r.reason})`);
    });

  ca.command('crl')
    .description("print this CA's certificate revocation list (PEM, signed by the CA) on stdout")
    .option('--days <N>', 'nextUpdate: days until the CRL should be fetched again', '7')
    .option('--out <FILE>', 'write the CRL here instead of stdout')
    .action(async (opts: { days: string; out?: string }, cmd: Command) => {
      const days = intFlag(opts.days, '--days', 1, 3650)!;
      const pem = await withStore(cmd, ctx, 'inner', (store) => certificateAuthority(store).crl({ days }), { readonly: true });
      emit(ctx, pem, opts.out);
    });

  ca.command('list')
    .description('the certificates this CA issued, the trusted CAs and the revocations')
    .option('--json', 'machine-readable output')
    .action(async (opts: { json?: boolean }, cmd: Command) => {
      const r = await withStore(
        cmd,
        ctx,
        'inner',
        async (store) => {
          const c = certificateAuthority(store);
          return { exists: c.exists(), keyId: c.exists() ? c.keyId() : undefined, issued: await c.issued(), trusted: c.trusted(), revocations: c.revocations() };
        },
        { readonly: true },
      );
      if (opts.json) {
        return ctx.json({
          ca: r.exists ? { keyId: r.keyId } : null,
          issued: r.issued.map((c) => ({ serial: c.serial, user: c.user, keyId: c.keyId, notBefore: c.notBefore, notAfter: c.notAfter, revoked: c.revoked })),
          trusted: r.trusted.map((t) => ({ fingerprint: t.fingerprint, subject: t.subject, addedAt: t.addedAt })),
          revocations: r.revocations,
        });
      }
      if (!r.exists && r.trusted.length === 0) return ctx.note('no CA (create one with `sws ca init`, or trust one with `sws ca trust FILE`)');
      if (r.issued.length) ctx.out(table(['SERIAL', 'USER', 'NOT AFTER', 'STATE'], r.issued.map((c) => [c.serial, c.user, c.notAfter, c.revoked ? 'revoked' : 'issued'])));
      else if (r.exists) ctx.note('this CA has issued no certificate yet (`sws ca sign`)');
      if (r.trusted.length) ctx.out(table(['TRUSTED CA', 'FINGERPRINT'], r.trusted.map((t) => [t.subject, `sha256:${t.fingerprint}`])));
    });

  ca.command('trust')
    .description("trust another CA (e.g. one made with openssl) for users' certificates")
    .argument('<FILE>', 'the CA certificate (PEM)')
    .action(async (file: string, _opts: object, cmd: Command) => {
      const pem = readInputFile(file, 'FILE', ctx);
      const t = await withStore(cmd, ctx, 'inner', (store) => asKeyInput('FILE', file, () => certificateAuthority(store).trust(pem)));
      ctx.out(`trusting ${t.subject} (sha256:${t.fingerprint}) for users' certificates`);
    });

  ca.command('untrust')
    .description('stop trusting a CA: certificates it issued are refused and their sessions end')
    .argument('<FINGERPRINT>', 'sha256:… of the CA certificate (see `sws ca list`)')
    .action(async (fp: string, _opts: object, cmd: Command) => {
      await withStore(cmd, ctx, 'inner', (store) => certificateAuthority(store).untrust(fp));
      ctx.out(`no longer trusting ${fp}`);
    });
}

/**
 * The inner's certificate authority (claim 3: users authenticated by key pairs, here vouched
 * for by certificates): its key pair (private half sealed under the master key, like the
 * inner key), the certificates it issued, other CAs the inner trusts for users'
 * certificates, and the revocation list the inner consults at every exchange.
 *
 * Certificates for users (RFC 5280 profile): subject `CN=<user>`, basicConstraints cA=false
 * (critical), keyUsage digitalSignature (critical), extendedKeyUsage clientAuth, subject and
 * authority key identifiers, a random 128-bit serial, sha256WithRSAEncryption.
 * TLS server certificates (`sws ca sign --server NAMES`): the same, with subjectAltName
 * dNSName/iPAddress entries, keyUsage digitalSignature + keyEncipherment and extendedKeyUsage
 * serverAuth (so the inner never accepts one as a user's certificate: certcheck.ts).
 */
import { toHex } from '../core/bytes.ts';
import { fromPem, generateRsaKeyPair, toPem, type RsaKeyBits } from '../core/crypto.ts';
import { sealAtRest } from '../core/atrest.ts';
import { internals, requireRole, type Store } from './db.ts';
import { ExistsError, NotFoundError, NotInitializedError, UsageError } from './errors.ts';
import { openSealedKey, publicKeyInfo } from './keys.ts';
import { check, userNameSchema } from './validate.ts';
import { trustAnchor, type TrustAnchor } from './certcheck.ts';
import type { x509 } from './x509.ts';
import { KeyFormatError } from '../core/errors.ts';

// @peculiar/x509 loads when a method needs it, not with this module: the inner reads its
// trust anchors and revocations from here at start-up without parsing a certificate.
const loadX509 = () => import('./x509.ts');

/** CRLReason codes (RFC 5280 §5.3.1), the values of x509.X509CrlReason (store/lazy.test.ts). */
export const REVOCATION_REASONS = {
  unspecified: 0,
  keyCompromise: 1,
  caCompromise: 2,
  affiliationChanged: 3,
  superseded: 4,
  cessationOfOperation: 5,
  privilegeWithdrawn: 9,
} as const;
export type RevocationReason = keyof typeof REVOCATION_REASONS;

const DAY = 86_400_000;
const caKeyContext = (keyId: string) => `ca-key:${keyId}`;

export interface IssuedCertificate {
  readonly serial: string;
  readonly subject: string;
  readonly user: string;
  readonly keyId: string;
  readonly notBefore: string;
  readonly notAfter: string;
  readonly certPem: string;
  readonly issuedAt: string;
  readonly revoked: boolean;
}

export interface Revocation {
  readonly issuerKeyId: string;
  readonly serial: string;
  readonly reason: RevocationReason;
  readonly revokedAt: string;
}

export interface TrustedCa {
  readonly fingerprint: string;
  readonly keyId: string;
  readonly subject: string;
  readonly certPem: string;
  readonly addedAt: string;
}

export interface SignInput {
  /** A PKCS #10 request (its signature proves possession of the key)… */
  readonly csrPem?: string | undefined;
  /** …or a bare public key (PEM SPKI) whose owner the operator vouches for. */
  readonly publicKeyPem?: string | undefined;
  /** The user name (subject CN); taken from the request when omitted. */
  readonly user?: string | undefined;
  readonly notBefore?: Date | undefined;
  readonly notAfter?: Date | undefined;
  /** Validity in days from notBefore when notAfter is not given (default 365). */
  readonly days?: number | undefined;
  /**
   * A TLS server certificate instead of a user's: these DNS names and IP addresses go into
   * subjectAltName (the first is the subject CN), extendedKeyUsage is serverAuth and keyUsage
   * digitalSignature + keyEncipherment. The user name does not apply.
   */
  readonly server?: readonly string[] | undefined;
}

export interface CertificateAuthority {
  exists(): boolean;
  init(opts?: { name?: string; bits?: RsaKeyBits; days?: number; force?: boolean }): Promise<{ certPem: string; fingerprint: string; keyId: string }>;
  /** The CA certificate (PEM). */
  certificatePem(): string;
  /** Hex SHA-256 of the CA's SPKI (its issuer identity in the revocation list). */
  keyId(): string;
  sign(input: SignInput): Promise<IssuedCertificate>;
  issued(): Promise<IssuedCertificate[]>;
  /** Revokes a certificate of this CA by serial, or any trusted CA's certificate given in full. */
  revoke(input: { serial?: string | undefined; certPem?: string | undefined; reason?: RevocationReason | undefined }): Promise<Revocation>;
  revocations(): Revocation[];
  isRevoked(issuerKeyId: string, serial: string): boolean;
  /** A CRL (RFC 5280 §5) of this CA's revocations, signed by the CA. */
  crl(opts?: { days?: number }): Promise<string>;
  /** Imports the entries of a CRL signed by a trusted CA; returns how many were new. */
  importCrl(pem: string): Promise<number>;
  trust(pem: string): Promise<TrustedCa>;
  untrust(fingerprint: string): void;
  trusted(): TrustedCa[];
  /** The CA certificates users' certificates may chain to: this CA (if any) and the trusted ones. */
  anchorPems(): string[];
}

interface CaRow {
  bits: number;
  cert_pem: string;
  key_id: string;
  private_key_sealed: Uint8Array;
  created_at: string;
}

interface IssuedRow {
  issuer_key_id: string;
  serial: string;
  subject: string;
  key_id: string;
  not_before: string;
  not_after: string;
  cert_pem: string;
  issued_at: string;
  revoked: number;
}

interface RevocationRow {
  issuer_key_id: string;
  serial: string;
  reason: string;
  revoked_at: string;
}

interface TrustedRow {
  fingerprint: string;
  key_id: string;
  subject: string;
  cert_pem: string;
  added_at: string;
}

const toRevocation = (r: RevocationRow): Revocation => ({ issuerKeyId: r.issuer_key_id, serial: r.serial, reason: r.reason as RevocationReason, revokedAt: r.revoked_at });
const toTrusted = (r: TrustedRow): TrustedCa => ({ fingerprint: r.fingerprint, keyId: r.key_id, subject: r.subject, certPem: r.cert_pem, addedAt: r.added_at });
const toIssued = (commonName: (subject: string) => string | undefined, r: IssuedRow): IssuedCertificate => ({
  serial: r.serial,
  subject: r.subject,
  user: commonName(r.subject) ?? '',
  keyId: r.key_id,
  notBefore: r.not_before,
  notAfter: r.not_after,
  certPem: r.cert_pem,
  issuedAt: r.issued_at,
  revoked: r.revoked !== 0,
});

function validity(input: { notBefore?: Date | undefined; notAfter?: Date | undefined; days?: number | undefined }, defaultDays: number): { notBefore: Date; notAfter: Date } {
  // Backdated a minute by default so a peer whose clock is slightly behind accepts it at once.
  const notBefore = input.notBefore ?? new Date(Math.floor(Date.now() / 1000) * 1000 - 60_000);
  const days = input.days ?? defaultDays;
  if (!Number.isFinite(days) || days <= 0) throw new UsageError('the validity must be a positive number of days', '--days');
  const notAfter = input.notAfter ?? new Date(notBefore.getTime() + days * DAY);
  if (Number.isNaN(notBefore.getTime())) throw new UsageError('not a valid date', '--not-before');
  if (Number.isNaN(notAfter.getTime())) throw new UsageError('not a valid date', '--not-after');
  if (notAfter.getTime() <= notBefore.getTime()) throw new UsageError('notAfter must be later than notBefore', '--not-after');
  return { notBefore, notAfter };
}

export function certificateAuthority(store: Store): CertificateAuthority {
  requireRole(store, 'inner', 'the certificate authority');
  const i = internals(store);
  const row = () => i.read(() => i.prepare('SELECT * FROM ca WHERE id = 1').get() as CaRow | undefined);
  const need = (): CaRow => {
    const r = row();
    if (!r) throw new NotInitializedError('this inner has no certificate authority: run `sws ca init`');
    return r;
  };
  const signer = async (r: CaRow) => {
    const { importX509SigningKey, parseCertificate } = await loadX509();
    const pkcs8 = await openSealedKey(await store.masterKey(), r.private_key_sealed, caKeyContext(r.key_id));
    try {
      return { key: await importX509SigningKey(pkcs8), cert: parseCertificate(r.cert_pem) };
    } finally {
      pkcs8.fill(0);
    }
  };
  const revokedStmt = () => i.prepare('SELECT 1 FROM cert_revocations WHERE issuer_key_id = ? AND serial = ?');

  const ca: CertificateAuthority = {
    exists: () => row() !== undefined,

    async init(opts = {}) {
      const old = row();
      if (old && !opts.force) throw new ExistsError('this inner already has a certificate authority; add --force to replace it (certificates it issued stop being accepted)');
      const { certificatePem, cnName, importX509PublicKey, importX509SigningKey, randomSerial, sha256Hex, X509_SIGNING, x509 } = await loadX509();
      const bits = opts.bits ?? 3072;
      const name = opts.name ?? 'sws inner CA';
      const kp = await generateRsaKeyPair(bits);
      try {
        const [signKey, publicKey] = await Promise.all([importX509SigningKey(kp.pkcs8), importX509PublicKey(kp.spki)]);
        const { notBefore, notAfter } = validity({ days: opts.days }, 3650);
        const cert = await x509.X509CertificateGenerator.create({
          serialNumber: randomSerial(),
          subject: cnName(name),
          issuer: cnName(name),
          notBefore,
          notAfter,
          publicKey,
          signingKey: signKey,
          signingAlgorithm: X509_SIGNING,
          extensions: [
            new x509.BasicConstraintsExtension(true, 0, true),
            new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
            await x509.SubjectKeyIdentifierExtension.create(publicKey),
          ],
        });
        const keyId = toHex(new Uint8Array(await crypto.subtle.digest('SHA-256', new Uint8Array(kp.spki))));
        const sealed = await sealAtRest(await store.masterKey(), kp.pkcs8, caKeyContext(keyId));
        const certPem = certificatePem(cert);
        i.write(() => {
          i.prepare('DELETE FROM ca').run();
          i.prepare('INSERT INTO ca (id, bits, cert_pem, key_id, private_key_sealed, created_at) VALUES (1, ?, ?, ?, ?, ?)').run(bits, certPem, keyId, sealed, new Date().toISOString());
          i.audit(old ? 'ca.replace' : 'ca.init', name, { keyId, bits, notAfter: notAfter.toISOString() });
        });
        return { certPem, fingerprint: await sha256Hex(new Uint8Array(cert.rawData)), keyId };
      } finally {
        kp.pkcs8.fill(0);
      }
    },

    certificatePem: () => need().cert_pem,
    keyId: () => need().key_id,

    async sign(input) {
      const { certificatePem, cnName, commonName, importX509PublicKey, normalizeSerial, parseCsr, randomSerial, serverNames, spkiOf, X509_SIGNING, x509 } = await loadX509();
      const r = need();
      let spki: Uint8Array;
      let user = input.user;
      if (input.csrPem !== undefined) {
        const csr = parseCsr(input.csrPem);
        if (!(await csr.verify().catch(() => false))) throw new UsageError('the certificate request is not signed by its own key (proof of possession failed)', '--csr');
        const cn = commonName(csr.subjectName);
        if (input.server === undefined && user !== undefined && cn !== undefined && cn !== user) throw new UsageError(`the request names CN=${cn}, not ${user}`, '--user');
        user ??= cn;
        spki = spkiOf(csr);
      } else if (input.publicKeyPem !== undefined) {
        if (user === undefined && input.server === undefined) throw new UsageError('the user name is required with a bare public key', '--user');
        const info = await publicKeyInfo(input.publicKeyPem);
        spki = fromPem(info.pem, 'PUBLIC KEY');
      } else {
        throw new UsageError('a certificate request (--csr FILE) or a public key (--key FILE) is required', '--csr');
      }
      const sans = input.server !== undefined ? serverNames(input.server, '--server') : undefined;
      if (sans !== undefined) {
        // A server certificate: named by its host names, not by a user.
        if (input.user !== undefined) throw new UsageError('a server certificate is named by --server, not by a user name', '--user');
        user = sans[0]!.value;
      } else {
        if (user === undefined) throw new UsageError('the request has no CN: give the user name with --user', '--user');
        user = check(userNameSchema, user, '--user');
      }
      // Only keys sws can use as client keys (RSA 2048–4096, e = 65537).
      const keyInfo = await publicKeyInfo(toPem(spki, 'PUBLIC KEY'));
      const { notBefore, notAfter } = validity(input, 365);
      const { key, cert: caCert } = await signer(r);
      const publicKey = await importX509PublicKey(spki);
      const serial = randomSerial();
      const cert = await x509.X509CertificateGenerator.create({
        serialNumber: serial,
        subject: cnName(user),
        issuer: caCert.subjectName,
        notBefore,
        notAfter,
        publicKey,
        signingKey: key,
        signingAlgorithm: X509_SIGNING,
        extensions: [
          new x509.BasicConstraintsExtension(false, undefined, true),
          ...(sans !== undefined
            ? [
                new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment, true),
                new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth], false),
                new x509.SubjectAlternativeNameExtension(sans, false),
              ]
            : [
                new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
                new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.clientAuth], false),
              ]),
          await x509.SubjectKeyIdentifierExtension.create(publicKey),
          await x509.AuthorityKeyIdentifierExtension.create(caCert, false),
        ],
      });
      const certPem = certificatePem(cert);
      const now = new Date().toISOString();
      const s = normalizeSerial(serial);
      i.write(() => {
        i.prepare('INSERT INTO ca_issued (issuer_key_id, serial, subject, key_id, not_before, not_after, cert_pem, issued_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)').run(
          r.key_id,
          s,
          cert.subject,
          keyInfo.keyId,
          notBefore.toISOString(),
          notAfter.toISOString(),
          certPem,
          now,
        );
        i.audit('ca.sign', user!, { serial: s, keyId: keyInfo.keyId, notAfter: notAfter.toISOString(), ...(sans !== undefined ? { server: sans.map((n) => n.value) } : {}) });
      });
      return { serial: s, subject: cert.subject, user, keyId: keyInfo.keyId, notBefore: notBefore.toISOString(), notAfter: notAfter.toISOString(), certPem, issuedAt: now, revoked: false };
    },

    async issued() {
      const r = row();
      if (!r) return [];
      const { commonName } = await loadX509();
      return i.read(() =>
        (
          i
            .prepare(
              'SELECT c.*, EXISTS (SELECT 1 FROM cert_revocations v WHERE v.issuer_key_id = c.issuer_key_id AND v.serial = c.serial) AS revoked FROM ca_issued c WHERE c.issuer_key_id = ? ORDER BY c.issued_at, c.serial',
            )
            .all(r.key_id) as IssuedRow[]
        ).map((row) => toIssued(commonName, row)),
      );
    },

    async revoke(input) {
      const { normalizeSerial, parseCertificate } = await loadX509();
      const reason = input.reason ?? 'unspecified';
      if (!(reason in REVOCATION_REASONS)) throw new UsageError(`allowed reasons are ${Object.keys(REVOCATION_REASONS).join(', ')}`, '--reason');
      let issuerKeyId: string;
      let serial: string;
      if (input.certPem !== undefined) {
        const cert = parseCertificate(input.certPem);
        serial = normalizeSerial(cert.serialNumber);
        const anchors = await Promise.all(ca.anchorPems().map(trustAnchor));
        let issuer: TrustAnchor | undefined;
        for (const a of anchors) if (cert.issuer === a.subject && (await cert.verify({ publicKey: a.cert, signatureOnly: true }).catch(() => false))) issuer = a;
        if (!issuer) throw new UsageError('the certificate was not issued by this CA or a trusted CA (revoke intermediates-issued certificates through their CRL)', '--cert');
        issuerKeyId = issuer.keyId;
      } else if (input.serial !== undefined) {
        try {
          serial = normalizeSerial(input.serial);
        } catch (e) {
          throw new UsageError((e as Error).message, 'SERIAL');
        }
        issuerKeyId = need().key_id;
        const known = i.read(() => i.prepare('SELECT 1 FROM ca_issued WHERE issuer_key_id = ? AND serial = ?').get(issuerKeyId, serial));
        if (!known) throw new NotFoundError(`this CA issued no certificate with serial ${serial} (see \`sws ca list\`)`);
      } else {
        throw new UsageError('give the serial number or --cert FILE', 'SERIAL');
      }
      const revokedAt = new Date().toISOString();
      i.write(() => {
        const had = i.prepare('SELECT 1 FROM cert_revocations WHERE issuer_key_id = ? AND serial = ?').get(issuerKeyId, serial);
        if (had) throw new ExistsError(`certificate ${serial} is already revoked`);
        i.prepare('INSERT INTO cert_revocations (issuer_key_id, serial, reason, revoked_at) VALUES (?, ?, ?, ?)').run(issuerKeyId, serial, reason, revokedAt);
        i.audit('ca.revoke', serial, { issuerKeyId, reason });
      });
      return { issuerKeyId, serial, reason, revokedAt };
    },

    revocations() {
      return i.read(() => (i.prepare('SELECT * FROM cert_revocations ORDER BY revoked_at, serial').all() as RevocationRow[]).map(toRevocation));
    },

    isRevoked(issuerKeyId, serial) {
      return i.read(() => revokedStmt().get(issuerKeyId, serial) !== undefined);
    },

    async crl(opts = {}) {
      const { certificatePem, X509_SIGNING, x509 } = await loadX509();
      const r = need();
      const { key, cert } = await signer(r);
      const entries = (i.read(() => i.prepare('SELECT * FROM cert_revocations WHERE issuer_key_id = ? ORDER BY serial').all(r.key_id)) as RevocationRow[]).map((v) => ({
        serialNumber: v.serial.length % 2 ? `0${v.serial}` : v.serial,
        revocationDate: new Date(v.revoked_at),
        reason: REVOCATION_REASONS[v.reason as RevocationReason] ?? REVOCATION_REASONS.unspecified,
      }));
      const thisUpdate = new Date(Math.floor(Date.now() / 1000) * 1000);
      const crl = await x509.X509CrlGenerator.create({
        issuer: cert.subjectName,
        thisUpdate,
        nextUpdate: new Date(thisUpdate.getTime() + (opts.days ?? 7) * DAY),
        entries,
        signingKey: key,
        signingAlgorithm: X509_SIGNING,
        extensions: [await x509.AuthorityKeyIdentifierExtension.create(cert, false)],
      });
      return certificatePem(crl);
    },

    async importCrl(pem) {
      const { normalizeSerial, x509 } = await loadX509();
      const m = /-----BEGIN X509 CRL-----([\s\S]*?)-----END X509 CRL-----/.exec(pem);
      if (!m) throw new KeyFormatError('expected a PEM block "-----BEGIN X509 CRL-----"');
      let crl: x509.X509Crl;
      try {
        crl = new x509.X509Crl(Buffer.from(m[1]!.replace(/\s+/g, ''), 'base64'));
      } catch (cause) {
        throw new KeyFormatError('the CRL is not a valid X.509 CRL', { cause });
      }
      const anchors = await Promise.all(ca.anchorPems().map(trustAnchor));
      let issuer: TrustAnchor | undefined;
      for (const a of anchors) if (crl.issuer === a.subject && (await crl.verify({ publicKey: a.cert }).catch(() => false))) issuer = a;
      if (!issuer) throw new UsageError('the CRL is not signed by this CA or a trusted CA', '--crl');
      const now = new Date().toISOString();
      let added = 0;
      i.write(() => {
        const ins = i.prepare('INSERT INTO cert_revocations (issuer_key_id, serial, reason, revoked_at) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING');
        for (const e of crl.entries) {
          const reasonName = (Object.entries(REVOCATION_REASONS).find(([, v]) => v === e.reason)?.[0] ?? 'unspecified') as RevocationReason;
          added += ins.run(issuer!.keyId, normalizeSerial(e.serialNumber), reasonName, e.revocationDate?.toISOString?.() ?? now).changes;
        }
        i.audit('ca.crl.import', issuer!.subject, { entries: crl.entries.length, added });
      });
      return added;
    },

    async trust(pem) {
      const { certificatePem, x509 } = await loadX509();
      const a = await trustAnchor(pem);
      const bc = a.cert.getExtension(x509.BasicConstraintsExtension);
      if (!bc?.ca) throw new UsageError('the certificate is not a CA certificate (basicConstraints cA is not set)', 'FILE');
      const certPem = certificatePem(a.cert);
      const addedAt = new Date().toISOString();
      i.write(() => {
        if (i.prepare('SELECT 1 FROM ca_trusted WHERE fingerprint = ?').get(a.fingerprint)) throw new ExistsError(`the CA ${a.subject} is already trusted`);
        i.prepare('INSERT INTO ca_trusted (fingerprint, key_id, subject, cert_pem, added_at) VALUES (?, ?, ?, ?, ?)').run(a.fingerprint, a.keyId, a.subject, certPem, addedAt);
        i.audit('ca.trust', a.subject, { fingerprint: a.fingerprint });
      });
      return { fingerprint: a.fingerprint, keyId: a.keyId, subject: a.subject, certPem, addedAt };
    },

    untrust(fingerprint) {
      const fp = fingerprint.toLowerCase().replace(/^sha256:/, '');
      i.write(() => {
        if (i.prepare('DELETE FROM ca_trusted WHERE fingerprint = ?').run(fp).changes === 0) throw new NotFoundError(`no trusted CA with fingerprint ${fp} (see \`sws ca list --trusted\`)`);
        i.audit('ca.untrust', fp);
      });
    },

    trusted() {
      return i.read(() => (i.prepare('SELECT * FROM ca_trusted ORDER BY subject').all() as TrustedRow[]).map(toTrusted));
    },

    anchorPems() {
      const own = row();
      return [...(own ? [own.cert_pem] : []), ...ca.trusted().map((t) => t.certPem)];
    },
  };
  return ca;
}

/**
 * Users' keys and certificates at the outer (claim 3): a certificate request signed with the
 * user's sealed private key (`sws user csr`), the certificate the inner's CA issued for it
 * (`sws user cert`), and replacing a user's key pair (`sws user rekey`). The user's private
 * key is unsealed only for the signature and zeroed right after.
 *
 * Loaded on demand (it pulls in @peculiar/x509).
 */
import { generateRsaKeyPair, toPem, type RsaKeyBits } from '../core/crypto.ts';
import { sealAtRest } from '../core/atrest.ts';
import { internals, requireRole, type Store } from './db.ts';
import { NotFoundError, UsageError } from './errors.ts';
import { publicKeyInfo } from './keys.ts';
import { outerUsers, userKeyContext } from './outer.ts';
import { certificatePem, cnName, commonName, importX509PublicKey, importX509SigningKey, parseCertificate, pemCertificates, sha256Hex, spkiOf, X509_SIGNING, x509 } from './x509.ts';

export interface UserCertificate {
  readonly user: string;
  readonly certPem: string;
  readonly subject: string;
  readonly issuer: string;
  readonly serial: string;
  readonly notBefore: string;
  readonly notAfter: string;
}

export interface UserCertificates {
  /** A PKCS #10 request for `CN=<user>` with the user's public key, signed by the user's private key. */
  csr(user: string): Promise<string>;
  /** Installs a certificate issued for the user's current key (and CN = user name). */
  install(user: string, pem: string): Promise<UserCertificate>;
  get(user: string): UserCertificate | undefined;
  /** A new key pair for the user (the old one is destroyed; an installed certificate is dropped). */
  rekey(user: string, bits?: RsaKeyBits): Promise<{ keyId: string; previousKeyId: string }>;
}

function describe(user: string, certPem: string): UserCertificate {
  const c = parseCertificate(certPem);
  return { user, certPem, subject: c.subject, issuer: c.issuer, serial: c.serialNumber.toLowerCase(), notBefore: c.notBefore.toISOString(), notAfter: c.notAfter.toISOString() };
}

export function userCertificates(store: Store): UserCertificates {
  requireRole(store, 'outer', 'user certificates');
  const i = internals(store);
  const users = outerUsers(store);
  const need = (user: string) => {
    const u = users.get(user);
    if (!u) throw new NotFoundError(`no user named ${user} (see \`sws user list\`)`);
    return u;
  };
  return {
    async csr(user) {
      const u = need(user);
      const pkcs8 = await users.privateKeyPkcs8(u.name);
      let signingKey: CryptoKey;
      try {
        signingKey = await importX509SigningKey(pkcs8);
      } finally {
        pkcs8.fill(0);
      }
      const spki = new Uint8Array(Buffer.from(u.publicKeyPem.replace(/-----[A-Z ]+-----|\s+/g, ''), 'base64'));
      const publicKey = await importX509PublicKey(spki);
      const csr = await x509.Pkcs10CertificateRequestGenerator.create({
        name: cnName(u.name),
        keys: { publicKey, privateKey: signingKey },
        signingAlgorithm: X509_SIGNING,
        extensions: [
          new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
          new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.clientAuth], false),
        ],
      });
      return certificatePem(csr);
    },

    async install(user, pem) {
      const u = need(user);
      const blocks = pemCertificates(pem);
      if (blocks.length === 0) throw new UsageError('expected a PEM certificate ("-----BEGIN CERTIFICATE-----")', 'FILE');
      const leaf = parseCertificate(blocks[0]!);
      if (commonName(leaf.subjectName) !== u.name) throw new UsageError(`the certificate is for CN=${commonName(leaf.subjectName) ?? '(none)'}, not ${u.name}`, 'FILE');
      if ((await sha256Hex(spkiOf(leaf))) !== u.keyId) throw new UsageError(`the certificate does not hold ${u.name}'s current public key (made before \`sws user rekey\`?)`, 'FILE');
      const chain = blocks.map((b) => certificatePem(parseCertificate(b))).join('');
      i.write(() => {
        i.prepare('UPDATE outer_users SET cert_pem = ?, updated_at = ? WHERE name = ?').run(chain, new Date().toISOString(), u.name);
        i.audit('user.cert', u.name, { serial: leaf.serialNumber.toLowerCase(), notAfter: leaf.notAfter.toISOString() });
      });
      return describe(u.name, chain);
    },

    get(user) {
      const r = i.read(() => i.prepare('SELECT name, cert_pem FROM outer_users WHERE name = ?').get(user) as { name: string; cert_pem: string | null } | undefined);
      return r?.cert_pem ? describe(r.name, r.cert_pem) : undefined;
    },

    async rekey(user, bits) {
      const u = need(user);
      const kp = await generateRsaKeyPair(bits ?? 2048);
      try {
        const info = await publicKeyInfo(toPem(kp.spki, 'PUBLIC KEY'));
        const sealed = await sealAtRest(await store.masterKey(), kp.pkcs8, userKeyContext(u.name));
        i.write(() => {
          const r = i
            .prepare('UPDATE outer_users SET public_key_pem = ?, key_id = ?, private_key_sealed = ?, cert_pem = NULL, updated_at = ? WHERE name = ? AND key_id = ?')
            .run(info.pem, info.keyId, sealed, new Date().toISOString(), u.name, u.keyId);
          if (r.changes === 0) throw new UsageError(`the key of ${u.name} changed meanwhile; run the command again`, 'USER');
          i.audit('user.rekey', u.name, { previous: u.keyId, keyId: info.keyId });
        });
        return { keyId: info.keyId, previousKeyId: u.keyId };
      } finally {
        kp.pkcs8.fill(0);
      }
    },
  };
}

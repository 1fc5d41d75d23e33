/**
 * Key material as the store keeps it: public keys as canonical PEM (SPKI) with their key ID
 * (hex SHA-256 of the SPKI DER), private keys only sealed under the master key with an AAD
 * that names the owner, so a sealed blob copied to another row does not open.
 */
import { X509Certificate } from 'node:crypto';
import { toHex } from '../core/bytes.ts';
import { fromPem, generateRsaKeyPair, importPublicKey, toPem, type RsaKeyBits } from '../core/crypto.ts';
import { openAtRest, sealAtRest } from '../core/atrest.ts';
import { KeyFormatError } from '../core/errors.ts';
import { DbCorruptError } from './errors.ts';

export interface PublicKeyInfo {
  readonly pem: string;
  readonly keyId: string;
  readonly bits: number;
}

/** Validates a PEM "PUBLIC KEY" (RSA 2048/3072/4096, e = 65537); throws KeyFormatError. */
export async function publicKeyInfo(pem: string): Promise<PublicKeyInfo> {
  const h = await importPublicKey(pem);
  return { pem: toPem(h.spki, 'PUBLIC KEY'), keyId: toHex(h.keyId), bits: h.bits };
}

/** The public key of a PEM certificate, as a PEM "PUBLIC KEY"; throws KeyFormatError. */
export function certificatePublicKeyPem(certPem: string): { certPem: string; publicKeyPem: string } {
  fromPem(certPem, 'CERTIFICATE');
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(certPem);
  } catch (cause) {
    throw new KeyFormatError('the certificate is not a valid X.509 certificate in PEM form', { cause });
  }
  const spki = cert.publicKey.export({ type: 'spki', format: 'der' });
  return { certPem: cert.toString(), publicKeyPem: toPem(new Uint8Array(spki), 'PUBLIC KEY') };
}

export interface GeneratedKey {
  readonly publicKeyPem: string;
  readonly keyId: string;
  readonly sealed: Uint8Array;
  readonly bits: RsaKeyBits;
}

/** Generates an RSA key pair and seals the private half for `context` (e.g. `user-key:alice`). */
export async function generateSealedKey(masterKey: CryptoKey, bits: RsaKeyBits, context: string): Promise<GeneratedKey> {
  const kp = await generateRsaKeyPair(bits);
  try {
    const info = await publicKeyInfo(toPem(kp.spki, 'PUBLIC KEY'));
    const sealed = await sealAtRest(masterKey, kp.pkcs8, context);
    return { publicKeyPem: info.pem, keyId: info.keyId, sealed, bits };
  } finally {
    kp.pkcs8.fill(0);
  }
}

/** Opens a sealed private key; a failure with a verified master key means the row was altered or moved. */
export async function openSealedKey(masterKey: CryptoKey, sealed: Uint8Array, context: string): Promise<Uint8Array> {
  try {
    return await openAtRest(masterKey, sealed, context);
  } catch (cause) {
    throw new DbCorruptError(`the stored private key (${context}) does not open with the master key: the database row was altered or copied from elsewhere`, {
      cause,
    });
  }
}

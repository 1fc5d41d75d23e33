/** Checks a TLS certificate file and its key file at the edge, so a mismatch is exit 2 naming the flag, not a failed start. */
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { UsageError } from '../../store/index.ts';

export function checkTlsIdentity(certPem: string, keyPem: string, certFlag: string, keyFlag: string): void {
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(certPem);
  } catch {
    throw new UsageError('not a PEM certificate ("-----BEGIN CERTIFICATE-----")', certFlag);
  }
  let key;
  try {
    key = createPrivateKey({ key: keyPem, format: 'pem' });
  } catch {
    throw new UsageError('not an unencrypted PEM private key', keyFlag);
  }
  if (!cert.checkPrivateKey(key)) throw new UsageError(`the key does not belong to the certificate given with ${certFlag}`, keyFlag);
}

/**
 * Registering a user by certificate (`sws client add USER --cert FILE`): the checks that can
 * never change their answer refuse the registration (a subject CN other than USER, a
 * certificate whose key usage forbids client authentication); the ones that depend on the
 * clock, the trusted CAs or the revocation list are reported as today's verdict, because the
 * inner decides them again at every exchange (sidecar-inner/directory.ts).
 *
 * Loaded on demand (it pulls in @peculiar/x509), so commands that never touch certificates
 * do not pay for it.
 */
import type { Store } from './db.ts';
import { UsageError } from './errors.ts';
import { certificateAuthority } from './ca.ts';
import { analyzeCertificate, certificateVerdict, CertErrorCodes, CertificateError, trustAnchor, type TrustAnchor } from './certcheck.ts';
import { certificatePem, parseCertificate, pemCertificates } from './x509.ts';

export interface RegistrationCheck {
  /** The certificate and any intermediates, re-encoded. */
  readonly chainPem: string;
  readonly notAfter: number;
  /** Why the inner would refuse it right now, or undefined when it would accept it. */
  readonly verdict: CertificateError | undefined;
}

export async function trustAnchors(store: Store): Promise<TrustAnchor[]> {
  return Promise.all(certificateAuthority(store).anchorPems().map(trustAnchor));
}

export async function checkForRegistration(store: Store, user: string, pem: string): Promise<RegistrationCheck> {
  const chainPem = pemCertificates(pem)
    .map((b) => certificatePem(parseCertificate(b)))
    .join('');
  const analysis = await analyzeCertificate(chainPem, await trustAnchors(store));
  if (analysis.commonName !== user) {
    throw new UsageError(`the certificate is for CN=${analysis.commonName ?? '(none)'}, not ${user}: the name the ACL uses comes from the certificate`, '--cert');
  }
  if (analysis.structural?.code === CertErrorCodes.USAGE) throw new UsageError(analysis.structural.message, '--cert');
  const ca = certificateAuthority(store);
  let verdict: CertificateError | undefined;
  try {
    certificateVerdict(analysis, { user, now: Date.now(), isRevoked: (issuer, serial) => ca.isRevoked(issuer, serial) });
  } catch (e) {
    if (!(e instanceof CertificateError)) throw e;
    verdict = e;
  }
  return { chainPem, notAfter: analysis.notAfter, verdict };
}

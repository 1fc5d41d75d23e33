/**
 * Accepting a user by certificate (claim 3; RFC 5280 §6 path validation, reduced to what sws
 * needs): the certificate, with any intermediates, must chain by signature to a trusted CA
 * (the inner's own `sws ca` or one added with `sws ca trust`), every certificate on the path
 * must be inside its validity period and unrevoked, the CA certificates must be CAs, the
 * user's certificate must allow digitalSignature and clientAuth, and its subject CN is the
 * user name the ACL uses.
 *
 * Two steps, so the exchange path does no parsing and no signature work:
 * - `analyzeCertificate` (async, once per certificate and trust-anchor set): parses the PEM
 *   and verifies the signatures up to an anchor; structural failures are kept as a verdict.
 * - `certificateVerdict` (sync, at every exchange and on every store change): time, usage,
 *   name and revocation against the current clock and revocation list.
 *
 * Each refusal has its own stable code (and so its own `sws_rejections_total{code}` label).
 */
import { SwsError } from '../core/errors.ts';
import type { x509 } from './x509.ts';
import { KeyFormatError } from '../core/errors.ts';

// @peculiar/x509 (~10-15 MiB of RSS) loads on the first certificate, not with this module:
// an inner whose users all have plain keys never loads it.
const loadX509 = () => import('./x509.ts');
type X509Module = Awaited<ReturnType<typeof loadX509>>;

export const CertErrorCodes = {
  /** Now is after the certificate's (or an issuing CA's) notAfter. */
  EXPIRED: 'SWS_ERR_CERT_EXPIRED',
  /** Now is before the certificate's (or an issuing CA's) notBefore. */
  NOT_YET_VALID: 'SWS_ERR_CERT_NOT_YET_VALID',
  /** No path by signature to a CA this inner trusts. */
  UNTRUSTED: 'SWS_ERR_CERT_UNTRUSTED',
  /** The certificate (or an intermediate) is on the revocation list. */
  REVOKED: 'SWS_ERR_CERT_REVOKED',
  /** Key usage, extended key usage or basic constraints forbid this use. */
  USAGE: 'SWS_ERR_CERT_USAGE',
  /** The subject CN is not the user name. */
  NAME: 'SWS_ERR_CERT_NAME',
} as const;

export type CertErrorCode = (typeof CertErrorCodes)[keyof typeof CertErrorCodes];

export class CertificateError extends SwsError {
  constructor(code: CertErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
  }
}

/** A CA the inner trusts for users' certificates. */
export interface TrustAnchor {
  readonly cert: x509.X509Certificate;
  /** Hex SHA-256 of the certificate DER. */
  readonly fingerprint: string;
  /** Hex SHA-256 of its SPKI: the issuer identity revocations are keyed by. */
  readonly keyId: string;
  readonly subject: string;
}

export async function trustAnchor(pem: string): Promise<TrustAnchor> {
  const { parseCertificate, sha256Hex, spkiOf } = await loadX509();
  const cert = parseCertificate(pem);
  return { cert, fingerprint: await sha256Hex(new Uint8Array(cert.rawData)), keyId: await sha256Hex(spkiOf(cert)), subject: cert.subject };
}

/** One certificate of a validated path, with what the sync checks need. */
interface PathElement {
  readonly serial: string;
  readonly issuerKeyId: string;
  readonly notBefore: number;
  readonly notAfter: number;
  readonly role: 'user' | 'intermediate' | 'anchor';
  readonly subject: string;
}

export interface CertificateAnalysis {
  /** The user certificate's subject CN. */
  readonly commonName: string | undefined;
  readonly subject: string;
  /** Hex SHA-256 of the user certificate's SPKI (the sws client key ID). */
  readonly keyId: string;
  readonly serial: string;
  readonly notBefore: number;
  readonly notAfter: number;
  /** Fingerprint of the anchor the path ends at; undefined when there is none. */
  readonly anchor: string | undefined;
  /** Leaf first, anchor last. */
  readonly path: readonly PathElement[];
  /** A failure that no clock or revocation change can repair (signature, usage). */
  readonly structural: CertificateError | undefined;
}

const ANY_EKU = '2.5.29.37.0';
const MAX_PATH = 6;

function usageError({ x509 }: X509Module, cert: x509.X509Certificate, role: 'user' | 'ca'): string | undefined {
  const bc = cert.getExtension(x509.BasicConstraintsExtension);
  const ku = cert.getExtension(x509.KeyUsagesExtension);
  if (role === 'ca') {
    if (!bc?.ca) return `the issuing certificate "${cert.subject}" is not a CA (basicConstraints cA is not set)`;
    if (ku && !(ku.usages & x509.KeyUsageFlags.keyCertSign)) return `the issuing certificate "${cert.subject}" may not sign certificates (keyUsage lacks keyCertSign)`;
    return undefined;
  }
  if (bc?.ca) return 'a CA certificate cannot identify a user';
  if (ku && !(ku.usages & x509.KeyUsageFlags.digitalSignature)) return 'the certificate does not allow digitalSignature (keyUsage)';
  const eku = cert.getExtension(x509.ExtendedKeyUsageExtension);
  if (eku && !eku.usages.some((u) => u === x509.ExtendedKeyUsage.clientAuth || u === ANY_EKU)) return 'the certificate does not allow clientAuth (extendedKeyUsage)';
  return undefined;
}

async function signedBy(cert: x509.X509Certificate, issuer: x509.X509Certificate): Promise<boolean> {
  if (cert.issuer !== issuer.subject) return false;
  try {
    return await cert.verify({ publicKey: issuer, signatureOnly: true });
  } catch {
    return false;
  }
}

async function element({ normalizeSerial, sha256Hex, spkiOf }: X509Module, cert: x509.X509Certificate, issuer: x509.X509Certificate, role: PathElement['role']): Promise<PathElement> {
  return {
    serial: normalizeSerial(cert.serialNumber),
    issuerKeyId: await sha256Hex(spkiOf(issuer)),
    notBefore: cert.notBefore.getTime(),
    notAfter: cert.notAfter.getTime(),
    role,
    subject: cert.subject,
  };
}

/**
 * Parses `pem` (the user certificate, then any intermediates) and finds a path by signature
 * to one of `anchors`. Throws KeyFormatError only for input that is not a certificate at all.
 */
export async function analyzeCertificate(pem: string, anchors: readonly TrustAnchor[]): Promise<CertificateAnalysis> {
  const X = await loadX509();
  const { commonName, normalizeSerial, parseCertificate, pemCertificates, sha256Hex, spkiOf } = X;
  const blocks = pemCertificates(pem);
  if (blocks.length === 0) throw new KeyFormatError('expected a PEM block "-----BEGIN CERTIFICATE-----"');
  const [leaf, ...intermediates] = blocks.map(parseCertificate) as [x509.X509Certificate, ...x509.X509Certificate[]];
  const base = {
    commonName: commonName(leaf.subjectName),
    subject: leaf.subject,
    keyId: await sha256Hex(spkiOf(leaf)),
    serial: normalizeSerial(leaf.serialNumber),
    notBefore: leaf.notBefore.getTime(),
    notAfter: leaf.notAfter.getTime(),
  };
  const leafUsage = usageError(X, leaf, 'user');
  const path: PathElement[] = [];
  let current = leaf;
  let role: PathElement['role'] = 'user';
  for (let depth = 0; depth < MAX_PATH; depth++) {
    for (const a of anchors) {
      if (await signedBy(current, a.cert)) {
        path.push(await element(X, current, a.cert, role));
        path.push({ serial: normalizeSerial(a.cert.serialNumber), issuerKeyId: '', notBefore: a.cert.notBefore.getTime(), notAfter: a.cert.notAfter.getTime(), role: 'anchor', subject: a.subject });
        const caUsage = role === 'intermediate' ? usageError(X, current, 'ca') : undefined;
        const why = leafUsage ?? caUsage;
        return { ...base, anchor: a.fingerprint, path, structural: why ? new CertificateError(CertErrorCodes.USAGE, why) : undefined };
      }
    }
    let next: x509.X509Certificate | undefined;
    for (const c of intermediates) if (c !== current && (await signedBy(current, c))) next = c;
    if (!next) break;
    if (role === 'intermediate') {
      const why = usageError(X, current, 'ca');
      if (why) return { ...base, anchor: undefined, path, structural: new CertificateError(CertErrorCodes.USAGE, why) };
    }
    path.push(await element(X, current, next, role));
    current = next;
    role = 'intermediate';
  }
  return {
    ...base,
    anchor: undefined,
    path,
    structural: new CertificateError(CertErrorCodes.UNTRUSTED, `the certificate was not issued by a CA this inner trusts (issuer "${current.issuer}"); trust its CA with \`sws ca trust FILE\``),
  };
}

export interface VerdictContext {
  /** The user name the certificate must carry as its subject CN. */
  readonly user: string;
  readonly now: number;
  readonly isRevoked: (issuerKeyId: string, serial: string) => boolean;
}

/** Throws the CertificateError that refuses this certificate now, or returns when it is acceptable. */
export function certificateVerdict(a: CertificateAnalysis, ctx: VerdictContext): void {
  if (a.structural?.code === CertErrorCodes.UNTRUSTED) throw a.structural;
  if (a.commonName !== ctx.user) throw new CertificateError(CertErrorCodes.NAME, 'the certificate subject CN is not the user name');
  for (const e of a.path) {
    const whose = e.role === 'user' ? 'the certificate' : `the CA certificate "${e.subject}"`;
    if (ctx.now < e.notBefore) throw new CertificateError(CertErrorCodes.NOT_YET_VALID, `${whose} is not valid before ${new Date(e.notBefore).toISOString()}`);
    if (ctx.now > e.notAfter) throw new CertificateError(CertErrorCodes.EXPIRED, `${whose} expired at ${new Date(e.notAfter).toISOString()}`);
  }
  if (a.structural) throw a.structural;
  for (const e of a.path) {
    if (e.role !== 'anchor' && ctx.isRevoked(e.issuerKeyId, e.serial)) {
      throw new CertificateError(CertErrorCodes.REVOKED, `${e.role === 'user' ? 'the certificate' : `the CA certificate "${e.subject}"`} was revoked (serial ${e.serial})`);
    }
  }
}

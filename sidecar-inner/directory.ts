/**
 * The inner's ClientDirectory (core/exchange.ts): who may exchange keys, and with which key
 * (claim 3). A user is accepted either by a registered public key (`sws client add USER
 * --key`) or by a registered certificate (`--cert`) that chains to a trusted CA and is, at
 * the moment of the exchange, inside its validity period, unrevoked and fit for client
 * authentication, with the user name as its subject CN (store/certcheck.ts).
 *
 * Everything expensive happens once: rows are read and keys imported once per store change,
 * certificates are parsed and their signatures verified once per certificate (and again only
 * when the set of trusted CAs changes). An exchange costs a map look-up, a few date
 * comparisons and a revocation-set look-up.
 *
 * `accepts` answers synchronously for sessions already established, so a store change
 * (client removed, key replaced, certificate revoked, CA no longer trusted) ends them within
 * one poll of the store watcher.
 */
import { createHash } from 'node:crypto';
import { importPublicKey, type PublicKeyHandle } from '../core/crypto.ts';
import type { ClientDirectory } from '../core/exchange.ts';
import { clients, type RegisteredClient, type Store } from '../store/index.ts';
import { certificateAuthority } from '../store/ca.ts';
import { analyzeCertificate, certificateVerdict, CertErrorCodes, CertificateError, trustAnchor, type CertificateAnalysis, type TrustAnchor } from '../store/certcheck.ts';

export interface ClientKeyDirectoryOptions {
  readonly now?: () => number;
  /**
   * Called when a certificate `accepts` had not judged yet has been analyzed: the caller
   * re-checks its sessions then (a newly registered certificate is judged within one analysis).
   */
  readonly onAnalyzed?: () => void;
}

export class ClientKeyDirectory implements ClientDirectory {
  readonly #store: Store;
  readonly #now: () => number;
  readonly #onAnalyzed: (() => void) | undefined;
  /** Registered rows by user, read once per store change. */
  readonly #rows = new Map<string, RegisteredClient | undefined>();
  /** Imported keys by key ID (public keys do not change meaning with the store). */
  readonly #keys = new Map<string, Promise<PublicKeyHandle | undefined>>();
  /** Certificate analyses by chain PEM; settled ones also in #settled for synchronous use. */
  readonly #analyses = new Map<string, Promise<CertificateAnalysis>>();
  readonly #settled = new Map<string, CertificateAnalysis>();
  #anchors: { key: string; fingerprints: Set<string>; pems: string[]; parsed?: Promise<TrustAnchor[]> } | undefined;
  #revoked: Set<string> | undefined;

  constructor(store: Store, opts: ClientKeyDirectoryOptions = {}) {
    this.#store = store;
    this.#now = opts.now ?? Date.now;
    this.#onAnalyzed = opts.onAnalyzed;
  }

  /** After any store change: forget rows, the revocation list and (if changed) the trusted CAs. */
  invalidate(): void {
    this.#rows.clear();
    this.#revoked = undefined;
    const before = this.#anchors?.key;
    this.#anchors = undefined;
    if (before !== undefined && this.#anchorSet().key !== before) {
      // A new trusted CA may repair a certificate that had no path; one removed is caught by
      // the fingerprint check in #verdict. Drop the analyses that found no anchor.
      for (const [pem, a] of this.#settled) {
        if (a.anchor === undefined) {
          this.#settled.delete(pem);
          this.#analyses.delete(pem);
        }
      }
    }
  }

  /** The key registered for `user` with ID `kid`; throws a CertificateError when the user's certificate is refused now. */
  async lookup(user: string, kid: string): Promise<PublicKeyHandle | undefined> {
    const row = this.#row(user);
    if (!row || row.keyId !== kid) return undefined;
    if (row.certPem !== undefined) {
      const analysis = await this.#analysis(row.certPem);
      this.#verdict(analysis, user);
    }
    return this.#key(row);
  }

  /** Whether a session made with (`user`, `kid`) may go on: synchronous, from what is loaded. */
  accepts(user: string, kid?: string): boolean {
    const row = this.#row(user);
    if (!row || (kid !== undefined && row.keyId !== kid)) return false;
    if (row.certPem === undefined) return true;
    const a = this.#settled.get(row.certPem);
    if (!a) {
      // A certificate registered since: judge it in the background, then ask again.
      const pending = this.#analysis(row.certPem);
      if (this.#onAnalyzed) void pending.then(this.#onAnalyzed, this.#onAnalyzed);
      return this.#onAnalyzed !== undefined;
    }
    try {
      this.#verdict(a, user);
      return true;
    } catch {
      return false;
    }
  }

  /** Today's verdict for a certificate registered for `user` (for `client list`-like reports and tests). */
  async verdict(user: string): Promise<CertificateError | undefined> {
    const row = this.#row(user);
    if (!row?.certPem) return undefined;
    try {
      this.#verdict(await this.#analysis(row.certPem), user);
      return undefined;
    } catch (e) {
      if (e instanceof CertificateError) return e;
      throw e;
    }
  }

  #row(user: string): RegisteredClient | undefined {
    if (!this.#rows.has(user)) this.#rows.set(user, clients(this.#store).get(user));
    return this.#rows.get(user);
  }

  #key(row: RegisteredClient): Promise<PublicKeyHandle | undefined> {
    let p = this.#keys.get(row.keyId);
    if (!p) {
      p = importPublicKey(row.publicKeyPem).catch(() => undefined);
      this.#keys.set(row.keyId, p);
    }
    return p;
  }

  #anchorSet(): { key: string; fingerprints: Set<string>; pems: string[]; parsed?: Promise<TrustAnchor[]> } {
    if (!this.#anchors) {
      const pems = certificateAuthority(this.#store).anchorPems();
      const fingerprints = new Set(pems.map(fingerprintOf));
      this.#anchors = { key: [...fingerprints].sort().join(','), fingerprints, pems };
    }
    return this.#anchors;
  }

  #analysis(pem: string): Promise<CertificateAnalysis> {
    let p = this.#analyses.get(pem);
    if (!p) {
      const set = this.#anchorSet();
      set.parsed ??= Promise.all(set.pems.map(trustAnchor));
      p = set.parsed.then((anchors) => analyzeCertificate(pem, anchors));
      p.then(
        (a) => this.#analyses.get(pem) === p && this.#settled.set(pem, a),
        () => this.#analyses.delete(pem),
      );
      this.#analyses.set(pem, p);
    }
    return p;
  }

  #isRevoked = (issuer: string, serial: string): boolean => {
    if (!this.#revoked) this.#revoked = new Set(certificateAuthority(this.#store).revocations().map((r) => `${r.issuerKeyId}/${r.serial}`));
    return this.#revoked.has(`${issuer}/${serial}`);
  };

  #verdict(a: CertificateAnalysis, user: string): void {
    if (a.anchor !== undefined && !this.#anchorSet().fingerprints.has(a.anchor)) {
      throw new CertificateError(CertErrorCodes.UNTRUSTED, 'the CA that issued the certificate is no longer trusted by this inner');
    }
    certificateVerdict(a, { user, now: this.#now(), isRevoked: this.#isRevoked });
  }
}

function fingerprintOf(pem: string): string {
  const b64 = /-----BEGIN CERTIFICATE-----([\s\S]*?)-----END CERTIFICATE-----/.exec(pem)?.[1]?.replace(/\s+/g, '') ?? '';
  return createHash('sha256').update(Buffer.from(b64, 'base64')).digest('hex');
}

/**
 * The inner's tables: its own key pair (private key 39, sealed under the master key), the
 * sites it forwards to (WWW server 1 per host, optional private CA for the inner↔WWW TLS link,
 * claim 6) and the users' registered public keys (claim 3: users are authenticated by key
 * pairs, not passwords, at the inner).
 */
import { certificatePublicKeyPem, openSealedKey, publicKeyInfo } from './keys.ts';
import { innerKeyContext, innerKeys } from './innerkeys.ts';
import { sealAtRest } from '../core/atrest.ts';
import { generateRsaKeyPair, toPem } from '../core/crypto.ts';
import { internals, requireRole, type Store } from './db.ts';
import { ExistsError, NotFoundError, UsageError } from './errors.ts';
import { check, hostSchema, upstreamUrlSchema, userNameSchema } from './validate.ts';
import { normalizeHost } from './acl/host.ts';
import { KeyFormatError } from '../core/errors.ts';
import type { RsaKeyBits } from '../core/crypto.ts';
import type { Database } from 'better-sqlite3';
import { createPrivateKey, X509Certificate, type KeyObject } from 'node:crypto';

export interface InnerKey {
  publicKeyPem(): string;
  /** Hex SHA-256 of the SPKI. */
  keyId(): string;
  bits(): number;
  /** PKCS #8 DER, unsealed with the master key; the caller should zero it after import. */
  privateKeyPkcs8(): Promise<Uint8Array>;
}

/** Generates and seals the inner's key pair; returns a `populate` step for createDataDir. */
export async function prepareInnerKey(masterKey: CryptoKey, bits: RsaKeyBits, actor = 'api'): Promise<{ keyId: string; populate: (db: Database) => void }> {
  const kp = await generateRsaKeyPair(bits);
  let k: { keyId: string; publicKeyPem: string; sealed: Uint8Array };
  try {
    const info = await publicKeyInfo(toPem(kp.spki, 'PUBLIC KEY'));
    k = { keyId: info.keyId, publicKeyPem: info.pem, sealed: await sealAtRest(masterKey, kp.pkcs8, innerKeyContext(info.keyId)) };
  } finally {
    kp.pkcs8.fill(0);
  }
  return {
    keyId: k.keyId,
    populate(db) {
      db.prepare("INSERT INTO inner_keys (key_id, bits, public_key_pem, private_key_sealed, seal_context, state, created_at) VALUES (?, ?, ?, ?, ?, 'current', ?)").run(
        k.keyId,
        bits,
        k.publicKeyPem,
        k.sealed,
        innerKeyContext(k.keyId),
        new Date().toISOString(),
      );
      db.prepare("INSERT INTO audit_log (at, actor, action, subject, detail) VALUES (?, ?, 'inner.key', 'inner', ?)").run(
        new Date().toISOString(),
        actor,
        JSON.stringify({ keyId: k.keyId, bits }),
      );
    },
  };
}

/** The inner's current key pair (the one `sws inner key` prints); see innerkeys.ts for rotation. */
export function innerKey(store: Store): InnerKey {
  const keys = innerKeys(store);
  return {
    publicKeyPem: () => keys.current().publicKeyPem,
    keyId: () => keys.current().keyId,
    bits: () => keys.current().bits,
    privateKeyPkcs8: () => keys.privateKeyPkcs8(keys.current().keyId),
  };
}

export interface Site {
  /** Normalized host key (acl/host.ts). */
  host: string;
  /** Origin of the WWW server, e.g. `https://10.0.0.5:8443`. */
  upstream: string;
  /** PEM certificate(s) of a private CA trusted for this upstream's TLS. */
  caPem?: string;
  /** The TLS client certificate (PEM, with any chain) the inner presents to this upstream. */
  clientCertPem?: string;
  /** Whether a sealed client private key is stored (read it with `sites(store).clientKeyPem(host)`). */
  clientKey?: boolean;
  createdAt: string;
}

interface SiteRow {
  host: string;
  upstream: string;
  ca_pem: string | null;
  client_cert_pem: string | null;
  client_key_sealed: Uint8Array | null;
  created_at: string;
}

const toSite = (r: SiteRow): Site => ({
  host: r.host,
  upstream: r.upstream,
  ...(r.ca_pem !== null ? { caPem: r.ca_pem } : {}),
  ...(r.client_cert_pem !== null ? { clientCertPem: r.client_cert_pem } : {}),
  ...(r.client_key_sealed !== null ? { clientKey: true } : {}),
  createdAt: r.created_at,
});

export const siteClientKeyContext = (host: string) => `site-client-key:${host}`;

export interface SiteInput {
  host: string;
  upstream: string;
  caPem?: string | undefined;
  /** TLS client certificate and sealed key for the inner↔WWW link (claim 6), from `sites(store).sealClientIdentity`. */
  clientIdentity?: SealedClientIdentity | undefined;
}

/** A TLS client certificate with its private key sealed for one host. */
export interface SealedClientIdentity {
  readonly host: string;
  readonly certPem: string;
  readonly sealed: Uint8Array;
}

export interface Sites {
  /** The site for `host` (any form normalizeHost accepts), or undefined. */
  get(host: string): Site | undefined;
  list(): Site[];
  add(input: SiteInput, opts?: { replace?: boolean }): Site;
  /** Checks that the key belongs to the certificate and seals it for `host` (async: the master key). */
  sealClientIdentity(host: string, certPem: string, keyPem: string): Promise<SealedClientIdentity>;
  remove(host: string): void;
  /** The site's TLS client private key as PEM (PKCS #8), unsealed; undefined when it has none. */
  clientKeyPem(host: string): Promise<string | undefined>;
}

export function sites(store: Store): Sites {
  requireRole(store, 'inner', 'sites');
  const i = internals(store);
  const byHost = (host: string) => i.prepare('SELECT * FROM sites WHERE host = ?').get(host) as SiteRow | undefined;
  const repo: Sites = {
    get(host) {
      let key: string;
      try {
        key = normalizeHost(host);
      } catch {
        return undefined;
      }
      return i.read(() => {
        const r = byHost(key);
        return r ? toSite(r) : undefined;
      });
    },
    list() {
      return i.read(() => (i.prepare('SELECT * FROM sites ORDER BY host').all() as SiteRow[]).map(toSite));
    },
    add(input, opts = {}) {
      const host = check(hostSchema, input.host, 'HOST');
      const upstream = check(upstreamUrlSchema, input.upstream, '--upstream');
      let caPem: string | null = null;
      if (input.caPem !== undefined) {
        if (!upstream.startsWith('https:')) throw new UsageError('a CA applies only to an https:// upstream', '--ca');
        caPem = validateCaBundle(input.caPem);
      }
      const client = input.clientIdentity ?? null;
      if (client) {
        if (!upstream.startsWith('https:')) throw new UsageError('a client certificate applies only to an https:// upstream', '--client-cert');
        if (client.host !== host) throw new UsageError('the client identity was sealed for another host', '--client-cert');
      }
      i.write(() => {
        const old = byHost(host);
        if (old && !opts.replace) throw new ExistsError(`a site for ${host} already exists (upstream ${old.upstream}); add --replace to change it`);
        i.prepare(
          'INSERT INTO sites (host, upstream, ca_pem, client_cert_pem, client_key_sealed, created_at) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (host) DO UPDATE SET upstream = excluded.upstream, ca_pem = excluded.ca_pem, client_cert_pem = excluded.client_cert_pem, client_key_sealed = excluded.client_key_sealed',
        ).run(host, upstream, caPem, client?.certPem ?? null, client?.sealed ?? null, new Date().toISOString());
        i.audit(old ? 'site.replace' : 'site.add', host, { upstream, ca: caPem !== null, clientCert: client !== null });
      });
      return toSite(byHost(host)!);
    },
    async sealClientIdentity(host, certPem, keyPem) {
      const h = check(hostSchema, host, 'HOST');
      const v = validateClientIdentity(certPem, keyPem);
      try {
        return { host: h, certPem: v.certPem, sealed: await sealAtRest(await store.masterKey(), v.pkcs8, siteClientKeyContext(h)) };
      } finally {
        v.pkcs8.fill(0);
      }
    },
    async clientKeyPem(host) {
      const r = i.read(() => byHost(normalizeHost(host)));
      if (!r?.client_key_sealed) return undefined;
      const pkcs8 = await openSealedKey(await store.masterKey(), r.client_key_sealed, siteClientKeyContext(r.host));
      try {
        return toPem(pkcs8, 'PRIVATE KEY');
      } finally {
        pkcs8.fill(0);
      }
    },
    remove(host) {
      const key = check(hostSchema, host, 'HOST');
      i.write(() => {
        if (i.prepare('DELETE FROM sites WHERE host = ?').run(key).changes === 0) throw new NotFoundError(`no site for ${key} (see \`sws inner site list\`)`);
        i.audit('site.remove', key);
      });
    },
  };
  return repo;
}

/**
 * A TLS client identity: the certificate (with any chain) and a private key that matches it.
 * Returns the certificates re-encoded and the key as PKCS #8 DER. Throws KeyFormatError.
 */
function validateClientIdentity(certPem: string, keyPem: string): { certPem: string; pkcs8: Uint8Array } {
  const certs = validateCaBundle(certPem);
  let key: KeyObject;
  try {
    key = createPrivateKey({ key: keyPem, format: 'pem' });
  } catch (cause) {
    throw new KeyFormatError('the client key is not a PEM private key (unencrypted PKCS #8, RSA or EC)', { cause });
  }
  const leaf = new X509Certificate(certs);
  if (!leaf.checkPrivateKey(key)) throw new KeyFormatError('the client key does not belong to the client certificate');
  return { certPem: certs, pkcs8: new Uint8Array(key.export({ type: 'pkcs8', format: 'der' })) };
}

/** Accepts one or more PEM certificates; returns them re-encoded. Throws KeyFormatError. */
function validateCaBundle(pem: string): string {
  const blocks = pem.match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g);
  if (!blocks) throw new KeyFormatError('the CA file holds no PEM certificate ("-----BEGIN CERTIFICATE-----")');
  return blocks.map((b) => certificatePublicKeyPem(b).certPem).join('');
}

export interface RegisteredClient {
  user: string;
  publicKeyPem: string;
  /** Hex SHA-256 of the SPKI. */
  keyId: string;
  certPem?: string;
  createdAt: string;
}

interface ClientRow {
  user: string;
  public_key_pem: string;
  key_id: string;
  cert_pem: string | null;
  created_at: string;
}

const toClient = (r: ClientRow): RegisteredClient => ({
  user: r.user,
  publicKeyPem: r.public_key_pem,
  keyId: r.key_id,
  ...(r.cert_pem !== null ? { certPem: r.cert_pem } : {}),
  createdAt: r.created_at,
});

/** What a certificate registration found: until when it is valid, and why it is refused now, if it is. */
export interface ClientCertificateStatus {
  readonly notAfter: string;
  readonly refused?: { readonly code: string; readonly message: string };
}

export interface Clients {
  get(user: string): RegisteredClient | undefined;
  /** The user whose registered key has this ID (hex), or undefined. */
  findByKeyId(keyIdHex: string): RegisteredClient | undefined;
  list(): RegisteredClient[];
  /**
   * Registers a user's public key (PEM SPKI) and/or certificate; if both, they must match. A
   * certificate's subject CN must be the user name; whether the inner would accept it now
   * (validity, trusted CA, revocation) is reported in `certificate`, and decided again at every exchange.
   */
  add(input: { user: string; publicKeyPem?: string | undefined; certPem?: string | undefined }, opts?: { replace?: boolean }): Promise<RegisteredClient & { certificate?: ClientCertificateStatus }>;
  remove(user: string): void;
}

export function clients(store: Store): Clients {
  requireRole(store, 'inner', 'registered clients');
  const i = internals(store);
  const byUser = (user: string) => i.prepare('SELECT * FROM clients WHERE user = ?').get(user) as ClientRow | undefined;
  return {
    get(user) {
      return i.read(() => {
        const r = byUser(user);
        return r ? toClient(r) : undefined;
      });
    },
    findByKeyId(keyIdHex) {
      return i.read(() => {
        const r = i.prepare('SELECT * FROM clients WHERE key_id = ?').get(keyIdHex.toLowerCase()) as ClientRow | undefined;
        return r ? toClient(r) : undefined;
      });
    },
    list() {
      return i.read(() => (i.prepare('SELECT * FROM clients ORDER BY user').all() as ClientRow[]).map(toClient));
    },
    async add(input, opts = {}) {
      const user = check(userNameSchema, input.user, 'USER');
      if (input.publicKeyPem === undefined && input.certPem === undefined) throw new UsageError('a public key (--key FILE) or a certificate (--cert FILE) is required', '--key');
      let certPem: string | null = null;
      let pem = input.publicKeyPem;
      let certificate: ClientCertificateStatus | undefined;
      if (input.certPem !== undefined) {
        const c = certificatePublicKeyPem(input.certPem);
        if (pem === undefined) pem = c.publicKeyPem;
        else if ((await publicKeyInfo(pem)).keyId !== (await publicKeyInfo(c.publicKeyPem)).keyId) {
          throw new UsageError('the certificate does not hold the public key given with --key', '--cert');
        }
        // Chain, usage and name checks need @peculiar/x509: loaded only when a certificate is given.
        const { checkForRegistration } = await import('./clientcerts.ts');
        const checked = await checkForRegistration(store, user, input.certPem);
        certPem = checked.chainPem;
        certificate = { notAfter: new Date(checked.notAfter).toISOString(), ...(checked.verdict ? { refused: { code: checked.verdict.code, message: checked.verdict.message } } : {}) };
      }
      const key = await publicKeyInfo(pem!);
      i.write(() => {
        const old = i.prepare('SELECT user FROM clients WHERE lower(user) = lower(?)').get(user) as { user: string } | undefined;
        if (old && !(opts.replace && old.user === user)) throw new ExistsError(`a key for user ${old.user} is already registered (add --replace to change it)`);
        i.prepare(
          'INSERT INTO clients (user, public_key_pem, key_id, cert_pem, created_at) VALUES (?, ?, ?, ?, ?) ON CONFLICT (user) DO UPDATE SET public_key_pem = excluded.public_key_pem, key_id = excluded.key_id, cert_pem = excluded.cert_pem',
        ).run(user, key.pem, key.keyId, certPem, new Date().toISOString());
        i.audit(old ? 'client.replace' : 'client.add', user, { keyId: key.keyId, cert: certPem !== null });
      });
      return { ...toClient(byUser(user)!), ...(certificate ? { certificate } : {}) };
    },
    remove(user) {
      i.write(() => {
        if (i.prepare('DELETE FROM clients WHERE user = ?').run(user).changes === 0) throw new NotFoundError(`no key registered for user ${user} (see \`sws client list\`)`);
        i.audit('client.remove', user);
      });
    },
  };
}

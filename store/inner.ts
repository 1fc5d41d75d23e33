/**
 * The inner's tables: its own key pair (private key 39, sealed under the master key), the
 * sites it forwards to (WWW server 1 per host, optional private CA for the inner↔WWW TLS link,
 * claim 6) and the users' registered public keys (claim 3: users are authenticated by key
 * pairs, not passwords, at the inner).
 */
import { generateSealedKey, certificatePublicKeyPem, openSealedKey, publicKeyInfo } from './keys.ts';
import { internals, requireRole, type Store } from './db.ts';
import { ExistsError, NotFoundError, NotInitializedError, UsageError } from './errors.ts';
import { check, hostSchema, upstreamUrlSchema, userNameSchema } from './validate.ts';
import { normalizeHost } from './acl/host.ts';
import { KeyFormatError } from '../core/errors.ts';
import type { RsaKeyBits } from '../core/crypto.ts';
import type { Database } from 'better-sqlite3';

export const INNER_KEY_CONTEXT = 'inner-key';

interface InnerKeyRow {
  bits: number;
  public_key_pem: string;
  key_id: string;
  private_key_sealed: Uint8Array;
  created_at: string;
}

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
  const k = await generateSealedKey(masterKey, bits, INNER_KEY_CONTEXT);
  return {
    keyId: k.keyId,
    populate(db) {
      db.prepare('INSERT INTO inner_key (id, bits, public_key_pem, key_id, private_key_sealed, created_at) VALUES (1, ?, ?, ?, ?, ?)').run(
        k.bits,
        k.publicKeyPem,
        k.keyId,
        k.sealed,
        new Date().toISOString(),
      );
      db.prepare("INSERT INTO audit_log (at, actor, action, subject, detail) VALUES (?, ?, 'inner.key', 'inner', ?)").run(
        new Date().toISOString(),
        actor,
        JSON.stringify({ keyId: k.keyId, bits: k.bits }),
      );
    },
  };
}

export function innerKey(store: Store): InnerKey {
  requireRole(store, 'inner', 'the inner key pair');
  const i = internals(store);
  const row = (): InnerKeyRow => {
    const r = i.read(() => i.prepare('SELECT * FROM inner_key WHERE id = 1').get() as InnerKeyRow | undefined);
    if (!r) throw new NotInitializedError(`the inner data dir ${store.dataDir} has no key pair: re-create it with \`sws inner init --force\``);
    return r;
  };
  return {
    publicKeyPem: () => row().public_key_pem,
    keyId: () => row().key_id,
    bits: () => row().bits,
    async privateKeyPkcs8() {
      const r = row();
      return openSealedKey(await store.masterKey(), r.private_key_sealed, INNER_KEY_CONTEXT);
    },
  };
}

export interface Site {
  /** Normalized host key (acl/host.ts). */
  host: string;
  /** Origin of the WWW server, e.g. `https://10.0.0.5:8443`. */
  upstream: string;
  /** PEM certificate(s) of a private CA trusted for this upstream's TLS. */
  caPem?: string;
  createdAt: string;
}

interface SiteRow {
  host: string;
  upstream: string;
  ca_pem: string | null;
  created_at: string;
}

const toSite = (r: SiteRow): Site => ({ host: r.host, upstream: r.upstream, ...(r.ca_pem !== null ? { caPem: r.ca_pem } : {}), createdAt: r.created_at });

export interface Sites {
  /** The site for `host` (any form normalizeHost accepts), or undefined. */
  get(host: string): Site | undefined;
  list(): Site[];
  add(input: { host: string; upstream: string; caPem?: string | undefined }, opts?: { replace?: boolean }): Site;
  remove(host: string): void;
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
      i.write(() => {
        const old = byHost(host);
        if (old && !opts.replace) throw new ExistsError(`a site for ${host} already exists (upstream ${old.upstream}); add --replace to change it`);
        i.prepare(
          'INSERT INTO sites (host, upstream, ca_pem, created_at) VALUES (?, ?, ?, ?) ON CONFLICT (host) DO UPDATE SET upstream = excluded.upstream, ca_pem = excluded.ca_pem',
        ).run(host, upstream, caPem, new Date().toISOString());
        i.audit(old ? 'site.replace' : 'site.add', host, { upstream, ca: caPem !== null });
      });
      return toSite(byHost(host)!);
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

export interface Clients {
  get(user: string): RegisteredClient | undefined;
  /** The user whose registered key has this ID (hex), or undefined. */
  findByKeyId(keyIdHex: string): RegisteredClient | undefined;
  list(): RegisteredClient[];
  /** Registers a user's public key (PEM SPKI) and/or certificate; if both, they must match. */
  add(input: { user: string; publicKeyPem?: string | undefined; certPem?: string | undefined }, opts?: { replace?: boolean }): Promise<RegisteredClient>;
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
      if (input.certPem !== undefined) {
        const c = certificatePublicKeyPem(input.certPem);
        certPem = c.certPem;
        if (pem === undefined) pem = c.publicKeyPem;
        else if ((await publicKeyInfo(pem)).keyId !== (await publicKeyInfo(c.publicKeyPem)).keyId) {
          throw new UsageError('the certificate does not hold the public key given with --key', '--cert');
        }
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
      return toClient(byUser(user)!);
    },
    remove(user) {
      i.write(() => {
        if (i.prepare('DELETE FROM clients WHERE user = ?').run(user).changes === 0) throw new NotFoundError(`no key registered for user ${user} (see \`sws client list\`)`);
        i.audit('client.remove', user);
      });
    },
  };
}

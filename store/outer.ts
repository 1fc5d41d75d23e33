/**
 * The outer's lists: the client list 17 (users: password hash, key pair 24/25 with the private
 * half sealed under the master key) and the inner-server list 19 (address, public key 26 and
 * the WWW hosts each inner fronts, used by the destination changer 20).
 */
import { randomBytes } from 'node:crypto';
import type { RsaKeyBits } from '../core/crypto.ts';
import { internals, requireRole, type Store } from './db.ts';
import { ExistsError, NotFoundError, UsageError } from './errors.ts';
import { generateSealedKey, openSealedKey, publicKeyInfo } from './keys.ts';
import { hashPassword, verifyPasswordHash } from './password.ts';
import { check, hostListSchema, hostSchema, passwordSchema, serverNameSchema, serverUrlSchema, userNameSchema } from './validate.ts';
import { normalizeHost } from './acl/host.ts';

export interface OuterUser {
  name: string;
  publicKeyPem: string;
  /** Hex SHA-256 of the SPKI. */
  keyId: string;
  createdAt: string;
  updatedAt: string;
}

interface UserRow {
  name: string;
  password_hash: string;
  public_key_pem: string;
  key_id: string;
  private_key_sealed: Uint8Array;
  created_at: string;
  updated_at: string;
}

const toUser = (r: UserRow): OuterUser => ({ name: r.name, publicKeyPem: r.public_key_pem, keyId: r.key_id, createdAt: r.created_at, updatedAt: r.updated_at });

export const userKeyContext = (name: string) => `user-key:${name}`;

export interface OuterUsers {
  get(name: string): OuterUser | undefined;
  list(): OuterUser[];
  count(): number;
  /** Constant-time; false for unknown users too, after the same scrypt work on a dummy hash. */
  verifyPassword(name: string, password: string): Promise<boolean>;
  /** The user's private key (PKCS #8 DER), unsealed with the master key; the caller should zero it after import. */
  privateKeyPkcs8(name: string): Promise<Uint8Array>;
  add(name: string, password: string, opts?: { keyBits?: RsaKeyBits }): Promise<OuterUser>;
  remove(name: string): void;
  setPassword(name: string, password: string): Promise<void>;
}

const usersCache = new WeakMap<Store, OuterUsers>();

export function outerUsers(store: Store): OuterUsers {
  const cached = usersCache.get(store);
  if (cached) return cached;
  requireRole(store, 'outer', 'users');
  const i = internals(store);
  const row = (name: string) => i.read(() => i.prepare('SELECT * FROM outer_users WHERE name = ?').get(name) as UserRow | undefined);
  // Lookups skip the secret columns: no sealed key or hash is copied out unless needed.
  const PUBLIC_COLS = 'name, public_key_pem, key_id, created_at, updated_at';
  const publicRow = (name: string) => i.read(() => i.prepare(`SELECT ${PUBLIC_COLS} FROM outer_users WHERE name = ?`).get(name) as UserRow | undefined);
  // Same parameters as a real hash, random salt and key: one scrypt run, never a match.
  const b64 = (n: number) => randomBytes(n).toString('base64').replace(/=+$/, '');
  const dummy = () => `$scrypt$ln=${i.scrypt.log2N},r=${i.scrypt.r},p=${i.scrypt.p}$${b64(16)}$${b64(32)}`;

  const repo: OuterUsers = {
    get(name) {
      const r = publicRow(name);
      return r ? toUser(r) : undefined;
    },
    list() {
      return i.read(() => (i.prepare(`SELECT ${PUBLIC_COLS} FROM outer_users ORDER BY name`).all() as UserRow[]).map(toUser));
    },
    count() {
      return i.read(() => i.prepare('SELECT count(*) AS n FROM outer_users').get() as { n: number }).n;
    },
    async verifyPassword(name, password) {
      const r = typeof name === 'string' ? row(name) : undefined;
      if (!r) {
        await verifyPasswordHash(typeof password === 'string' ? password : '', dummy());
        return false;
      }
      return verifyPasswordHash(password, r.password_hash);
    },
    async privateKeyPkcs8(name) {
      const r = row(name);
      if (!r) throw new NotFoundError(`no user named ${name}`);
      return openSealedKey(await store.masterKey(), r.private_key_sealed, userKeyContext(r.name));
    },
    async add(name, password, opts = {}) {
      check(userNameSchema, name, 'USER');
      check(passwordSchema, password, 'password');
      const exists = () => i.read(() => i.prepare('SELECT name FROM outer_users WHERE lower(name) = lower(?)').get(name) as { name: string } | undefined);
      const dup = exists();
      if (dup) throw new ExistsError(dup.name === name ? `user ${name} already exists` : `user ${dup.name} already exists (names differ only in case)`);
      const mk = await store.masterKey();
      const [key, hash] = await Promise.all([generateSealedKey(mk, opts.keyBits ?? 2048, userKeyContext(name)), hashPassword(password, i.scrypt)]);
      const now = new Date().toISOString();
      i.write(() => {
        if (exists()) throw new ExistsError(`user ${name} already exists`);
        i.prepare(
          'INSERT INTO outer_users (name, password_hash, public_key_pem, key_id, private_key_sealed, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)',
        ).run(name, hash, key.publicKeyPem, key.keyId, key.sealed, now, now);
        i.audit('user.add', name, { keyId: key.keyId, bits: key.bits });
      });
      return toUser(publicRow(name)!);
    },
    remove(name) {
      i.write(() => {
        const r = i.prepare('DELETE FROM outer_users WHERE name = ?').run(name);
        if (r.changes === 0) throw new NotFoundError(`no user named ${name} (see \`sws user list\`)`);
        i.audit('user.remove', name);
      });
    },
    async setPassword(name, password) {
      check(passwordSchema, password, 'password');
      if (!publicRow(name)) throw new NotFoundError(`no user named ${name} (see \`sws user list\`)`);
      const hash = await hashPassword(password, i.scrypt);
      i.write(() => {
        const r = i.prepare('UPDATE outer_users SET password_hash = ?, updated_at = ? WHERE name = ?').run(hash, new Date().toISOString(), name);
        if (r.changes === 0) throw new NotFoundError(`no user named ${name}`);
        i.audit('user.passwd', name);
      });
    },
  };
  usersCache.set(store, repo);
  return repo;
}

export interface InnerServer {
  name: string;
  /** Where the inner sidecar listens, as the outer reaches it. */
  url: string;
  publicKeyPem: string;
  keyId: string;
  /** Normalized host keys (see acl/host.ts) of the WWW servers it fronts. */
  hosts: string[];
  createdAt: string;
}

interface ServerRow {
  id: number;
  name: string;
  url: string;
  public_key_pem: string;
  key_id: string;
  created_at: string;
}

export interface AddInnerServer {
  name: string;
  url: string;
  publicKeyPem: string;
  hosts: string[] | string;
}

export interface InnerServers {
  list(): InnerServer[];
  get(name: string): InnerServer | undefined;
  /** The inner that fronts `host` (any form normalizeHost accepts), or undefined. */
  findByHost(host: string): InnerServer | undefined;
  add(input: AddInnerServer, opts?: { replace?: boolean }): Promise<InnerServer>;
  remove(name: string): void;
}

const serversCache = new WeakMap<Store, InnerServers>();

export function innerServers(store: Store): InnerServers {
  const cached = serversCache.get(store);
  if (cached) return cached;
  requireRole(store, 'outer', 'inner servers');
  const i = internals(store);
  const hostsOf = (id: number) => (i.prepare('SELECT host FROM inner_server_hosts WHERE server_id = ? ORDER BY host').all(id) as { host: string }[]).map((h) => h.host);
  const toServer = (r: ServerRow): InnerServer => ({
    name: r.name,
    url: r.url,
    publicKeyPem: r.public_key_pem,
    keyId: r.key_id,
    hosts: hostsOf(r.id),
    createdAt: r.created_at,
  });
  const byName = (name: string) => i.prepare('SELECT * FROM inner_servers WHERE name = ?').get(name) as ServerRow | undefined;

  const repo: InnerServers = {
    list() {
      return i.read(() => (i.prepare('SELECT * FROM inner_servers ORDER BY name').all() as ServerRow[]).map(toServer));
    },
    get(name) {
      return i.read(() => {
        const r = byName(name);
        return r ? toServer(r) : undefined;
      });
    },
    findByHost(host) {
      let key: string;
      try {
        key = normalizeHost(host);
      } catch {
        return undefined;
      }
      return i.read(() => {
        const r = i.prepare('SELECT s.* FROM inner_server_hosts h JOIN inner_servers s ON s.id = h.server_id WHERE h.host = ?').get(key) as ServerRow | undefined;
        return r ? toServer(r) : undefined;
      });
    },
    async add(input, opts = {}) {
      const name = check(serverNameSchema, input.name, 'NAME');
      const url = check(serverUrlSchema, input.url, '--url');
      const hosts = Array.isArray(input.hosts) ? input.hosts.map((h) => check(hostSchema, h, '--hosts')) : check(hostListSchema, input.hosts, '--hosts');
      if (hosts.length === 0) throw new UsageError('at least one host is required', '--hosts');
      const key = await publicKeyInfo(input.publicKeyPem);
      i.write(() => {
        const old = i.prepare('SELECT * FROM inner_servers WHERE lower(name) = lower(?)').get(name) as ServerRow | undefined;
        if (old && !(opts.replace && old.name === name)) throw new ExistsError(`an inner server named ${old.name} already exists (add --replace to change it)`);
        for (const h of hosts) {
          const owner = i.prepare('SELECT s.name FROM inner_server_hosts h JOIN inner_servers s ON s.id = h.server_id WHERE h.host = ?').get(h) as
            | { name: string }
            | undefined;
          if (owner && owner.name !== name) throw new ExistsError(`host ${h} is already fronted by inner server ${owner.name}; a host has exactly one inner server`);
        }
        if (old) i.prepare('DELETE FROM inner_servers WHERE id = ?').run(old.id);
        const id = i
          .prepare('INSERT INTO inner_servers (name, url, public_key_pem, key_id, created_at) VALUES (?, ?, ?, ?, ?)')
          .run(name, url, key.pem, key.keyId, new Date().toISOString()).lastInsertRowid;
        const ins = i.prepare('INSERT INTO inner_server_hosts (host, server_id) VALUES (?, ?)');
        for (const h of hosts) ins.run(h, id);
        i.audit(old ? 'server.replace' : 'server.add', name, { url, hosts, keyId: key.keyId });
      });
      return repo.get(name)!;
    },
    remove(name) {
      i.write(() => {
        const r = i.prepare('DELETE FROM inner_servers WHERE name = ?').run(name);
        if (r.changes === 0) throw new NotFoundError(`no inner server named ${name} (see \`sws server list\`)`);
        i.audit('server.remove', name);
      });
    },
  };
  serversCache.set(store, repo);
  return repo;
}

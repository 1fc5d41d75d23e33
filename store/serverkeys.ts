/**
 * Changing what the outer knows about an inner server in place (`sws server update`): above
 * all its public key after the inner rotated it. The running outer sees the change through
 * the store watcher and makes its next exchanges with the new key; requests in flight finish
 * on their sessions (the inner accepts both keys during the overlap).
 *
 * The new key can be given as a PEM the operator vouches for, or as the inner's endorsement
 * statement (`sws inner key --statement`), which is verified against the key the outer holds
 * now, so the new key needs no trusted channel of its own.
 */
import { internals, requireRole, type Store } from './db.ts';
import { ExistsError, NotFoundError, UsageError } from './errors.ts';
import { publicKeyInfo } from './keys.ts';
import { innerServers, type InnerServer } from './outer.ts';
import { check, hostListSchema, serverUrlSchema } from './validate.ts';
import { parseEndorsement, verifyEndorsement } from './endorsement.ts';

export interface ServerUpdate {
  readonly publicKeyPem?: string | undefined;
  /** `sws inner key --statement` output: the new key, signed by the key held now. */
  readonly statement?: string | undefined;
  readonly url?: string | undefined;
  readonly hosts?: string | undefined;
}

export async function updateInnerServer(store: Store, name: string, update: ServerUpdate): Promise<{ server: InnerServer; previousKeyId: string; endorsed: boolean }> {
  requireRole(store, 'outer', 'inner servers');
  const i = internals(store);
  const servers = innerServers(store);
  const old = servers.get(name);
  if (!old) throw new NotFoundError(`no inner server named ${name} (see \`sws server list\`)`);
  if (update.publicKeyPem === undefined && update.statement === undefined && update.url === undefined && update.hosts === undefined) {
    throw new UsageError('nothing to change: give --key, --statement, --url or --hosts', '--key');
  }
  let key = { pem: old.publicKeyPem, keyId: old.keyId };
  let endorsed = false;
  if (update.statement !== undefined) {
    const endorsedKey = await verifyEndorsement(parseEndorsement(update.statement), old.publicKeyPem).catch((e: Error) => {
      throw new UsageError(e.message, '--statement');
    });
    key = { pem: (await publicKeyInfo(endorsedKey.publicKeyPem)).pem, keyId: endorsedKey.keyId };
    endorsed = true;
  }
  if (update.publicKeyPem !== undefined) {
    const given = await publicKeyInfo(update.publicKeyPem);
    if (endorsed && given.keyId !== key.keyId) throw new UsageError('the key does not match the one the statement endorses', '--key');
    key = { pem: given.pem, keyId: given.keyId };
  }
  const url = update.url !== undefined ? check(serverUrlSchema, update.url, '--url') : old.url;
  const hosts = update.hosts !== undefined ? check(hostListSchema, update.hosts, '--hosts') : undefined;
  i.write(() => {
    const row = i.prepare('SELECT id, key_id FROM inner_servers WHERE name = ?').get(old.name) as { id: number; key_id: string } | undefined;
    if (!row) throw new NotFoundError(`no inner server named ${name}`);
    if (row.key_id !== old.keyId) throw new UsageError('the server key changed meanwhile; run the command again', '--key');
    i.prepare('UPDATE inner_servers SET url = ?, public_key_pem = ?, key_id = ? WHERE id = ?').run(url, key.pem, key.keyId, row.id);
    if (hosts) {
      for (const h of hosts) {
        const owner = i.prepare('SELECT s.name FROM inner_server_hosts h JOIN inner_servers s ON s.id = h.server_id WHERE h.host = ?').get(h) as { name: string } | undefined;
        if (owner && owner.name !== old.name) throw new ExistsError(`host ${h} is already fronted by inner server ${owner.name}; a host has exactly one inner server`);
      }
      i.prepare('DELETE FROM inner_server_hosts WHERE server_id = ?').run(row.id);
      const ins = i.prepare('INSERT INTO inner_server_hosts (host, server_id) VALUES (?, ?)');
      for (const h of hosts) ins.run(h, row.id);
    }
    i.audit('server.update', old.name, { url, keyId: key.keyId, previousKeyId: old.keyId, endorsed, ...(hosts ? { hosts } : {}) });
  });
  return { server: servers.get(old.name)!, previousKeyId: old.keyId, endorsed };
}

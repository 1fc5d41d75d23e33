/**
 * Makes a data dir match a desired state in ONE transaction: BEGIN IMMEDIATE on the store's
 * connection, then the store's own repository calls (whose transactions nest as savepoints, so
 * every validation, audit entry and ACL generation bump is theirs), then COMMIT — or ROLLBACK
 * on any error, and always for a dry run. Either everything in the file is applied or
 * nothing is; a dry run also proves the changes would be accepted (host ownership, name
 * clashes) without keeping them.
 *
 * Order inside the transaction: removals first (revoking a grant before re-granting narrower
 * methods; removing a changed inner server before adding it back, so hosts can move between
 * servers), then additions and changes.
 */
import { aclRules, clients, innerServers, sites, SwsError, UsageError, type Store } from '../store/index.ts';
import { diffState, type Change } from './diff.ts';
import { ruleKey, type DesiredState } from './load.ts';

export interface ApplyOptions {
  readonly dryRun: boolean;
  readonly prune: boolean;
}

export interface ApplyResult {
  readonly changes: readonly Change[];
  /** True when the changes were committed (false for a dry run or when nothing differs). */
  readonly committed: boolean;
}

export function currentState(store: Store, role: DesiredState['role']) {
  return role === 'inner' ? { sites: sites(store).list(), clients: clients(store).list(), acl: aclRules(store).list() } : { servers: innerServers(store).list() };
}

async function execute(store: Store, desired: DesiredState, changes: readonly Change[]): Promise<void> {
  const is = (action: Change['action'], kind: Change['kind']) => changes.filter((c) => c.action === action && c.kind === kind);
  if (desired.role === 'inner') {
    const acl = aclRules(store);
    const rules = new Map(desired.acl.map((r) => [ruleKey(r), r]));
    for (const c of [...is('remove', 'acl'), ...is('change', 'acl')]) {
      const b = c.before!;
      acl.revoke({ user: String(b.user), host: b.host as string | null, pattern: String(b.pattern) });
    }
    for (const c of is('remove', 'client')) clients(store).remove(c.key);
    for (const c of is('remove', 'site')) sites(store).remove(c.key);
    const wantSites = new Map(desired.sites.map((s) => [s.host, s]));
    for (const c of [...is('add', 'site'), ...is('change', 'site')]) {
      const s = wantSites.get(c.key)!;
      sites(store).add({ host: s.host, upstream: s.upstream, caPem: s.caPem }, { replace: true });
    }
    const wantClients = new Map(desired.clients.map((x) => [x.user, x]));
    for (const c of [...is('add', 'client'), ...is('change', 'client')]) {
      const x = wantClients.get(c.key)!;
      await clients(store).add({ user: x.user, publicKeyPem: x.publicKeyPem }, { replace: true });
    }
    for (const c of [...is('add', 'acl'), ...is('change', 'acl')]) {
      const r = rules.get(c.key)!;
      acl.grant({ user: r.user, host: r.host, pattern: r.pattern, methods: r.methods });
    }
    return;
  }
  const servers = innerServers(store);
  for (const c of [...is('remove', 'server'), ...is('change', 'server')]) servers.remove(c.key);
  const want = new Map(desired.servers.map((s) => [s.name, s]));
  for (const c of [...is('add', 'server'), ...is('change', 'server')]) {
    const s = want.get(c.key)!;
    await servers.add({ name: s.name, url: s.url, publicKeyPem: s.publicKeyPem, hosts: [...s.hosts] });
  }
}

/** Computes the changes and applies them atomically (or, for a dry run, tries and rolls back). */
export async function applyDesiredState(store: Store, desired: DesiredState, opts: ApplyOptions): Promise<ApplyResult> {
  const db = store.db;
  db.exec('BEGIN IMMEDIATE');
  let committed = false;
  try {
    // Read inside the write lock: nobody changes the data dir between the diff and the writes.
    const changes = diffState(desired, currentState(store, desired.role), opts.prune);
    const writes = changes.filter((c) => c.action !== 'unmanaged');
    try {
      await execute(store, desired, writes);
    } catch (e) {
      // The file contradicts what the data dir keeps (e.g. a user name that differs only in
      // case from an unmanaged one): bad input, nothing applied.
      if (e instanceof SwsError && (e.code === 'SWS_ERR_EXISTS' || e.code === 'SWS_ERR_NOT_FOUND')) {
        throw new UsageError(`${e.message}; nothing was applied`, 'config', { cause: e });
      }
      throw e;
    }
    if (!opts.dryRun && writes.length > 0) {
      db.exec('COMMIT');
      committed = true;
    }
    return { changes, committed };
  } finally {
    if (!committed && db.inTransaction) db.exec('ROLLBACK');
  }
}

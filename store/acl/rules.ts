/**
 * The access control list 30 as rows: one grant per (user, host, pattern), with an optional
 * method list. Granting again widens the methods of the existing grant (a grant only ever adds
 * access); revoking removes the grant. Every change bumps `meta.acl_generation` in the same
 * transaction, which is how engines in other processes know to recompile. `dryRun` computes
 * the same result inside a read and writes nothing.
 */
import { internals, requireRole, type Store } from '../db.ts';
import { NotFoundError } from '../errors.ts';
import { check, hostSchema, methodsSchema, userNameSchema } from '../validate.ts';
import { parsePattern } from './pattern.ts';
import type { AclRule } from './trie.ts';

interface RuleRow {
  id: number;
  user: string;
  host: string;
  pattern: string;
  methods: string;
  created_at: string;
}

export function toRule(r: RuleRow): AclRule {
  return {
    id: r.id,
    user: r.user,
    host: r.host === '' ? null : r.host,
    pattern: r.pattern,
    methods: r.methods === '' ? null : r.methods.split(','),
    createdAt: r.created_at,
  };
}

export interface GrantInput {
  user: string;
  pattern: string;
  /** Host (any form normalizeHost accepts); omitted/null = every site. */
  host?: string | null | undefined;
  /** Methods (array or comma list); omitted/null = every method. */
  methods?: readonly string[] | string | null | undefined;
}

export type GrantResult =
  | { readonly change: 'added'; readonly rule: AclRule }
  | { readonly change: 'extended'; readonly rule: AclRule; readonly before: AclRule }
  | { readonly change: 'unchanged'; readonly rule: AclRule };

export interface RevokeResult {
  readonly change: 'removed';
  readonly rule: AclRule;
}

export interface AclRules {
  list(user?: string): AclRule[];
  /** Rows for one user, as the engine compiles them (in no particular order). */
  forUser(user: string): AclRule[];
  /** The current ACL generation (bumped by every committed change). */
  generation(): number;
  /**
   * The generation now and the users whose rules changed after `since`, read in one snapshot;
   * `users` is undefined when the change log no longer reaches back that far.
   */
  changesSince(since: number): { generation: number; users: string[] | undefined };
  grant(input: GrantInput, opts?: { dryRun?: boolean }): GrantResult;
  revoke(input: { user: string; pattern: string; host?: string | null | undefined }, opts?: { dryRun?: boolean }): RevokeResult;
}

const cache = new WeakMap<Store, AclRules>();

/** How many ACL changes are remembered per user for selective cache invalidation. */
const CHANGE_LOG_SIZE = 1000;

function methodsList(m: GrantInput['methods']): string[] | null {
  if (m === undefined || m === null) return null;
  return check(methodsSchema, typeof m === 'string' ? m : m.join(','), '--methods');
}

export function aclRules(store: Store): AclRules {
  const cached = cache.get(store);
  if (cached) return cached;
  requireRole(store, 'inner', 'ACL rules');
  const i = internals(store);
  const find = (user: string, host: string, pattern: string) =>
    i.prepare('SELECT * FROM acl_rules WHERE user = ? AND host = ? AND pattern = ?').get(user, host, pattern) as RuleRow | undefined;
  /** Next generation, and which user it concerns (engines then recompile only that user). */
  const bump = (user: string) => {
    i.prepare("INSERT INTO meta (key, value) VALUES ('acl_generation', '1') ON CONFLICT (key) DO UPDATE SET value = CAST(value AS INTEGER) + 1").run();
    const gen = Number((i.prepare("SELECT value FROM meta WHERE key = 'acl_generation'").get() as { value: string }).value);
    i.prepare('INSERT INTO acl_changes (generation, user) VALUES (?, ?)').run(gen, user);
    i.prepare('DELETE FROM acl_changes WHERE generation <= ?').run(gen - CHANGE_LOG_SIZE);
  };

  const repo: AclRules = {
    list(user) {
      return i.read(() =>
        (user === undefined
          ? (i.prepare('SELECT * FROM acl_rules ORDER BY user, host, pattern').all() as RuleRow[])
          : (i.prepare('SELECT * FROM acl_rules WHERE user = ? ORDER BY host, pattern').all(user) as RuleRow[])
        ).map(toRule),
      );
    },
    forUser(user) {
      // Hot when the engine recompiles a user with many rules: raw rows, no sort (order does
      // not matter to the trie: a user has at most one rule per host and pattern).
      return i.read(() => {
        const rows = i.prepare('SELECT id, host, pattern, methods, created_at FROM acl_rules WHERE user = ?').raw(true).all(user) as [number, string, string, string, string][];
        const out: AclRule[] = new Array(rows.length);
        for (let k = 0; k < rows.length; k++) {
          const r = rows[k]!;
          out[k] = { id: r[0], user, host: r[1] === '' ? null : r[1], pattern: r[2], methods: r[3] === '' ? null : r[3].split(','), createdAt: r[4] };
        }
        return out;
      });
    },
    generation() {
      return i.read(() => Number((i.prepare("SELECT value FROM meta WHERE key = 'acl_generation'").get() as { value: string } | undefined)?.value ?? 0));
    },
    changesSince(since) {
      return i.read(() =>
        store.db.transaction(() => {
          const generation = repo.generation();
          if (generation === since) return { generation, users: [] };
          const lo = (i.prepare('SELECT min(generation) AS lo FROM acl_changes').get() as { lo: number | null }).lo;
          if (lo === null || lo > since + 1 || generation < since) return { generation, users: undefined };
          const users = (i.prepare('SELECT DISTINCT user FROM acl_changes WHERE generation > ?').all(since) as { user: string }[]).map((r) => r.user);
          return { generation, users };
        })(),
      );
    },
    grant(input, opts = {}) {
      const user = check(userNameSchema, input.user, 'USER');
      const pattern = parsePattern(input.pattern, 'PATTERN').canonical;
      const host = input.host === undefined || input.host === null ? '' : check(hostSchema, input.host, '--host');
      const methods = methodsList(input.methods);
      const body = (): GrantResult => {
        const old = find(user, host, pattern);
        const now = new Date().toISOString();
        if (!old) {
          const draft: RuleRow = { id: 0, user, host, pattern, methods: methods?.join(',') ?? '', created_at: now };
          if (opts.dryRun) return { change: 'added', rule: toRule(draft) };
          draft.id = Number(
            i.prepare('INSERT INTO acl_rules (user, host, pattern, methods, created_at) VALUES (?, ?, ?, ?, ?)').run(user, host, pattern, draft.methods, now)
              .lastInsertRowid,
          );
          bump(user);
          i.audit('acl.grant', user, { host: host || '*', pattern, methods: draft.methods || '*' });
          return { change: 'added', rule: toRule(draft) };
        }
        const before = toRule(old);
        let merged: string;
        if (old.methods === '' || methods === null) merged = '';
        else merged = [...new Set([...old.methods.split(','), ...methods])].sort().join(',');
        if (merged === old.methods) return { change: 'unchanged', rule: before };
        const after = toRule({ ...old, methods: merged });
        if (opts.dryRun) return { change: 'extended', rule: after, before };
        i.prepare('UPDATE acl_rules SET methods = ? WHERE id = ?').run(merged, old.id);
        bump(user);
        i.audit('acl.grant', user, { host: host || '*', pattern, methods: merged || '*', before: old.methods || '*' });
        return { change: 'extended', rule: after, before };
      };
      return opts.dryRun ? i.read(body) : i.write(body);
    },
    revoke(input, opts = {}) {
      const user = check(userNameSchema, input.user, 'USER');
      const pattern = parsePattern(input.pattern, 'PATTERN').canonical;
      const host = input.host === undefined || input.host === null ? '' : check(hostSchema, input.host, '--host');
      const body = (): RevokeResult => {
        const old = find(user, host, pattern);
        if (!old) {
          throw new NotFoundError(
            `no grant of ${pattern} to ${user} ${host ? `for host ${host}` : 'for all hosts'}; \`sws acl list ${user}\` shows the grants (a host-specific grant needs --host)`,
          );
        }
        if (!opts.dryRun) {
          i.prepare('DELETE FROM acl_rules WHERE id = ?').run(old.id);
          bump(user);
          i.audit('acl.revoke', user, { host: host || '*', pattern, methods: old.methods || '*' });
        }
        return { change: 'removed', rule: toRule(old) };
      };
      return opts.dryRun ? i.read(body) : i.write(body);
    },
  };
  cache.set(store, repo);
  return repo;
}

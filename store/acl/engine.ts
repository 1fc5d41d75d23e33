/**
 * The ACL engine (patent access condition check 31): one per store, shared by the inner
 * sidecar and `sws acl check`, so both decide with the same code. Each user's rules are
 * compiled once into a trie (trie.ts) and cached; the cache is dropped when the ACL
 * generation changes, whether by this connection or by another process (seen through
 * `PRAGMA data_version` polling, before the store's watchers are told, so a sidecar that
 * re-checks its requests in flight on `store.watch` already sees the new rules).
 * `check` does no database I/O when the cache is warm.
 */
import type { Store } from '../db.ts';
import { internals } from '../db.ts';
import { HostError } from '../errors.ts';
import { normalizeHost } from './host.ts';
import type { NormalizedPath } from './normalize.ts';
import { aclRules } from './rules.ts';
import { compileRules, explainRule, type AclDecision, type AclRule, type CompiledAcl, type RuleExplanation } from './trie.ts';

export interface AclExplanation {
  readonly decision: AclDecision;
  readonly user: string;
  readonly method: string;
  readonly host: string;
  readonly path: NormalizedPath;
  /** Every rule of the user, with whether and why it (did not) match. */
  readonly rules: readonly RuleExplanation[];
}

export interface AclEngine {
  /**
   * Decides a request. `host` is the request's host (any form normalizeHost accepts), `method`
   * is compared exactly (HTTP methods are case-sensitive). Default deny.
   */
  check(user: string, method: string, host: string, path: NormalizedPath): AclDecision;
  /** The same decision, plus why each of the user's rules did or did not match (slow path). */
  explain(user: string, method: string, host: string, path: NormalizedPath): AclExplanation;
  /**
   * Calls `listener` after the rules changed (in this or another process), so a sidecar can
   * re-check long-lived responses in flight and cut those no longer allowed. Returns unsubscribe.
   */
  onChange(listener: () => void): () => void;
  /** Whether `user`'s rules are compiled and cached (diagnostics and tests). */
  isCompiled(user: string): boolean;
  /** Increases whenever the cache is invalidated. */
  readonly generation: number;
  /** Stops watching the database (also done by store.close()). */
  close(): void;
}

/** Bound on cached users; past it the cache is simply cleared (users are authenticated first). */
const MAX_CACHED_USERS = 10_000;

const engines = new WeakMap<Store, AclEngine>();

export function aclEngine(store: Store): AclEngine {
  const existing = engines.get(store);
  if (existing) return existing;
  const rules = aclRules(store);
  const cache = new Map<string, CompiledAcl>();
  const listeners = new Set<() => void>();
  let aclGen = rules.generation();
  let generation = 0;

  const refresh = () => {
    let ch: { generation: number; users: string[] | undefined };
    try {
      ch = rules.changesSince(aclGen);
    } catch {
      return;
    }
    if (ch.generation === aclGen) return;
    aclGen = ch.generation;
    // Recompile only the users whose rules changed (a user with 100k rules costs ~0.5 s).
    if (ch.users === undefined) cache.clear();
    else for (const u of ch.users) cache.delete(u);
    generation++;
    for (const l of [...listeners]) l();
  };
  const stopListening = internals(store).onChange(refresh);

  const compiled = (user: string): CompiledAcl => {
    let c = cache.get(user);
    if (c === undefined) {
      if (cache.size >= MAX_CACHED_USERS) cache.clear();
      c = compileRules(rules.forUser(user));
      cache.set(user, c);
    }
    return c;
  };

  const decide = (user: string, method: string, hostKey: string, path: NormalizedPath): AclDecision => {
    const c = compiled(user);
    const rule = c.match(method, hostKey, path.segments);
    if (rule) return { allow: true, rule };
    return {
      allow: false,
      reason: c.ruleCount === 0 ? `${user} has no ACL rules (default deny)` : `none of ${user}'s ${c.ruleCount} rules allows ${method} ${hostKey}${path.path} (default deny)`,
    };
  };

  const hostKeyOf = (host: string): string | HostError => {
    try {
      return normalizeHost(host);
    } catch (e) {
      if (e instanceof HostError) return e;
      throw e;
    }
  };

  const engine: AclEngine = {
    check(user, method, host, path) {
      const h = hostKeyOf(host);
      if (typeof h !== 'string') return { allow: false, reason: `invalid host: ${h.message}` };
      return decide(user, method, h, path);
    },
    explain(user, method, host, path) {
      const h = hostKeyOf(host);
      if (typeof h !== 'string') return { decision: { allow: false, reason: `invalid host: ${h.message}` }, user, method, host, path, rules: [] };
      const decision = decide(user, method, h, path);
      const all: AclRule[] = rules.forUser(user).sort((a, b) => a.id - b.id);
      return { decision, user, method, host: h, path, rules: all.map((r) => explainRule(r, method, h, path.segments)) };
    },
    isCompiled(user) {
      return cache.has(user);
    },
    onChange(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    get generation() {
      return generation;
    },
    close() {
      stopListening();
      listeners.clear();
      cache.clear();
      engines.delete(store);
    },
  };
  engines.set(store, engine);
  return engine;
}

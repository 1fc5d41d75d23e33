/**
 * The differences between a desired state (load.ts) and what a data dir holds, as a list of
 * changes a person and a script can read. Pure: the current state comes in as plain lists.
 * Entries the file does not mention are `unmanaged` (kept) unless pruning, then `remove`.
 */
import type { AclRule, InnerServer, RegisteredClient, Site } from '../store/index.ts';
import { ruleKey, type DesiredClient, type DesiredRule, type DesiredServer, type DesiredSite, type DesiredState } from './load.ts';

export type ChangeAction = 'add' | 'change' | 'remove' | 'unmanaged';
export type ChangeKind = 'site' | 'client' | 'acl' | 'server';

/** What a change shows of an entry: no PEM, keys by fingerprint. */
export type Shown = Readonly<Record<string, string | readonly string[] | null | boolean>>;

export interface Change {
  readonly action: ChangeAction;
  readonly kind: ChangeKind;
  /** The entry's identity: host, user, `user host pattern`, server name. */
  readonly key: string;
  readonly before?: Shown;
  readonly after?: Shown;
}

export interface CurrentState {
  readonly sites?: readonly Site[];
  readonly clients?: readonly RegisteredClient[];
  readonly acl?: readonly AclRule[];
  readonly servers?: readonly InnerServer[];
}

const fp = (keyIdHex: string) => `sha256:${keyIdHex}`;

const showSite = (s: { upstream: string; caPem?: string | undefined }): Shown => ({ upstream: s.upstream, privateCa: s.caPem !== undefined });
const showClient = (c: { keyId: string }): Shown => ({ key: fp(c.keyId) });
const showRule = (r: { user: string; host: string | null; pattern: string; methods: readonly string[] | null }): Shown => ({
  user: r.user,
  host: r.host,
  pattern: r.pattern,
  methods: r.methods,
});
const showServer = (s: { url: string; keyId: string; hosts: readonly string[] }): Shown => ({ url: s.url, key: fp(s.keyId), hosts: s.hosts });

/** Compares by key: add what is only desired, change what differs, remove/keep what is only current. */
function compare<D, C>(
  kind: ChangeKind,
  desired: readonly D[],
  current: readonly C[],
  keyD: (d: D) => string,
  keyC: (c: C) => string,
  same: (d: D, c: C) => boolean,
  showD: (d: D) => Shown,
  showC: (c: C) => Shown,
  prune: boolean,
): Change[] {
  const out: Change[] = [];
  const cur = new Map(current.map((c) => [keyC(c), c]));
  const want = new Set<string>();
  for (const d of desired) {
    const key = keyD(d);
    want.add(key);
    const c = cur.get(key);
    if (c === undefined) out.push({ action: 'add', kind, key, after: showD(d) });
    else if (!same(d, c)) out.push({ action: 'change', kind, key, before: showC(c), after: showD(d) });
  }
  for (const [key, c] of cur) if (!want.has(key)) out.push({ action: prune ? 'remove' : 'unmanaged', kind, key, before: showC(c) });
  return out;
}

const sameList = (a: readonly string[] | null, b: readonly string[] | null) => (a === null || b === null ? a === b : a.join(',') === b.join(','));

export function diffState(desired: DesiredState, current: CurrentState, prune: boolean): Change[] {
  if (desired.role === 'inner') {
    return [
      ...compare<DesiredSite, Site>(
        'site',
        desired.sites,
        current.sites ?? [],
        (d) => d.host,
        (c) => c.host,
        (d, c) => d.upstream === c.upstream && (d.caPem ?? '') === (c.caPem ?? ''),
        showSite,
        showSite,
        prune,
      ),
      ...compare<DesiredClient, RegisteredClient>(
        'client',
        desired.clients,
        current.clients ?? [],
        (d) => d.user,
        (c) => c.user,
        (d, c) => d.keyId === c.keyId,
        showClient,
        showClient,
        prune,
      ),
      ...compare<DesiredRule, AclRule>('acl', desired.acl, current.acl ?? [], ruleKey, ruleKey, (d, c) => sameList(d.methods, c.methods), showRule, showRule, prune),
    ];
  }
  return compare<DesiredServer, InnerServer>(
    'server',
    desired.servers,
    current.servers ?? [],
    (d) => d.name,
    (c) => c.name,
    (d, c) => d.url === c.url && d.keyId === c.keyId && sameList([...d.hosts].sort(), [...c.hosts].sort()),
    showServer,
    showServer,
    prune,
  );
}

export function summarize(changes: readonly Change[]): Record<ChangeAction, number> {
  const s: Record<ChangeAction, number> = { add: 0, change: 0, remove: 0, unmanaged: 0 };
  for (const c of changes) s[c.action]++;
  return s;
}

/** Notes for a person: grants for users with no registered key, grants for hosts with no site. */
export function warningsFor(desired: DesiredState): string[] {
  if (desired.role !== 'inner') return [];
  const users = new Set(desired.clients.map((c) => c.user));
  const hosts = new Set(desired.sites.map((s) => s.host));
  const out: string[] = [];
  for (const r of desired.acl) {
    if (!users.has(r.user)) out.push(`acl: ${r.user} has grants but is not among the file's clients`);
    if (r.host !== null && !hosts.has(r.host)) out.push(`acl: a grant for host ${r.host}, which is not among the file's sites`);
  }
  return [...new Set(out)];
}

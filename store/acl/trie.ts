/**
 * The compiled form of one user's ACL rules (patent ACL 30, access condition check 31): a
 * segment trie per host (plus one for rules that apply to every host). A decision walks the
 * path once, following literal edges by hash lookup, so its cost grows with the path depth and
 * the number of wildcard edges on the way, not with the number of rules. Default deny.
 *
 * Pure: no Node imports; the store builds it from rows and caches it (engine.ts).
 */
import { matchPattern, parseCanonicalPattern, parsePattern, type ParsedPattern } from './pattern.ts';

/** One grant. `host: null` = every site; `methods: null` = every method. */
export interface AclRule {
  readonly id: number;
  readonly user: string;
  readonly host: string | null;
  /** Canonical pattern text (see pattern.ts). */
  readonly pattern: string;
  /** Upper-case method names, sorted; null = all methods. */
  readonly methods: readonly string[] | null;
  readonly createdAt: string;
}

export type AclDecision = { readonly allow: true; readonly rule: AclRule } | { readonly allow: false; readonly rule?: undefined; readonly reason: string };

interface TrieNode {
  lit: Map<string, TrieNode> | null;
  star: TrieNode | null;
  globs: Map<string, { re: RegExp; node: TrieNode }> | null;
  globstar: TrieNode | null;
  rules: AclRule[] | null;
}

const node = (): TrieNode => ({ lit: null, star: null, globs: null, globstar: null, rules: null });

function insert(root: TrieNode, p: ParsedPattern, rule: AclRule): void {
  let n = root;
  for (const seg of p.segments) {
    switch (seg.kind) {
      case 'literal': {
        n.lit ??= new Map();
        let c = n.lit.get(seg.value);
        if (!c) n.lit.set(seg.value, (c = node()));
        n = c;
        break;
      }
      case 'star':
        n = n.star ??= node();
        break;
      case 'glob': {
        n.globs ??= new Map();
        let g = n.globs.get(seg.source);
        if (!g) n.globs.set(seg.source, (g = { re: seg.re, node: node() }));
        n = g.node;
        break;
      }
      case 'globstar':
        n = n.globstar ??= node();
        break;
    }
  }
  (n.rules ??= []).push(rule);
}

function pick(rules: readonly AclRule[], method: string): AclRule | undefined {
  for (const r of rules) if (r.methods === null || r.methods.includes(method)) return r;
  return undefined;
}

/** Depth-first, literal edges before globs, `*` and `**`: the most specific rule decides. */
function walk(n: TrieNode, segs: readonly string[], i: number, method: string): AclRule | undefined {
  let r: AclRule | undefined;
  if (i === segs.length) {
    if (n.rules !== null && (r = pick(n.rules, method))) return r;
  } else {
    const s = segs[i]!;
    if (n.lit !== null) {
      const c = n.lit.get(s);
      if (c !== undefined && (r = walk(c, segs, i + 1, method))) return r;
    }
    if (n.globs !== null) for (const g of n.globs.values()) if (g.re.test(s) && (r = walk(g.node, segs, i + 1, method))) return r;
    if (n.star !== null && (r = walk(n.star, segs, i + 1, method))) return r;
  }
  if (n.globstar !== null) for (let j = i; j <= segs.length; j++) if ((r = walk(n.globstar, segs, j, method))) return r;
  return undefined;
}

export interface CompiledAcl {
  readonly ruleCount: number;
  /** The deciding rule, or undefined (deny). `host` is a normalizeHost() key. */
  match(method: string, host: string, segments: readonly string[]): AclRule | undefined;
}

export function compileRules(rules: readonly AclRule[]): CompiledAcl {
  const anyHost = node();
  const byHost = new Map<string, TrieNode>();
  for (const rule of rules) {
    const p = parseCanonicalPattern(rule.pattern);
    let root = anyHost;
    if (rule.host !== null) {
      let h = byHost.get(rule.host);
      if (!h) byHost.set(rule.host, (h = node()));
      root = h;
    }
    insert(root, p, rule);
  }
  return {
    ruleCount: rules.length,
    match(method, host, segments) {
      const h = byHost.get(host);
      return (h !== undefined ? walk(h, segments, 0, method) : undefined) ?? walk(anyHost, segments, 0, method);
    },
  };
}

/** Why one rule did or did not apply to a request: the slow path behind `sws acl check`. */
export interface RuleExplanation {
  readonly rule: AclRule;
  readonly matched: boolean;
  /** For a rule that did not match: the first condition that failed, in words. */
  readonly reason?: string;
}

export function explainRule(rule: AclRule, method: string, host: string, segments: readonly string[]): RuleExplanation {
  if (rule.host !== null && rule.host !== host) return { rule, matched: false, reason: `it is for host ${rule.host}, not ${host}` };
  const depth = matchPattern(parsePattern(rule.pattern), segments);
  if (depth !== -1) {
    const at = depth < segments.length ? `segment ${depth + 1} ("${segments[depth]}")` : 'the end of the path';
    return { rule, matched: false, reason: `the path does not match the pattern (it diverges at ${at})` };
  }
  if (rule.methods !== null && !rule.methods.includes(method)) return { rule, matched: false, reason: `it allows only ${rule.methods.join(',')}, not ${method}` };
  return { rule, matched: true };
}

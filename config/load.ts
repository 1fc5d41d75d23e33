/**
 * Reads a declarative config (schema.ts) into the desired state of a data dir, checking
 * everything that can be checked without the database: YAML syntax, the schema, duplicates,
 * public keys (RSA 2048/3072/4096, the same import the store uses) and CA certificates. Every
 * error is a UsageError naming the file, the line and the field (`sites[1].upstream`), so a bad
 * file is rejected before anything is written.
 */
import { X509Certificate } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { isMap, isScalar, LineCounter, parseDocument, type Document } from 'yaml';
import { importPublicKey, toPem } from '../core/crypto.ts';
import { toHex } from '../core/bytes.ts';
import { KeyFormatError } from '../core/errors.ts';
import { SwsError, UsageError } from '../store/index.ts';
import { configSchema, type ConfigFile } from './schema.ts';

export interface DesiredSite {
  readonly host: string;
  readonly upstream: string;
  readonly caPem?: string;
}
export interface DesiredClient {
  readonly user: string;
  readonly publicKeyPem: string;
  readonly keyId: string;
}
export interface DesiredRule {
  readonly user: string;
  /** null: every site. */
  readonly host: string | null;
  readonly pattern: string;
  /** null: every method; else upper-case, sorted. */
  readonly methods: readonly string[] | null;
}
export interface DesiredServer {
  readonly name: string;
  readonly url: string;
  readonly publicKeyPem: string;
  readonly keyId: string;
  readonly hosts: readonly string[];
}

export type DesiredState =
  | { readonly role: 'inner'; readonly sites: readonly DesiredSite[]; readonly clients: readonly DesiredClient[]; readonly acl: readonly DesiredRule[] }
  | { readonly role: 'outer'; readonly servers: readonly DesiredServer[] };

export const ruleKey = (r: { user: string; host: string | null; pattern: string }) => `${r.user} ${r.host ?? '*'} ${r.pattern}`;

const MAX_CONFIG_BYTES = 4 * 1024 * 1024;
const MAX_PEM_BYTES = 1024 * 1024;

type PathSeg = string | number;
const showPath = (path: readonly PathSeg[]) => path.map((p, i) => (typeof p === 'number' ? `[${p}]` : i === 0 ? p : `.${p}`)).join('') || '(top level)';

class Located {
  readonly source: string;
  readonly doc: Document;
  readonly lines: LineCounter;
  constructor(source: string, doc: Document, lines: LineCounter) {
    this.source = source;
    this.doc = doc;
    this.lines = lines;
  }

  /** `config.yaml line 7, sites[1].upstream` (the nearest node that exists gives the line). */
  where(path: readonly PathSeg[]): string {
    for (let n = path.length; n >= 0; n--) {
      const node = n === 0 ? this.doc.contents : this.doc.getIn(path.slice(0, n), true);
      const range = (node as { range?: [number, number, number] } | null | undefined)?.range;
      if (range) return `${this.source} line ${this.lines.linePos(range[0]).line}, ${showPath(path)}`;
    }
    return `${this.source}, ${showPath(path)}`;
  }

  /** `config.yaml line 4, sitez`: the line of the key `key` itself inside the mapping at `path`. */
  whereKey(path: readonly PathSeg[], key: string): string {
    const map = path.length === 0 ? this.doc.contents : this.doc.getIn(path, true);
    if (isMap(map)) {
      const pair = map.items.find((p) => (isScalar(p.key) ? p.key.value : p.key) === key);
      const range = (pair?.key as { range?: [number, number, number] } | null | undefined)?.range;
      if (range) return `${this.source} line ${this.lines.linePos(range[0]).line}, ${showPath([...path, key])}`;
    }
    return this.where([...path, key]);
  }

  fail(path: readonly PathSeg[], message: string): never {
    throw new UsageError(message, this.where(path));
  }
}

function readSmall(path: string, limit: number, what: string): string {
  try {
    const st = statSync(path);
    if (!st.isFile()) throw new UsageError(`${path} is not a regular file`, what);
    if (st.size > limit) throw new UsageError(`${path} is larger than ${Math.round(limit / 1024)} KiB`, what);
    return readFileSync(path, 'utf8');
  } catch (e) {
    if (e instanceof SwsError) throw e;
    const code = (e as NodeJS.ErrnoException).code;
    throw new UsageError(`cannot read ${path}: ${code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : 'cannot read it'}`, what);
  }
}

/** Reads the config file at `path` (relative to `cwd`); `-` is not handled here (see parseConfig). `flag` names it in errors. */
export function readConfigFile(path: string, cwd: string, flag = '-f'): { text: string; source: string; baseDir: string } {
  const full = resolve(cwd, path);
  return { text: readSmall(full, MAX_CONFIG_BYTES, flag), source: path, baseDir: dirname(full) };
}

async function publicKey(loc: Located, path: readonly PathSeg[], pem: string): Promise<{ pem: string; keyId: string }> {
  try {
    const h = await importPublicKey(pem);
    return { pem: toPem(h.spki, 'PUBLIC KEY'), keyId: toHex(h.keyId) };
  } catch (e) {
    if (e instanceof KeyFormatError) loc.fail(path, e.message);
    throw e;
  }
}

function caBundle(loc: Located, path: readonly PathSeg[], pem: string): string {
  const blocks = pem.match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g);
  if (!blocks) loc.fail(path, 'holds no PEM certificate ("-----BEGIN CERTIFICATE-----")');
  try {
    // The same re-encoding the store applies (store/keys.ts), so equal bundles compare equal.
    return blocks.map((b) => new X509Certificate(b).toString()).join('');
  } catch {
    return loc.fail(path, 'is not a valid X.509 certificate in PEM form');
  }
}

/**
 * Parses and checks a config. `baseDir` resolves `publicKeyFile` / `caFile`. Throws UsageError
 * (exit 2) for anything wrong, before any database is touched.
 */
export async function parseConfig(text: string, source: string, baseDir: string): Promise<DesiredState> {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: true, uniqueKeys: true });
  const err = doc.errors[0];
  if (err) {
    const pos = err.linePos?.[0];
    throw new UsageError(`invalid YAML: ${err.message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '')}`, pos ? `${source} line ${pos.line}` : source);
  }
  const loc = new Located(source, doc, lines);
  const raw = doc.toJS({ maxAliasCount: 100 }) as unknown;
  if (raw === null || raw === undefined) throw new UsageError('the file is empty; it needs at least `version: 1` and `role: inner|outer`', source);
  const r = configSchema.safeParse(raw);
  if (!r.success) {
    const issue = r.error.issues[0]!;
    if (issue.code === 'unrecognized_keys') {
      // Point at the (first) unknown key's own line, not at the mapping that holds it.
      const message = `unknown field${issue.keys.length > 1 ? 's' : ''} ${issue.keys.join(', ')}`;
      throw new UsageError(message, loc.whereKey(issue.path as PathSeg[], issue.keys[0]!));
    }
    return loc.fail(issue.path as PathSeg[], issue.message);
  }
  const cfg: ConfigFile = r.data;
  const fileText = (path: readonly PathSeg[], file: string) => {
    try {
      return readSmall(resolve(baseDir, file), MAX_PEM_BYTES, loc.where(path));
    } catch (e) {
      if (e instanceof UsageError) throw new UsageError(e.message.replace(/^.*?: cannot/, 'cannot'), loc.where(path));
      throw e;
    }
  };

  if (cfg.role === 'inner') {
    const sites: DesiredSite[] = [];
    const seenHosts = new Map<string, number>();
    for (const [i, s] of cfg.sites.entries()) {
      const prev = seenHosts.get(s.host);
      if (prev !== undefined) loc.fail(['sites', i, 'host'], `host ${s.host} is listed twice (also sites[${prev}])`);
      seenHosts.set(s.host, i);
      if (s.ca !== undefined && s.caFile !== undefined) loc.fail(['sites', i], 'give at most one of ca (PEM) and caFile');
      const caText = s.ca ?? (s.caFile !== undefined ? fileText(['sites', i, 'caFile'], s.caFile) : undefined);
      if (caText !== undefined && !s.upstream.startsWith('https:')) loc.fail(['sites', i, s.ca !== undefined ? 'ca' : 'caFile'], 'a CA applies only to an https:// upstream');
      sites.push({ host: s.host, upstream: s.upstream, ...(caText !== undefined ? { caPem: caBundle(loc, ['sites', i, s.ca !== undefined ? 'ca' : 'caFile'], caText) } : {}) });
    }
    const clients: DesiredClient[] = [];
    const seenUsers = new Map<string, number>();
    for (const [i, c] of cfg.clients.entries()) {
      const prev = seenUsers.get(c.user.toLowerCase());
      if (prev !== undefined) loc.fail(['clients', i, 'user'], `user ${c.user} is listed twice (also clients[${prev}]; names are compared without case)`);
      seenUsers.set(c.user.toLowerCase(), i);
      const field = c.publicKey !== undefined ? 'publicKey' : 'publicKeyFile';
      const pem = c.publicKey ?? fileText(['clients', i, 'publicKeyFile'], c.publicKeyFile!);
      const k = await publicKey(loc, ['clients', i, field], pem);
      clients.push({ user: c.user, publicKeyPem: k.pem, keyId: k.keyId });
    }
    const acl: DesiredRule[] = [];
    const seenRules = new Map<string, number>();
    for (const [i, a] of cfg.acl.entries()) {
      const d: DesiredRule = { user: a.user, host: a.host ?? null, pattern: a.pattern, methods: a.methods ?? null };
      const prev = seenRules.get(ruleKey(d));
      if (prev !== undefined) loc.fail(['acl', i], `the grant of ${d.pattern} to ${d.user} (${d.host ?? 'all sites'}) is listed twice (also acl[${prev}]); list its methods once`);
      seenRules.set(ruleKey(d), i);
      acl.push(d);
    }
    return { role: 'inner', sites, clients, acl };
  }

  const servers: DesiredServer[] = [];
  const seenNames = new Map<string, number>();
  const hostOwner = new Map<string, string>();
  for (const [i, s] of cfg.servers.entries()) {
    const prev = seenNames.get(s.name.toLowerCase());
    if (prev !== undefined) loc.fail(['servers', i, 'name'], `inner server ${s.name} is listed twice (also servers[${prev}])`);
    seenNames.set(s.name.toLowerCase(), i);
    const hosts = [...new Set(s.hosts)].sort();
    for (const [j, h] of s.hosts.entries()) {
      const owner = hostOwner.get(h);
      if (owner !== undefined && owner !== s.name) loc.fail(['servers', i, 'hosts', j], `host ${h} is also fronted by inner server ${owner}; a host has exactly one inner server`);
      hostOwner.set(h, s.name);
    }
    const field = s.publicKey !== undefined ? 'publicKey' : 'publicKeyFile';
    const pem = s.publicKey ?? fileText(['servers', i, 'publicKeyFile'], s.publicKeyFile!);
    const k = await publicKey(loc, ['servers', i, field], pem);
    servers.push({ name: s.name, url: s.url, publicKeyPem: k.pem, keyId: k.keyId, hosts });
  }
  return { role: 'outer', servers };
}

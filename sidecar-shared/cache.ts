/**
 * The HTTP cache store both sidecars use (claim 4, patent 0066–0068): the inner's shared
 * cache of WWW responses and the outer's private per-user caches.
 *
 * - RFC 9111 decisions (storable, freshness, heuristics, Vary, no-store, no-cache, private,
 *   s-maxage, Authorization, revalidation, 304 merging) are made by http-cache-semantics;
 *   this module only stores what it says may be stored.
 * - Bounded by bytes with LRU eviction over every partition; one object may not exceed
 *   `maxObjectBytes`. Bodies enter the cache as they pass to the client (a tee keeps a
 *   reference to each chunk: nothing is buffered twice) and a body that grows past the limit
 *   is given up, never truncated.
 * - A partition names whose entries they are (the outer: a user; the inner: one shared
 *   partition), so a user's entries can be dropped at once.
 * - Hits are the hot path: a request without Cache-Control or Pragma is judged fresh by a
 *   time computed from http-cache-semantics' own verdict when the entry was stored or
 *   refreshed (`freshUntil`); any other request, or a time near or past it, asks the library.
 */
import CachePolicy from 'http-cache-semantics';
import type { FieldLine } from '../core/bhttp.ts';
import type { SidecarMetrics } from './metrics.ts';

export interface CacheLimits {
  /** Total bytes (bodies, header lines and a fixed overhead per entry); 0 disables the cache. */
  readonly maxBytes: number;
  /** Largest single response kept; larger ones pass through uncached. */
  readonly maxObjectBytes: number;
}

export const DEFAULT_CACHE_LIMITS: CacheLimits = { maxBytes: 64 * 1024 * 1024, maxObjectBytes: 8 * 1024 * 1024 };

/** Bookkeeping charged to every entry besides its body and header lines. */
const ENTRY_OVERHEAD = 512;
/** Variants (Vary) kept per URL; the oldest goes first. */
const MAX_VARIANTS = 8;

/** A request as the cache sees it: header names lowercase, `host` included. */
export interface CacheRequest {
  readonly method: string;
  readonly url: string;
  readonly headers: Record<string, string>;
}

export interface CacheEntry<M> {
  readonly partition: string;
  readonly key: string;
  policy: CachePolicy;
  status: number;
  /** Response header lines as received (order and repeats kept). */
  fields: FieldLine[];
  /** `fields` without Age, as an answer carries them (kept in step with `fields`). */
  served: FieldLine[];
  readonly chunks: Uint8Array[];
  readonly bodyBytes: number;
  size: number;
  readonly varyNames: readonly string[];
  readonly varySig: string;
  /** URL and Host of the request the policy was made from (what the library matches a request on). */
  url: string;
  host: string | undefined;
  /**
   * Before this time (ms) a GET with neither Cache-Control nor Pragma whose URL, Host and Vary
   * fields match is fresh by the library's rules (see plainFreshUntil); -Infinity: always ask it.
   */
  freshUntil: number;
  meta: M;
}

/** What a look-up found. `fresh`: may be served as is; `stale`: needs a conditional request first. */
export type CacheLookup<M> = { readonly kind: 'fresh'; readonly entry: CacheEntry<M> } | { readonly kind: 'stale'; readonly entry: CacheEntry<M> } | { readonly kind: 'miss' };

/** A response ready to send: status, header lines, body (null for HEAD and 304). */
export interface CachedAnswer {
  readonly status: number;
  readonly fields: FieldLine[];
  readonly body: Uint8Array | AsyncIterable<Uint8Array> | null;
  /** The body's length in octets (known once stored, whether the body is one piece or several); undefined without a body. */
  readonly bodyBytes?: number;
}

export interface CacheOptions {
  readonly name: 'inner' | 'outer';
  /** RFC 9111 shared cache (the inner) or a private one (the outer's per-user caches). */
  readonly shared: boolean;
  readonly limits: CacheLimits;
  readonly metrics?: SidecarMetrics;
  /** Never keep responses that set cookies (a shared cache must not hand one user's cookie to another). */
  readonly refuseSetCookie?: boolean;
}

/** Header fields a 304 may not change in the stored response (RFC 9111 §3.2: they describe the stored body). */
const KEEP_ON_UPDATE = new Set(['content-length', 'content-encoding', 'transfer-encoding', 'content-range', 'age']);
/** Fields a 304 carries from the stored response (RFC 9110 §15.4.5). */
const NOT_MODIFIED_FIELDS = new Set(['cache-control', 'content-location', 'date', 'etag', 'expires', 'vary', 'last-modified']);

/** Header lines to the record http-cache-semantics reads (lowercase names, repeats joined). */
export function headerRecord(fields: readonly FieldLine[], extra?: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = Object.create(null) as Record<string, string>;
  for (const [n, v] of fields) {
    const k = n.toLowerCase();
    const prev = out[k];
    out[k] = prev === undefined ? v : `${prev}${k === 'cookie' ? '; ' : ', '}${v}`;
  }
  if (extra) Object.assign(out, extra);
  return out;
}

function withoutAge(fields: readonly FieldLine[]): FieldLine[] {
  return fields.filter(([n]) => n !== 'age');
}

function fieldsBytes(fields: readonly FieldLine[]): number {
  let n = 0;
  for (const [k, v] of fields) n += k.length + v.length + 4;
  return n;
}

function varyNamesOf(fields: readonly FieldLine[]): string[] | '*' {
  const names: string[] = [];
  for (const [n, v] of fields) {
    if (n.toLowerCase() !== 'vary') continue;
    for (const t of v.split(',')) {
      const name = t.trim().toLowerCase();
      if (name === '*') return '*';
      if (name && !names.includes(name)) names.push(name);
    }
  }
  return names.sort();
}

/** A field named by Vary that is absent matches only its absence, never an empty value (RFC 9111 §4.1). */
function varySignature(names: readonly string[], req: CacheRequest): string {
  if (names.length === 0) return '';
  return names.map((n) => {
    const v = req.headers[n];
    return v === undefined ? `${n}\u0002` : `${n}\u0000${v}`;
  }).join('\u0001');
}

/** Fields that make a request more than a plain "give me a fresh copy" (RFC 9111 §5.2.1, §5.4). */
function plainRequest(req: CacheRequest): boolean {
  return req.headers['cache-control'] === undefined && req.headers['pragma'] === undefined;
}

/**
 * Until when a plain request (no Cache-Control, no Pragma, the same URL, Host and Vary fields
 * as `req`) is satisfied by `policy` without revalidation: the library is asked once, now,
 * and only staleness depends on time afterwards (maxAge() is fixed, age() grows with the
 * clock), so the answer holds until the remaining freshness runs out. 1 ms early, so float
 * rounding at the boundary is the library's to decide. -Infinity when it is not fresh now.
 */
function plainFreshUntil(policy: CachePolicy, req: CacheRequest): number {
  const headers: Record<string, string> = Object.create(null) as Record<string, string>;
  for (const k in req.headers) if (k !== 'cache-control' && k !== 'pragma') headers[k] = req.headers[k]!;
  const now = Date.now();
  if (policy.evaluateRequest({ method: 'GET', url: req.url, headers }).revalidation) return -Infinity;
  return now + (policy.maxAge() - policy.age()) * 1000 - 1;
}

/** Entity tags of an If-None-Match list, or '*' (RFC 9110 §13.1.2). */
function parseEtags(value: string): string[] | '*' {
  if (value.trim() === '*') return '*';
  return [...value.matchAll(/(?:W\/)?"[^"]*"/g)].map((m) => m[0]);
}

function weakEqual(a: string, b: string): boolean {
  return a.replace(/^W\//, '') === b.replace(/^W\//, '');
}

/**
 * Whether a conditional GET/HEAD is answered "not modified" by this stored response
 * (RFC 9110 §13.2.2: If-None-Match, weak comparison, takes precedence over If-Modified-Since).
 */
export function notModified(req: CacheRequest, fields: readonly FieldLine[]): boolean {
  const inm = req.headers['if-none-match'];
  if (inm !== undefined) {
    const tags = parseEtags(inm);
    if (tags === '*') return true;
    const etag = headerRecord(fields)['etag'];
    return etag !== undefined && tags.some((t) => weakEqual(t, etag.trim()));
  }
  const ims = req.headers['if-modified-since'];
  if (ims !== undefined) {
    const since = Date.parse(ims);
    const lm = Date.parse(headerRecord(fields)['last-modified'] ?? '');
    return Number.isFinite(since) && Number.isFinite(lm) && lm <= since;
  }
  return false;
}

/** Removes the conditional fields a client sent, for replaying a request to fill the cache. */
export function withoutConditionals(fields: readonly FieldLine[]): FieldLine[] {
  return fields.filter(([n]) => !/^if-(none-match|modified-since|match|unmodified-since|range)$/i.test(n));
}

async function* iterate(chunks: readonly Uint8Array[]): AsyncGenerator<Uint8Array> {
  for (const c of chunks) yield c;
}

/** A body on its way into the cache. `write` returns false once the body was given up. */
export interface CacheWriter {
  write(chunk: Uint8Array): boolean;
  /** The body ended normally: the entry becomes visible (unless something made it invalid meanwhile). */
  commit(): void;
  /** The body failed or was cut: nothing is kept. */
  abort(): void;
}

interface Pending {
  bytes: number;
}

export class HttpCache<M> {
  readonly name: 'inner' | 'outer';
  readonly limits: CacheLimits;
  readonly #shared: boolean;
  readonly #metrics: SidecarMetrics | undefined;
  readonly #refuseSetCookie: boolean;
  /** partition → key → variants. Nested rather than one joined key: a hit then builds and hashes no new string. */
  readonly #index = new Map<string, Map<string, CacheEntry<M>[]>>();
  /** Least recently used first (a Set keeps insertion order; a hit moves an entry to the end). */
  readonly #lru = new Set<CacheEntry<M>>();
  /** The entry at the end of #lru: a hit on it needs no move (moving re-hashes the Set's table every few hits; docs/PERFORMANCE.md "The in-flight set"). */
  #newest: CacheEntry<M> | undefined;
  readonly #byPartition = new Map<string, Set<CacheEntry<M>>>();
  readonly #pending = new Set<Pending>();
  #bytes = 0;
  #reserved = 0;

  constructor(opts: CacheOptions) {
    this.name = opts.name;
    this.limits = { maxBytes: opts.limits.maxBytes, maxObjectBytes: Math.min(opts.limits.maxObjectBytes, opts.limits.maxBytes) };
    this.#shared = opts.shared;
    this.#metrics = opts.metrics;
    this.#refuseSetCookie = opts.refuseSetCookie ?? false;
    this.#gauge();
  }

  get enabled(): boolean {
    return this.limits.maxBytes > 0;
  }

  get bytes(): number {
    return this.#bytes;
  }

  get size(): number {
    return this.#lru.size;
  }

  #policy(req: CacheRequest, status: number, headers: Record<string, string>): CachePolicy {
    return new CachePolicy(req, { status, headers }, { shared: this.#shared });
  }

  /** Finds the stored response for `req` (GET and HEAD share GET's entries, RFC 9110 §9.3.2). */
  lookup(partition: string, key: string, req: CacheRequest): CacheLookup<M> {
    if (!this.enabled || (req.method !== 'GET' && req.method !== 'HEAD')) return { kind: 'miss' };
    const variants = this.#index.get(partition)?.get(key);
    const asGet: CacheRequest = req.method === 'GET' ? req : { ...req, method: 'GET' };
    if (variants) {
      const plain = plainRequest(asGet);
      for (const e of variants) {
        if (varySignature(e.varyNames, asGet) !== e.varySig) continue;
        if (plain && Date.now() < e.freshUntil && asGet.url === e.url && asGet.headers.host === e.host) {
          this.#touch(e);
          return { kind: 'fresh', entry: e };
        }
        const { revalidation } = e.policy.evaluateRequest(asGet);
        this.#touch(e);
        if (!revalidation) return { kind: 'fresh', entry: e };
        if (this.#validators(e)) return { kind: 'stale', entry: e };
        // Stale and nothing to revalidate with: useless from now on.
        this.#remove(e, 'expired');
        break;
      }
    }
    return { kind: 'miss' };
  }

  #validators(e: CacheEntry<M>): boolean {
    return e.fields.some(([n]) => n === 'etag' || n === 'last-modified');
  }

  /** Headers for a conditional request that revalidates `entry` for `fields` (the client's own conditionals kept). */
  revalidationFields(entry: CacheEntry<M>, req: CacheRequest, fields: readonly FieldLine[]): FieldLine[] {
    const asGet: CacheRequest = req.method === 'GET' ? req : { ...req, method: 'GET' };
    const h = entry.policy.revalidationHeaders(asGet);
    const out = fields.filter(([n]) => n !== 'if-none-match' && n !== 'if-modified-since' && n !== 'if-range');
    for (const name of ['if-none-match', 'if-modified-since']) {
      const v = h[name];
      if (typeof v === 'string' && v) out.push([name, v]);
    }
    return out;
  }

  /** A stored response as an answer to `req`: 304 for a matching conditional, no body for HEAD, Age set. */
  answer(entry: CacheEntry<M>, req: CacheRequest): CachedAnswer {
    const age: FieldLine = ['age', String(Math.max(0, Math.floor(entry.policy.age())))];
    if (notModified(req, entry.fields)) {
      return { status: 304, fields: [...entry.fields.filter(([n]) => NOT_MODIFIED_FIELDS.has(n)), age], body: null };
    }
    const fields = [...entry.served, age];
    if (req.method === 'HEAD') return { status: entry.status, fields, body: null };
    const body = entry.chunks.length === 0 ? new Uint8Array(0) : entry.chunks.length === 1 ? entry.chunks[0]! : iterate(entry.chunks);
    return { status: entry.status, fields, body, bodyBytes: entry.bodyBytes };
  }

  /**
   * Starts storing the response to `req`, or returns undefined when RFC 9111 (or this cache's
   * limits) say it may not be kept. Only GET responses are stored.
   */
  admit(partition: string, key: string, req: CacheRequest, status: number, fields: FieldLine[], meta: M): CacheWriter | undefined {
    if (!this.enabled || req.method !== 'GET') return undefined;
    const headers = headerRecord(fields);
    if (this.#refuseSetCookie && headers['set-cookie'] !== undefined) return undefined;
    const vary = varyNamesOf(fields);
    if (vary === '*') return undefined;
    const policy = this.#policy(req, status, headers);
    if (!policy.storable()) return undefined;
    const hasValidators = headers['etag'] !== undefined || headers['last-modified'] !== undefined;
    if (policy.timeToLive() <= 0 && !hasValidators) return undefined;
    const declared = Number(headers['content-length']);
    const headBytes = fieldsBytes(fields) + key.length + ENTRY_OVERHEAD;
    if (Number.isFinite(declared) && declared + headBytes > this.limits.maxObjectBytes) return undefined;

    const chunks: Uint8Array[] = [];
    const pending: Pending = { bytes: 0 };
    this.#pending.add(pending);
    let state: 'open' | 'done' = 'open';
    let bodyBytes = 0;
    const release = () => {
      this.#reserved -= pending.bytes;
      pending.bytes = 0;
      this.#pending.delete(pending);
    };
    const giveUp = (): false => {
      if (state === 'open') {
        state = 'done';
        release();
        chunks.length = 0;
      }
      return false;
    };
    if (!this.#reserve(pending, headBytes)) {
      giveUp();
      return undefined;
    }
    return {
      write: (chunk) => {
        if (state !== 'open') return false;
        if (chunk.byteLength === 0) return true;
        if (pending.bytes + chunk.byteLength > this.limits.maxObjectBytes) return giveUp();
        if (!this.#reserve(pending, chunk.byteLength)) return giveUp();
        // A view into a much larger buffer would pin all of it: keep a copy of just the view.
        chunks.push(chunk.buffer.byteLength > chunk.byteLength * 2 + 4096 ? Uint8Array.prototype.slice.call(chunk) : chunk);
        bodyBytes += chunk.byteLength;
        return true;
      },
      commit: () => {
        if (state !== 'open') return;
        state = 'done';
        if (Number.isFinite(declared) && declared !== bodyBytes) return release();
        const size = pending.bytes;
        release();
        const entry: CacheEntry<M> = {
          partition,
          key,
          policy,
          status,
          fields,
          served: withoutAge(fields),
          chunks,
          bodyBytes,
          size,
          varyNames: vary,
          varySig: varySignature(vary, req),
          url: req.url,
          host: req.headers['host'],
          freshUntil: plainFreshUntil(policy, req),
          meta,
        };
        this.#insert(entry);
      },
      abort: () => void giveUp(),
    };
  }

  /**
   * Merges a 304 answer to a conditional request (RFC 9111 §4.3.4). `fresh`: answer with the
   * stored response (refreshed with the 304's fields and `meta`, or, when the 304 names another
   * version though only this entry's validators were sent, as it was and no longer kept);
   * `passthrough`: the 304 is about a validator the client sent, not this entry's (pass it on).
   * Any other status is a new response: store it with `admit` instead.
   */
  revalidated(entry: CacheEntry<M>, req: CacheRequest, fields: readonly FieldLine[], meta: M): 'fresh' | 'passthrough' {
    const asGet: CacheRequest = req.method === 'GET' ? req : { ...req, method: 'GET' };
    const notModified = headerRecord(fields);
    // A 304 may carry no validator at all (RFC 9110 §15.4.5 only says SHOULD). When the
    // conditional was this cache's own (the client sent none), that 304 can only be about the
    // one stored response whose validators were sent; the library, which cannot know who asked,
    // would call it a mismatch and the client would get a 304 it never asked for.
    const ownConditional = req.headers['if-none-match'] === undefined && req.headers['if-modified-since'] === undefined;
    if (ownConditional && notModified['etag'] === undefined && notModified['last-modified'] === undefined) {
      for (const [n, v] of entry.fields) if (n === 'etag' || n === 'last-modified') notModified[n] = v;
    }
    const { policy, matches } = entry.policy.revalidatedPolicy(asGet, { status: 304, headers: notModified });
    if (!matches) {
      this.#metrics?.cacheRevalidations.inc({ cache: this.name, result: 'mismatch' });
      if (!ownConditional) return 'passthrough';
      // A 304 naming another version to a condition only about this entry: a server at odds with
      // itself. The client, which asked unconditionally, still gets a whole answer (the stored
      // one, as it is); the entry, which can no longer be validated, is not kept.
      this.#remove(entry, 'replaced');
      return 'fresh';
    }
    this.#metrics?.cacheRevalidations.inc({ cache: this.name, result: 'not-modified' });
    const updates = new Map<string, string[]>();
    for (const [n, v] of fields) {
      const k = n.toLowerCase();
      if (KEEP_ON_UPDATE.has(k)) continue;
      const list = updates.get(k);
      if (list) list.push(v);
      else updates.set(k, [v]);
    }
    // RFC 9111 §3.2: every field of the 304 replaces or joins the stored ones, but those that
    // describe the stored body's octets.
    const merged: FieldLine[] = entry.fields.filter(([n]) => !updates.has(n));
    for (const [n, vs] of updates) for (const v of vs) merged.push([n, v]);
    const grown = fieldsBytes(merged) - fieldsBytes(entry.fields);
    entry.policy = policy;
    entry.fields = merged;
    entry.served = withoutAge(merged);
    // The refreshed policy was made from this request: the library matches later ones against it.
    entry.url = asGet.url;
    entry.host = asGet.headers['host'];
    entry.freshUntil = plainFreshUntil(policy, asGet);
    entry.meta = meta;
    entry.size += grown;
    // An entry dropped meanwhile (eviction, revocation) can still answer this one request.
    if (this.#lru.has(entry)) {
      this.#bytes += grown;
      this.#touch(entry);
      this.#gauge();
      // A cookie set on the 304 goes to the user who asked, in this answer only: a cache that
      // keeps no cookies (admit) stops keeping the entry rather than hand it to the next one.
      if (this.#refuseSetCookie && updates.has('set-cookie')) this.#remove(entry, 'refused');
    }
    return 'fresh';
  }

  /** Counts a conditional request whose answer was a whole new response. */
  revalidationModified(): void {
    this.#metrics?.cacheRevalidations.inc({ cache: this.name, result: 'modified' });
  }

  /** Counts a revalidation that failed (the answer was an error, or never came). */
  revalidationFailed(): void {
    this.#metrics?.cacheRevalidations.inc({ cache: this.name, result: 'error' });
  }

  hit(): void {
    this.#metrics?.cacheHit(this.name);
  }

  miss(): void {
    this.#metrics?.cacheMisses.inc({ cache: this.name });
  }

  remove(entry: CacheEntry<M>, reason: string): void {
    this.#remove(entry, reason);
  }

  /** Drops a partition's entries (all, or those `which` selects); returns how many. */
  dropPartition(partition: string, reason: string, which?: (e: CacheEntry<M>) => boolean): number {
    const set = this.#byPartition.get(partition);
    if (!set) return 0;
    let n = 0;
    for (const e of [...set]) {
      if (which && !which(e)) continue;
      this.#remove(e, reason);
      n++;
    }
    return n;
  }

  clear(reason = 'cleared'): void {
    for (const e of [...this.#lru]) this.#remove(e, reason);
  }

  #reserve(p: Pending, n: number): boolean {
    while (this.#bytes + this.#reserved + n > this.limits.maxBytes) {
      const oldest = this.#lru.values().next();
      if (oldest.done) return false;
      this.#remove(oldest.value, 'size');
    }
    p.bytes += n;
    this.#reserved += n;
    return true;
  }

  #insert(entry: CacheEntry<M>): void {
    const variantsOf = () => this.#index.get(entry.partition)?.get(entry.key);
    let variants = variantsOf();
    if (variants) {
      for (const old of [...variants]) if (old.varySig === entry.varySig && old.varyNames.join(',') === entry.varyNames.join(',')) this.#remove(old, 'replaced');
      variants = variantsOf();
      if (variants && variants.length >= MAX_VARIANTS) this.#remove(variants[0]!, 'size');
    }
    // Room was reserved while the body arrived; entries inserted meanwhile may need to go.
    while (this.#bytes + this.#reserved + entry.size > this.limits.maxBytes) {
      const oldest = this.#lru.values().next();
      if (oldest.done) return;
      this.#remove(oldest.value, 'size');
    }
    let keys = this.#index.get(entry.partition);
    if (!keys) this.#index.set(entry.partition, (keys = new Map()));
    variants = keys.get(entry.key);
    if (variants) variants.push(entry);
    else keys.set(entry.key, [entry]);
    this.#lru.add(entry);
    this.#newest = entry;
    let set = this.#byPartition.get(entry.partition);
    if (!set) this.#byPartition.set(entry.partition, (set = new Set()));
    set.add(entry);
    this.#bytes += entry.size;
    this.#gauge();
  }

  #remove(entry: CacheEntry<M>, reason: string): void {
    if (!this.#lru.delete(entry)) return;
    if (this.#newest === entry) this.#newest = undefined;
    const keys = this.#index.get(entry.partition);
    const variants = keys?.get(entry.key);
    if (keys && variants) {
      const i = variants.indexOf(entry);
      if (i >= 0) variants.splice(i, 1);
      if (variants.length === 0) keys.delete(entry.key);
      if (keys.size === 0) this.#index.delete(entry.partition);
    }
    const set = this.#byPartition.get(entry.partition);
    if (set) {
      set.delete(entry);
      if (set.size === 0) this.#byPartition.delete(entry.partition);
    }
    this.#bytes -= entry.size;
    this.#metrics?.cacheEvictions.inc({ cache: this.name, reason });
    this.#gauge();
  }

  #touch(entry: CacheEntry<M>): void {
    if (entry === this.#newest) return;
    if (this.#lru.delete(entry)) {
      this.#lru.add(entry);
      this.#newest = entry;
    }
  }

  #gauge(): void {
    this.#metrics?.cacheBytes.set({ cache: this.name }, this.#bytes);
    this.#metrics?.cacheEntries.set({ cache: this.name }, this.#lru.size);
  }
}

/** Passes `body` through unchanged while a copy of each chunk's reference goes into `writer`. */
export async function* teeInto(body: AsyncIterable<Uint8Array>, writer: CacheWriter): AsyncGenerator<Uint8Array> {
  let done = false;
  try {
    for await (const chunk of body) {
      writer.write(chunk);
      yield chunk;
    }
    done = true;
    writer.commit();
  } finally {
    if (!done) writer.abort();
  }
}

/** `64MiB`, `512KiB`, `1GiB`, `1000000`, `0`: a size in bytes; undefined when invalid. */
export function parseByteSize(value: string): number | undefined {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(B|KiB|MiB|GiB|KB|MB|GB|K|M|G)?\s*$/i.exec(value);
  if (!m) return undefined;
  const units: Record<string, number> = { b: 1, kib: 1024, k: 1024, mib: 1024 ** 2, m: 1024 ** 2, gib: 1024 ** 3, g: 1024 ** 3, kb: 1000, mb: 1000 ** 2, gb: 1000 ** 3 };
  const n = Math.floor(Number(m[1]) * units[(m[2] ?? 'b').toLowerCase()]!);
  return Number.isSafeInteger(n) ? n : undefined;
}

/**
 * End-to-end field the inner adds to every sealed answer (inside the encryption, never seen
 * on the network): the user's ACL epoch. The outer removes it before answering the client.
 */
export const ACL_EPOCH_HEADER = 'sws-acl-epoch';

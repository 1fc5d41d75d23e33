/**
 * The outer's private caches of decrypted responses, one partition per user (claim 4,
 * patent 0066–0068): a hit is answered without contacting the inner or the WWW server.
 *
 * Revocation (docs/CACHING.md): an entry is served without asking the inner only while
 * (1) it is fresh by RFC 9111 for a private cache, (2) it was confirmed by the inner less than
 * `recheckMs` ago, and (3) the user's ACL epoch the inner last reported is the one the entry
 * was stored under. Every sealed answer carries the user's epoch; a different one drops that
 * user's entries from that inner. Past the recheck time a conditional request goes through
 * the tunnel, where the inner checks the ACL before it answers 304 or anything else.
 * A refusal saying the inner no longer accepts the user (key or certificate revoked) drops
 * that user's entries from that inner at once (`refused`).
 */
import type { FieldLine, RequestHead, ResponseHead } from '../core/bhttp.ts';
import { ErrorCodes } from '../core/errors.ts';
import type { BodySource } from '../core/messages.ts';
import { ACL_EPOCH_HEADER, HttpCache, headerRecord, teeInto, type CacheEntry, type CachedAnswer, type CacheLimits, type CacheRequest } from '../sidecar-shared/cache.ts';
import type { SidecarMetrics } from '../sidecar-shared/metrics.ts';
import { MAX_REMEMBERED_URL, type ProxyTarget } from './target.ts';

export interface OuterCacheConfig extends CacheLimits {
  /** Longest time a cached answer is served without the inner confirming the user's access. */
  readonly recheckMs: number;
}

export const DEFAULT_RECHECK_MS = 30_000;
/** Store keys remembered per inner before that memo starts over. */
const MAX_REMEMBERED_KEYS = 4096;

interface OuterMeta {
  readonly inner: string;
  readonly epoch: number;
  /** When the inner last answered for this entry (and so checked the ACL). */
  readonly checkedAt: number;
}

export type OuterAnswer = { readonly head: ResponseHead; readonly body: BodySource };
/** An answer body from the inner: streamed, or whole and already authenticated (a small answer read at once). */
export type OpenedBody = AsyncIterable<Uint8Array> | Uint8Array;

export type OuterPlan =
  | { readonly kind: 'hit'; readonly answer: CachedAnswer }
  | {
      readonly kind: 'forward';
      /** What to seal and send (the client's request, or a conditional one that revalidates). */
      readonly head: RequestHead;
      /** Given the inner's opened answer (streamed, or whole and authenticated), what the client gets. Always removes the epoch field. */
      complete(head: ResponseHead, body: OpenedBody): OuterAnswer;
    };

export class OuterCache {
  readonly store: HttpCache<OuterMeta>;
  readonly #recheckMs: number;
  /** user → inner → the epoch the inner reported last (nested: a hit joins no strings to look it up). */
  readonly #epochs = new Map<string, Map<string, number>>();
  readonly #now: () => number;
  /** inner → URL → the store key `inner \n URL`, made once: a hit then hashes no new string. */
  readonly #keys = new Map<string, Map<string, string>>();

  constructor(config: OuterCacheConfig, metrics: SidecarMetrics, now: () => number = Date.now) {
    this.store = new HttpCache<OuterMeta>({ name: 'outer', shared: false, limits: config, metrics, refuseSetCookie: true });
    this.#recheckMs = config.recheckMs;
    this.#now = now;
  }

  plan(user: string, inner: string, target: ProxyTarget, head: RequestHead, bodyless: boolean): OuterPlan {
    if (!this.store.enabled || !bodyless || (head.method !== 'GET' && head.method !== 'HEAD')) {
      return { kind: 'forward', head, complete: (h, body) => ({ head: this.#observe(user, inner, h).head, body }) };
    }
    const key = this.#key(inner, target.url);
    const req: CacheRequest = { method: head.method, url: target.url, headers: headerRecord(head.headers, { host: target.host }) };
    const found = this.store.lookup(user, key, req);
    if (found.kind === 'fresh' && this.#trusted(user, found.entry)) {
      this.store.hit();
      return { kind: 'hit', answer: this.store.answer(found.entry, req) };
    }
    if (found.kind === 'miss') {
      this.store.miss();
      return { kind: 'forward', head, complete: (h, body) => this.#keep(user, inner, key, req, h, body) };
    }
    const entry = found.entry;
    const validators = entry.fields.some(([n]) => n === 'etag' || n === 'last-modified');
    const fields = validators ? this.store.revalidationFields(entry, req, head.headers) : head.headers;
    return { kind: 'forward', head: { ...head, headers: fields }, complete: (h, body) => this.#afterRevalidation(user, inner, entry, key, req, h, body) };
  }

  #key(inner: string, url: string): string {
    let byUrl = this.#keys.get(inner);
    if (!byUrl) this.#keys.set(inner, (byUrl = new Map()));
    let key = byUrl.get(url);
    if (key === undefined) {
      key = `${inner}\n${url}`;
      if (url.length > MAX_REMEMBERED_URL) return key;
      if (byUrl.size >= MAX_REMEMBERED_KEYS) byUrl.clear();
      byUrl.set(url, key);
    }
    return key;
  }

  #trusted(user: string, e: CacheEntry<OuterMeta>): boolean {
    return this.#now() - e.meta.checkedAt < this.#recheckMs && this.#epochs.get(user)?.get(e.meta.inner) === e.meta.epoch;
  }

  /** Reads and removes the epoch field; a changed epoch drops the user's entries from that inner. */
  #observe(user: string, inner: string, head: ResponseHead): { head: ResponseHead; epoch: number | undefined } {
    let raw: string | undefined;
    const headers: FieldLine[] = [];
    for (const f of head.headers) {
      if (f[0] === ACL_EPOCH_HEADER) raw ??= f[1];
      else headers.push(f);
    }
    const epoch = raw !== undefined && /^\d{1,15}$/.test(raw) ? Number(raw) : undefined;
    if (epoch !== undefined) {
      let byInner = this.#epochs.get(user);
      if (!byInner) this.#epochs.set(user, (byInner = new Map()));
      const known = byInner.get(inner);
      if (known !== epoch) {
        if (known !== undefined) this.store.dropPartition(user, 'acl', (e) => e.meta.inner === inner && e.meta.epoch !== epoch);
        byInner.set(inner, epoch);
      }
    }
    return { head: { ...head, headers }, epoch };
  }

  #keep(user: string, inner: string, key: string, req: CacheRequest, h: ResponseHead, body: OpenedBody): OuterAnswer {
    const { head, epoch } = this.#observe(user, inner, h);
    // Without an epoch a revocation could not reach this entry: do not keep it.
    if (epoch === undefined || head.status === 304) return { head, body };
    const writer = this.store.admit(user, key, req, head.status, head.headers, { inner, epoch, checkedAt: this.#now() });
    if (!writer) return { head, body };
    if (body instanceof Uint8Array) {
      // Whole and authenticated already: stored at once.
      writer.write(body);
      writer.commit();
      return { head, body };
    }
    return { head, body: teeInto(body, writer) };
  }

  #afterRevalidation(user: string, inner: string, entry: CacheEntry<OuterMeta>, key: string, req: CacheRequest, h: ResponseHead, body: OpenedBody): OuterAnswer {
    if (h.status === 304) {
      const { head, epoch } = this.#observe(user, inner, h);
      if (epoch !== undefined && this.store.revalidated(entry, req, head.headers, { inner, epoch, checkedAt: this.#now() }) === 'fresh') {
        if (!(body instanceof Uint8Array)) void drain(body);
        const a = this.store.answer(entry, req);
        return { head: { status: a.status, headers: a.fields }, body: a.body ?? emptyBody() };
      }
      return { head, body };
    }
    // Anything else replaces the stored answer (a 403 after a revocation removes it for good).
    if (h.status < 500) this.store.revalidationModified();
    else this.store.revalidationFailed();
    this.store.remove(entry, 'replaced');
    return this.#keep(user, inner, key, req, h, body);
  }

  /**
   * The inner refused an envelope or a key exchange for `user` with `code`. When the code
   * says the user is no longer accepted there (unknown user or key, certificate revoked,
   * expired, untrusted…), every entry of that user from that inner is dropped at once and
   * the user's epoch from it is forgotten, so no entry is served again without a fresh
   * answer from the inner. Portal sessions use these same per-user entries. Returns whether
   * anything was dropped. A refusal is not authenticated (it is sent in clear before any
   * key is agreed), so a forged one can only make the outer ask the inner again.
   */
  refused(user: string, inner: string, code: string | undefined): number {
    if (!userRefusal(code)) return 0;
    this.#epochs.get(user)?.delete(inner);
    return this.store.dropPartition(user, 'refused', (e) => e.meta.inner === inner);
  }

  /** The user was removed or changed at the outer: forget everything cached for them. */
  dropUser(user: string): void {
    this.store.dropPartition(user, 'user');
    this.#epochs.delete(user);
  }
}

/**
 * Refusal codes that mean the inner no longer accepts this user (as opposed to a lost
 * session, a replay or a transient failure): the unknown-user code of core/errors.ts and
 * every certificate verdict of store/certcheck.ts.
 */
export function userRefusal(code: string | undefined): boolean {
  return code === ErrorCodes.UNKNOWN_USER || code === ErrorCodes.SIGNATURE || (code !== undefined && code.startsWith('SWS_ERR_CERT_'));
}

async function drain(body: AsyncIterable<Uint8Array>): Promise<void> {
  try {
    for await (const _ of body) void _;
  } catch {
    // a 304 has no body; a broken one does not matter here
  }
}

async function* emptyBody(): AsyncGenerator<Uint8Array> {
  // no octets
}

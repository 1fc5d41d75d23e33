/**
 * The inner's shared cache of WWW responses (claim 4, patent 0066–0068), consulted only
 * after the ACL allowed the request, keyed on the CanonicalRequest (the one parse the ACL
 * and the forwarder use), and the ACL epochs the inner stamps on every sealed answer so
 * that the outer's private caches learn of revocations (docs/CACHING.md).
 *
 * Every request the inner forwards carries the user's identity (X-Forwarded-User), so the
 * shared cache treats it like a request with Authorization (RFC 9111 §3.5): a response is
 * stored only when the WWW server marked it `public`, `s-maxage` or `must-revalidate`, never
 * when it is `private`, and never when it sets a cookie.
 */
import type { ResponseHead } from '../core/bhttp.ts';
import type { BodySource } from '../core/messages.ts';
import type { AclEngine, AclRules } from '../store/index.ts';
import { ACL_EPOCH_HEADER, HttpCache, headerRecord, teeInto, type CacheEntry, type CacheLimits, type CacheRequest } from '../sidecar-shared/cache.ts';
import type { SidecarMetrics } from '../sidecar-shared/metrics.ts';
import type { CanonicalRequest } from './request.ts';

export type InnerAnswer = { readonly head: ResponseHead; readonly body: BodySource };

/** What #serve does after the ACL allowed a request. */
export type InnerPlan =
  | { readonly kind: 'hit'; readonly head: ResponseHead; readonly body: BodySource }
  | {
      readonly kind: 'forward';
      /** What to send upstream (the client's request, or a conditional one that revalidates). */
      readonly request: CanonicalRequest;
      /** Given the upstream answer, what to seal back (it may come from the cache after a 304). */
      complete(head: ResponseHead, body: BodySource): InnerAnswer;
    };

const passThrough = (head: ResponseHead, body: BodySource): InnerAnswer => ({ head, body });

export class InnerCache {
  readonly store: HttpCache<null>;
  readonly #identityHeader: string;

  constructor(limits: CacheLimits, metrics: SidecarMetrics, identityHeader: string) {
    this.store = new HttpCache<null>({ name: 'inner', shared: true, limits, metrics, refuseSetCookie: true });
    this.#identityHeader = identityHeader;
  }

  /** The request as the cache sees it: the identity counts as a credential (see the file header). */
  #request(c: CanonicalRequest, user: string): { key: string; req: CacheRequest } {
    const url = `${c.scheme}://${c.authority}${c.target.forwardPath}${c.target.query}`;
    const headers = headerRecord(c.headers, { host: c.authority, [this.#identityHeader]: user });
    if (headers['authorization'] === undefined) headers['authorization'] = `sws-user ${user}`;
    return { key: url, req: { method: c.method, url, headers } };
  }

  plan(c: CanonicalRequest, user: string): InnerPlan {
    if (!this.store.enabled || (c.method !== 'GET' && c.method !== 'HEAD')) return { kind: 'forward', request: c, complete: passThrough };
    const { key, req } = this.#request(c, user);
    const found = this.store.lookup('', key, req);
    if (found.kind === 'fresh') {
      this.store.hit();
      const a = this.store.answer(found.entry, req);
      return { kind: 'hit', head: { status: a.status, headers: a.fields }, body: a.body };
    }
    if (found.kind === 'stale') {
      const entry = found.entry;
      return {
        kind: 'forward',
        request: { ...c, headers: this.store.revalidationFields(entry, req, c.headers) },
        complete: (head, body) => this.#afterRevalidation(entry, key, req, head, body),
      };
    }
    this.store.miss();
    return { kind: 'forward', request: c, complete: (head, body) => this.#keep(key, req, head, body) };
  }

  #afterRevalidation(entry: CacheEntry<null>, key: string, req: CacheRequest, head: ResponseHead, body: BodySource): InnerAnswer {
    if (head.status === 304) {
      if (this.store.revalidated(entry, req, head.headers, null) === 'fresh') {
        const a = this.store.answer(entry, req);
        return { head: { status: a.status, headers: a.fields }, body: a.body };
      }
      return { head, body };
    }
    if (head.status < 500) this.store.revalidationModified();
    else this.store.revalidationFailed();
    return this.#keep(key, req, head, body);
  }

  /** Stores a GET answer as it streams through, when RFC 9111 allows. */
  #keep(key: string, req: CacheRequest, head: ResponseHead, body: BodySource): InnerAnswer {
    const writer = this.store.admit('', key, req, head.status, head.headers, null);
    if (!writer) return { head, body };
    if (body === null) {
      writer.commit();
      return { head, body };
    }
    if (body instanceof Uint8Array) {
      writer.write(body);
      writer.commit();
      return { head, body };
    }
    return { head, body: teeInto(body, writer) };
  }
}

/**
 * Per-user ACL epochs: the ACL generation at which each user's rules last changed (the
 * generation is persistent and only grows, so an epoch never goes back, across restarts too).
 * A user whose change is older than the change log, or older than this process, gets the
 * generation this process started with.
 */
export class AclEpochs {
  readonly #rules: AclRules;
  #generation: number;
  #floor: number;
  readonly #users = new Map<string, number>();
  readonly #stop: () => void;

  constructor(rules: AclRules, engine: AclEngine) {
    this.#rules = rules;
    this.#generation = rules.generation();
    this.#floor = this.#generation;
    // The engine calls this when it dropped compiled rules: the same moment decisions change.
    this.#stop = engine.onChange(() => this.refresh());
  }

  refresh(): void {
    let ch: { generation: number; users: string[] | undefined };
    try {
      ch = this.#rules.changesSince(this.#generation);
    } catch {
      return;
    }
    if (ch.generation === this.#generation) return;
    if (ch.users === undefined || ch.generation < this.#generation || this.#users.size > 100_000) {
      this.#users.clear();
      this.#floor = ch.generation;
    } else {
      for (const u of ch.users) this.#users.set(u, ch.generation);
    }
    this.#generation = ch.generation;
  }

  of(user: string): number {
    return Math.max(this.#floor, this.#users.get(user) ?? 0);
  }

  /** `head` with this user's epoch, replacing any such field the WWW server sent. */
  stamp(user: string, head: ResponseHead): ResponseHead {
    return { ...head, headers: [...head.headers.filter(([n]) => n !== ACL_EPOCH_HEADER), [ACL_EPOCH_HEADER, String(this.of(user))]] };
  }

  close(): void {
    this.#stop();
  }
}

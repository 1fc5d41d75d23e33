/**
 * Claim 5 (patent 0069) in forward-proxy mode: when a client address that was used by one
 * user authenticates as another, the browser there may still hold the first user's pages in
 * its cache. The next response to each origin then carries `Clear-Site-Data: "cache"` once
 * (W3C Clear Site Data; browsers honour it for secure origins, docs/CACHING.md).
 */
import type { OuterAnswer } from './cache.ts';

export const CLEAR_CACHE = '"cache"';
export const CLEAR_ALL = '"cache", "cookies", "storage"';

/** Addresses remembered; the least recently seen is forgotten first. */
const MAX_ADDRESSES = 10_000;
/** Origins remembered per address since its last change of user. */
const MAX_ORIGINS = 1_000;

interface AddressState {
  user: string;
  /** Origins still owed a Clear-Site-Data since the user changed (undefined: nothing owed). */
  cleared: Set<string> | undefined;
}

export class UserSwitchTracker {
  readonly #byAddress = new Map<string, AddressState>();
  /** The address seen last, already the most recent in #byAddress (its state is `#lastState`). */
  #last: string | undefined;
  #lastState: AddressState | undefined;

  /** Records that `address` authenticated as `user`. */
  seen(address: string, user: string): void {
    // The same address as the last request, same user: nothing changes, not even the LRU order.
    if (address === this.#last && this.#lastState!.user === user) return;
    let s = this.#byAddress.get(address);
    if (s) {
      this.#byAddress.delete(address);
      if (s.user !== user) s = { user, cleared: new Set() };
    } else {
      if (this.#byAddress.size >= MAX_ADDRESSES) this.#byAddress.delete(this.#byAddress.keys().next().value!);
      s = { user, cleared: undefined };
    }
    this.#byAddress.set(address, s);
    this.#last = address;
    this.#lastState = s;
  }

  /**
   * What the answer to a request from `address` for `origin` becomes: with Clear-Site-Data when
   * `take` says so at the time the answer is ready (a request that fails owes it still).
   */
  decorator(address: string, origin: string): (a: OuterAnswer) => OuterAnswer {
    // Returned unnamed: a named closure costs a defineProperty per request under keepNames (tsx, the build).
    return (a) => (this.take(address, origin) ? { head: { ...a.head, headers: [...a.head.headers, ['clear-site-data', CLEAR_CACHE]] }, body: a.body } : a);
  }

  /** Whether this response to `origin` for `address` must carry Clear-Site-Data (true once per origin). */
  take(address: string, origin: string): boolean {
    const s = this.#byAddress.get(address);
    if (!s?.cleared || s.cleared.has(origin)) return false;
    if (s.cleared.size >= MAX_ORIGINS) s.cleared.clear();
    s.cleared.add(origin);
    return true;
  }
}

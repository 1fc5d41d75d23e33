/**
 * The inner's key ring (core/exchange.ts InnerKeyRing) over the rotating keys of
 * store/innerkeys.ts: the current key and every retiring key still inside its overlap
 * period are imported (once, as non-extractable CryptoKeys) and answer exchanges that name
 * them. When an overlap ends (its time passes, or `sws inner key retire`), the key stops
 * answering at once and the sessions made with it are ended through `onRetired`.
 *
 * `refresh` is called on every store change: the key states are read synchronously (so a
 * retirement takes effect before the next exchange), new keys are imported in the
 * background and become usable when their import finishes.
 */
import { toHex } from '../core/bytes.ts';
import { fingerprint, importPrivateKey, type PrivateKeyHandle } from '../core/crypto.ts';
import type { InnerKeyRing } from '../core/exchange.ts';
import type { Store } from '../store/index.ts';
import { innerKeys, type InnerKeyRecord } from '../store/innerkeys.ts';

interface Held {
  readonly record: InnerKeyRecord;
  readonly handle: PrivateKeyHandle;
}

export interface KeyRingEvents {
  /** The set of usable keys changed (after imports finished): key IDs, current first. */
  onLoaded?(keyIds: readonly string[], currentKeyId: string): void;
  /** These keys stopped being usable: end the sessions made with them. */
  onRetired?(keyIds: ReadonlySet<string>): void;
}

export class RotatingKeyRing implements InnerKeyRing {
  readonly #store: Store;
  readonly #now: () => number;
  readonly #held = new Map<string, Held>();
  readonly #importing = new Map<string, Promise<void>>();
  #current = '';
  #events: KeyRingEvents = {};
  #timer: NodeJS.Timeout | undefined;
  #closed = false;

  private constructor(store: Store, now: () => number) {
    this.#store = store;
    this.#now = now;
  }

  /** Loads and imports every usable key; resolves when the ring can answer exchanges. */
  static async load(store: Store, opts: { now?: () => number } = {}): Promise<RotatingKeyRing> {
    const ring = new RotatingKeyRing(store, opts.now ?? Date.now);
    await ring.#sync();
    return ring;
  }

  watch(events: KeyRingEvents): void {
    this.#events = events;
  }

  get(keyIdHex: string): PrivateKeyHandle | undefined {
    const h = this.#held.get(keyIdHex);
    if (!h) return undefined;
    if (h.record.state === 'retiring' && !(this.#now() < (h.record.retireAt ?? 0))) {
      this.#retire(new Set([keyIdHex]));
      return undefined;
    }
    return h.handle;
  }

  /** Whether sessions made with `keyIdHex` may go on. */
  accepts(keyIdHex: string): boolean {
    return this.get(keyIdHex) !== undefined;
  }

  get currentKeyId(): string {
    return this.#current;
  }

  get currentFingerprint(): string {
    const h = this.#held.get(this.#current);
    return h ? fingerprint(h.handle.keyId) : '';
  }

  /** Re-reads the key states after a store change. */
  refresh(): void {
    void this.#sync().catch(() => undefined);
  }

  close(): void {
    this.#closed = true;
    if (this.#timer) clearTimeout(this.#timer);
  }

  async #sync(): Promise<void> {
    if (this.#closed) return;
    const usable = innerKeys(this.#store).usable(this.#now());
    const live = new Set(usable.map((r) => r.keyId));
    const gone = new Set([...this.#held.keys()].filter((k) => !live.has(k)));
    if (gone.size) this.#retire(gone);
    const pending: Promise<void>[] = [];
    for (const r of usable) {
      const held = this.#held.get(r.keyId);
      if (held) {
        if (held.record.state !== r.state || held.record.retireAt !== r.retireAt) this.#held.set(r.keyId, { record: r, handle: held.handle });
        continue;
      }
      let p = this.#importing.get(r.keyId);
      if (!p) {
        p = this.#import(r).finally(() => this.#importing.delete(r.keyId));
        this.#importing.set(r.keyId, p);
      }
      pending.push(p);
    }
    const current = usable.find((r) => r.state === 'current');
    await Promise.all(pending);
    if (this.#closed) return;
    // The current key changes only once it can answer, so a rotation never opens a gap.
    if (current && this.#held.has(current.keyId)) this.#current = current.keyId;
    this.#schedule();
    if (pending.length || gone.size) this.#events.onLoaded?.([this.#current, ...[...this.#held.keys()].filter((k) => k !== this.#current)], this.#current);
  }

  async #import(r: InnerKeyRecord): Promise<void> {
    const pkcs8 = await innerKeys(this.#store).privateKeyPkcs8(r.keyId);
    try {
      const handle = await importPrivateKey(pkcs8);
      if (toHex(handle.keyId) !== r.keyId) throw new Error(`the stored inner key ${r.keyId} does not match its private half`);
      this.#held.set(r.keyId, { record: r, handle });
    } finally {
      pkcs8.fill(0);
    }
  }

  #retire(ids: Set<string>): void {
    for (const id of ids) this.#held.delete(id);
    this.#events.onRetired?.(ids);
  }

  /** Wakes up when the next overlap ends, so its sessions end on time even with no traffic. */
  #schedule(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    let next = Infinity;
    for (const h of this.#held.values()) if (h.record.state === 'retiring' && h.record.retireAt !== undefined) next = Math.min(next, h.record.retireAt);
    if (next === Infinity) return;
    const delay = Math.min(Math.max(0, next - this.#now()) + 5, 2 ** 31 - 1);
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      void this.#sync().catch(() => undefined);
    }, delay);
    this.#timer.unref();
  }
}

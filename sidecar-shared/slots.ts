/**
 * A set of the requests in flight, kept in array slots instead of a Set.
 *
 * Why not a Set: V8 rehashes a Set's table as entries come and go, and the obsolete table keeps
 * its entries and a link to the new one. A long-lived Set is in the old generation, so its
 * obsolete tables are too, and young collections treat whatever old objects point to as live:
 * each dead table kept the requests that were in flight when it was replaced, and the next
 * table, alive until the next full collection. Every request's objects were promoted, and the
 * inner ran a full collection about once a second under steady small requests
 * (docs/PERFORMANCE.md "The in-flight set"). A slot is overwritten with `undefined` when its
 * request ends, so nothing dead points at a young request; the array only grows to the peak
 * number in flight.
 */
export class Slots<T extends object> {
  readonly #items: (T | undefined)[] = [];
  readonly #free: number[] = [];
  #size = 0;

  get size(): number {
    return this.#size;
  }

  /** Holds `item` until `delete` is called with the returned slot. */
  add(item: T): number {
    const slot = this.#free.length > 0 ? this.#free.pop()! : this.#items.length;
    this.#items[slot] = item;
    this.#size++;
    return slot;
  }

  /** Lets go of the item in `slot`; a slot already free is left alone. */
  delete(slot: number): void {
    if (this.#items[slot] === undefined) return;
    this.#items[slot] = undefined;
    this.#free.push(slot);
    this.#size--;
  }

  /** The items held now; an item added or deleted while iterating may or may not be visited. */
  *[Symbol.iterator](): IterableIterator<T> {
    const items = this.#items;
    for (let i = 0; i < items.length; i++) {
      const item = items[i];
      if (item !== undefined) yield item;
    }
  }
}

/**
 * Young-generation collections paced by the record octets a sidecar seals and opens.
 *
 * Why: a body streaming through a sidecar allocates about three off-heap buffers per record
 * (the socket read, the cipher's output, the copy in front of the length field) and almost no
 * JavaScript objects. V8 frees dead buffers at a young collection, but starts one only when
 * the young generation fills with objects (rarely, here) or tens of MiB of buffers pile up;
 * meanwhile those buffers count against the old generation's limit, and a sidecar holding
 * ~15 MiB live crossed it every ~100 ms with a full mark-compact (~15 ms on the main thread,
 * ~70 ms on helper threads) that found little to free (16 → 14 MB). Asking for a
 * young collection every couple of MiB frees the buffers first: measured on 64 MiB transfers,
 * CPU per MiB fell by 37–45 % in each sidecar and peak RSS by 20–24 MiB
 * (docs/PERFORMANCE.md, "Young collections paced by octets").
 *
 * The collector is reached through V8's `gc` function, exposed in a separate context only (the
 * program's own global never gets one) and only once pacing is switched on.
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

type GcFunction = (options: { type: 'minor' }) => void;

const GC_IN_NEW_CONTEXT = 'typeof gc === "function" ? gc : undefined';

/**
 * V8's collector entry point, without exposing it on this program's global; undefined where this
 * V8 offers none. `--expose-gc` is switched on only if new contexts did not already get `gc`,
 * and then switched off again, so the flag ends as it began.
 */
function loadGc(): GcFunction | undefined {
  const existing = (globalThis as { gc?: unknown }).gc;
  if (typeof existing === 'function') return existing as GcFunction;
  try {
    const already: unknown = runInNewContext(GC_IN_NEW_CONTEXT);
    if (typeof already === 'function') return already as GcFunction;
    setFlagsFromString('--expose-gc');
    try {
      const gc: unknown = runInNewContext(GC_IN_NEW_CONTEXT);
      return typeof gc === 'function' ? (gc as GcFunction) : undefined;
    } finally {
      setFlagsFromString('--no-expose-gc');
    }
  } catch {
    return undefined;
  }
}

/** Counts octets and asks for a young collection each time `everyBytes` more have passed; 0: never. */
export class YoungGcPacer {
  #everyBytes = 0;
  #since = 0;
  #gc: GcFunction | undefined;
  #collections = 0;
  readonly #load: () => GcFunction | undefined;

  constructor(load: () => GcFunction | undefined = loadGc) {
    this.#load = load;
  }

  /**
   * Switches pacing on (or off with 0). Returns whether it is on: a V8 that cannot hand out its
   * collector leaves it off (the sidecar then runs as before, only slower on bulk transfers).
   */
  configure(everyBytes: number): boolean {
    if (!Number.isSafeInteger(everyBytes) || everyBytes < 0) throw new RangeError('young GC pacing must be a whole number of octets ≥ 0');
    if (everyBytes > 0) this.#gc ??= this.#load();
    this.#everyBytes = this.#gc === undefined ? 0 : everyBytes;
    this.#since = 0;
    return this.#everyBytes > 0;
  }

  /** Young collections requested so far. */
  get collections(): number {
    return this.#collections;
  }

  /** Counts `octets` of records; asks for a young collection once `everyBytes` more have passed. */
  note(octets: number): void {
    if (this.#everyBytes === 0) return;
    this.#since += octets;
    if (this.#since < this.#everyBytes) return;
    // The remainder carries over, so the count stays one per `everyBytes` whatever the record sizes.
    this.#since %= this.#everyBytes;
    try {
      this.#gc!({ type: 'minor' });
      this.#collections += 1;
    } catch (error) {
      // A collector that refuses the call must not fail a record: pacing stops, once, visibly.
      this.#everyBytes = 0;
      process.emitWarning(`young-collection pacing stopped: V8's collector refused the call (${(error as Error)?.message ?? String(error)})`, { code: 'SWS_YOUNG_GC_UNAVAILABLE' });
    }
  }
}

/** The process's pacer: node-aead notes every record it seals or opens; `sws inner|outer start` switches it on (bin/commands/run.ts). */
export const youngGc = new YoungGcPacer();

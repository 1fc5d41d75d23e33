/**
 * The inner's per-session anti-replay window for REQUEST sequence numbers: RFC 4303 §3.4.3
 * (ESP), protocol.md property 4, protocol-reference.md §6.
 *
 * The window covers the `size` sequence numbers ending at `highest`. A number right of it is
 * new; inside it, new unless its bit is set; left of it, too old. `check` is the cheap
 * pre-check on the clear header; `mark` is called only after the record authenticated, so
 * forged sequence numbers cannot move the window (RFC 4303: "the receive window is updated
 * only if the integrity verification succeeds").
 *
 * Memory is constant: a Uint32Array ring indexed by `seq mod size`, never shifted. Advancing
 * by d clears the d slots that leave the window, word by word: O(1) amortised in order,
 * O(size/32) at worst for a jump.
 */
import { ReplayError } from './errors.ts';
import { MAX_SEQUENCE } from './wire.ts';

/** ≥ 4× the outer's per-session concurrency (protocol-reference.md §6); ESP's 64 is sized for packets. */
export const DEFAULT_REPLAY_WINDOW = 1024;
export const MIN_REPLAY_WINDOW = 32;
export const MAX_REPLAY_WINDOW = 65536;

export type ReplayVerdict = 'ok' | 'replay' | 'too-old';

/** True for an integer from 1 to MAX_SEQUENCE; false for anything else, of any type. */
export function isValidSequence(seq: unknown): seq is number {
  return typeof seq === 'number' && Number.isInteger(seq) && seq >= 1 && seq <= MAX_SEQUENCE;
}

export class ReplayWindow {
  readonly #size: number;
  readonly #bits: Uint32Array;
  #highest = 0;

  /**
   * `size`: a multiple of 32 from 32 to 65536 (RangeError otherwise: a configuration mistake).
   * `bits`: where to keep the bitmap, size/32 zeroed words, e.g. inside an allocation the
   * caller shares with other per-session state (packSessionKeys); by default its own.
   */
  constructor(size: number = DEFAULT_REPLAY_WINDOW, bits?: Uint32Array) {
    if (!Number.isInteger(size) || size < MIN_REPLAY_WINDOW || size > MAX_REPLAY_WINDOW || size % 32 !== 0) {
      throw new RangeError(`the replay window size must be a multiple of 32 from ${MIN_REPLAY_WINDOW} to ${MAX_REPLAY_WINDOW}`);
    }
    if (bits && (bits.length !== size / 32 || bits.some((w) => w !== 0))) throw new RangeError('the replay window storage must be size/32 zeroed words');
    this.#size = size;
    this.#bits = bits ?? new Uint32Array(size / 32);
  }

  /** Highest sequence number marked so far (0 before the first). */
  get highest(): number {
    return this.#highest;
  }

  get size(): number {
    return this.#size;
  }

  /**
   * No state change, never throws. 'ok': not seen and inside or right of the window.
   * 'replay': marked before. 'too-old': left of the window, or not a valid sequence number
   * at all (0, negative, fractional, NaN, ±Infinity, > MAX_SEQUENCE, not a number), which
   * lies outside any window; either way the caller rejects it and sends nothing upstream.
   */
  check(seq: number): ReplayVerdict {
    if (!isValidSequence(seq)) return 'too-old';
    if (seq > this.#highest) return 'ok';
    if (seq <= this.#highest - this.#size) return 'too-old';
    const slot = seq % this.#size;
    return (this.#bits[slot >>> 5]! & (1 << (slot & 31))) !== 0 ? 'replay' : 'ok';
  }

  /**
   * Records `seq` as received. Call only after the record authenticated. Throws ReplayError
   * (SWS_ERR_REPLAY) for a number `check` would reject, so a caller that skipped or raced
   * the pre-check still cannot accept a replay.
   */
  mark(seq: number): void {
    const verdict = this.check(seq);
    if (verdict !== 'ok') {
      throw new ReplayError(
        verdict === 'replay'
          ? 'the request sequence number was already accepted on this session'
          : 'the request sequence number is left of the replay window or invalid',
      );
    }
    const size = this.#size;
    const bits = this.#bits;
    if (seq > this.#highest) {
      if (seq - this.#highest >= size) {
        bits.fill(0);
      } else {
        // Clear the slots of highest+1 .. seq: they held numbers now left of the window.
        for (let s = this.#highest + 1; s <= seq; ) {
          const slot = s % size;
          if ((slot & 31) === 0 && seq - s >= 31) {
            bits[slot >>> 5] = 0;
            s += 32;
          } else {
            bits[slot >>> 5]! &= ~(1 << (slot & 31));
            s++;
          }
        }
      }
      this.#highest = seq;
    }
    const slot = seq % size;
    bits[slot >>> 5]! |= 1 << (slot & 31);
  }
}

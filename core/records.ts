/**
 * The record layer (docs/PROTOCOL.md §5): a message body is a sequence of AES-256-GCM
 * records, each sealed separately, so bodies of any size stream in constant memory.
 *
 *   Record = Final-and-Length (32: bit 31 final, bits 0–30 ciphertext length) ‖ Ciphertext
 *   nonce  = iv_dir XOR (uint40 message sequence ‖ uint48 record index ‖ uint8 flags)   (flags bit 0 = final)
 *   AAD    = the message's 38-octet envelope header
 *
 * This is the STREAM construction (Hoang–Reyhanitabar–Rogaway–Vizár 2015) with TLS 1.3-style
 * nonce randomization (RFC 8446 §5.3) and an explicit last-record flag like RFC 8188 §2 and
 * chunked OHTTP: a dropped, duplicated or reordered record changes its index and fails its
 * tag; a stream cut at a record boundary lacks the final flag and is reported truncated.
 */
import { concatBytes, readU32, writeU32 } from './bytes.ts';
import { webCryptoAead, type AeadBackend, type AeadKey } from './aead.ts';
import { SUITE_V1 } from './crypto.ts';
import { AEAD_CEILINGS } from './limits.ts';
import { DecryptError, MalformedError, OversizeError, SessionLimitError, TruncatedError } from './errors.ts';
import type { ByteReader } from './bytereader.ts';
import type { EnvelopeHeader } from './wire.ts';

export const RECORD_DEFAULTS = {
  /**
   * Plaintext octets per record when sealing: 64 KiB of content (age and RFC 8188 practice;
   * measured 2–3× the throughput of 16 KiB) plus room for its BHTTP chunk framing, so a 64 KiB
   * body chunk is exactly one record rather than a full one and a tiny one.
   */
  plaintextSize: 65536 + 64,
  /** Largest record plaintext a receiver accepts unless configured otherwise. */
  maxPlaintext: 65536 + 64,
  /** No configuration may accept more than this. */
  hardMaxPlaintext: 1 << 20,
} as const;

const FINAL_BIT = 0x8000_0000;
const TAG = SUITE_V1.tagBytes;
const MAX_INDEX = 2 ** 48 - 1;

/** One direction of a session: its key, IV and usage counters (shared by all messages of that direction). */
export interface DirectionState {
  readonly aead: AeadBackend;
  readonly key: AeadKey;
  readonly iv: Uint8Array;
  records: number;
  bytes: number;
  failedOpens: number;
}

export function newDirectionState(key: AeadKey, iv: Uint8Array, aead: AeadBackend = webCryptoAead): DirectionState {
  if (iv.length !== SUITE_V1.nonceBytes) throw new RangeError('IV must be 12 octets');
  return { aead, key, iv, records: 0, bytes: 0, failedOpens: 0 };
}

/** nonce = iv XOR (uint40 sequence ‖ uint48 index ‖ uint8 flags). */
export function recordNonce(iv: Uint8Array, sequence: number, index: number, final: boolean): Uint8Array {
  const n = new Uint8Array(12);
  // sequence: 40 bits in octets 0–4
  const seqHi = Math.floor(sequence / 0x1_0000_0000);
  n[0] = seqHi & 0xff;
  writeU32(n, 1, sequence >>> 0);
  // index: 48 bits in octets 5–10
  const idxHi = Math.floor(index / 0x1_0000_0000);
  n[5] = (idxHi >>> 8) & 0xff;
  n[6] = idxHi & 0xff;
  writeU32(n, 7, index >>> 0);
  n[11] = final ? 1 : 0;
  for (let i = 0; i < 12; i++) n[i]! ^= iv[i]!;
  return n;
}

function chargeUsage(dir: DirectionState, plaintextBytes: number): void {
  if (dir.records >= AEAD_CEILINGS.records || dir.bytes + plaintextBytes > AEAD_CEILINGS.bytes) {
    throw new SessionLimitError('the session key reached its AEAD usage limit; exchange a new key');
  }
  dir.records += 1;
  dir.bytes += plaintextBytes;
}

/** Seals the records of one message. Not safe for concurrent seal() calls: order is the message order. */
export class RecordSealer {
  readonly #dir: DirectionState;
  readonly #header: EnvelopeHeader;
  readonly #recordSize: number;
  #index = 0;
  #finished = false;

  constructor(dir: DirectionState, header: EnvelopeHeader, recordSize: number = RECORD_DEFAULTS.plaintextSize) {
    if (!Number.isInteger(recordSize) || recordSize < 1 || recordSize > RECORD_DEFAULTS.hardMaxPlaintext) throw new RangeError('record size out of range');
    this.#dir = dir;
    this.#header = header;
    this.#recordSize = recordSize;
  }

  get recordsSealed(): number {
    return this.#index;
  }

  get finished(): boolean {
    return this.#finished;
  }

  /**
   * Seals `plaintext` as one or more records (split at the record size) and returns the wire
   * chunks in order. `final` marks the last record of the message.
   */
  seal(plaintext: Uint8Array, final: boolean): Promise<Uint8Array[]> {
    const pieces: Uint8Array[] = [];
    for (let off = 0; off < plaintext.length; off += this.#recordSize) pieces.push(plaintext.subarray(off, Math.min(plaintext.length, off + this.#recordSize)));
    return this.sealRecords(pieces, final);
  }

  /**
   * Seals each plaintext as one record, concurrently (WebCrypto runs them in parallel), and
   * returns the wire chunks in order; with `final` the last one is the message's final record.
   * Non-final records are never empty (an empty non-final list element is skipped). A
   * plaintext may be given as parts (for example a chunk prefix and the chunk itself): the
   * record seals their concatenation, and a backend with `sealParts` never joins them.
   */
  async sealRecords(plaintexts: readonly (Uint8Array | readonly Uint8Array[])[], final: boolean): Promise<Uint8Array[]> {
    if (this.#finished) throw new Error('message already finished');
    const list = plaintexts.map((p) => ({ parts: p, length: partsLength(p) })).filter((r, i) => r.length > 0 || (final && i === plaintexts.length - 1));
    if (final && list.length === 0) list.push({ parts: new Uint8Array(0), length: 0 });
    for (const r of list) if (r.length > this.#recordSize) throw new RangeError('record plaintext larger than the record size');
    if (final) this.#finished = true;
    const sealed = await Promise.all(list.map((r, i) => this.#sealOne(r.parts, r.length, final && i === list.length - 1)));
    const out: Uint8Array[] = [];
    for (let i = 0; i < sealed.length; i++) {
      const s = sealed[i]!;
      const lengthField = (s.bytes.length - (s.withHeadroom ? 4 : 0)) | (final && i === sealed.length - 1 ? FINAL_BIT : 0);
      if (s.withHeadroom) {
        // One buffer: the length field in the room the backend left, then ciphertext ‖ tag.
        writeU32(s.bytes, 0, lengthField >>> 0);
        out.push(s.bytes);
      } else {
        const prefix = new Uint8Array(4);
        writeU32(prefix, 0, lengthField >>> 0);
        out.push(prefix, s.bytes);
      }
    }
    return out;
  }

  async #sealOne(plaintext: Uint8Array | readonly Uint8Array[], length: number, final: boolean): Promise<{ bytes: Uint8Array; withHeadroom: boolean }> {
    if (this.#index > MAX_INDEX) throw new SessionLimitError('too many records in one message');
    chargeUsage(this.#dir, length);
    const nonce = recordNonce(this.#dir.iv, this.#header.sequence, this.#index++, final);
    const aead = this.#dir.aead;
    if (aead.sealParts) {
      const parts = plaintext instanceof Uint8Array ? [plaintext] : plaintext;
      return { bytes: await aead.sealParts(this.#dir.key, nonce, this.#header.bytes, parts, 4), withHeadroom: true };
    }
    const joined = plaintext instanceof Uint8Array ? plaintext : plaintext.length === 1 ? plaintext[0]! : concatBytes(...plaintext);
    return { bytes: await aead.seal(this.#dir.key, nonce, this.#header.bytes, joined), withHeadroom: false };
  }
}

function partsLength(p: Uint8Array | readonly Uint8Array[]): number {
  if (p instanceof Uint8Array) return p.length;
  let n = 0;
  for (const x of p) n += x.length;
  return n;
}

export interface OpenedRecord {
  /** The record's plaintext, in order; a record read off the network in two pieces may open as two. */
  readonly parts: readonly Uint8Array[];
  readonly final: boolean;
  readonly index: number;
}

/** A record's plaintext in one buffer (joined only when it opened in several parts). */
export function recordPlaintext(rec: OpenedRecord): Uint8Array {
  return rec.parts.length === 1 ? rec.parts[0]! : concatBytes(...rec.parts);
}

/**
 * Opens the records of one message from a shared reader, in order. Lengths are checked
 * before anything is allocated; a tag failure ends the message (nothing of that record is
 * released); end of input before the final record is TruncatedError.
 *
 * Reads run strictly one after another, but up to `depth` records are decrypted at once
 * (WebCrypto runs them in parallel): records are still returned in order, each only after its
 * own tag verified, and nothing past the final record is ever read.
 */
export class RecordOpener {
  readonly #dir: DirectionState;
  readonly #header: EnvelopeHeader;
  readonly #reader: ByteReader;
  readonly #maxCiphertext: number;
  readonly #depth: number;
  readonly #queue: Promise<OpenedRecord | null>[] = [];
  #readChain: Promise<unknown> = Promise.resolve();
  #nextIndex = 0;
  /** A final record (or a failure) was read: no read may go further. */
  #stopReading = false;
  #done = false;
  #multi = false;

  constructor(dir: DirectionState, header: EnvelopeHeader, reader: ByteReader, maxPlaintext: number = RECORD_DEFAULTS.maxPlaintext, depth = 8) {
    checkMaxPlaintext(maxPlaintext);
    this.#dir = dir;
    this.#header = header;
    this.#reader = reader;
    this.#maxCiphertext = maxPlaintext + TAG;
    this.#depth = Math.max(1, depth);
  }

  get done(): boolean {
    return this.#done;
  }

  /** The next record, or null once the final record has been returned. */
  async next(): Promise<OpenedRecord | null> {
    if (this.#done) return null;
    this.#schedule();
    let rec: OpenedRecord | null;
    try {
      rec = await this.#queue.shift()!;
    } catch (err) {
      this.#done = true;
      this.#stopReading = true;
      throw err;
    }
    if (rec === null || rec.final) this.#done = true;
    else {
      this.#multi = true;
      this.#schedule();
    }
    return rec;
  }

  #schedule(): void {
    // Most messages are one record: read ahead only once the message proved longer.
    const limit = this.#nextIndex > 1 || this.#multi ? this.#depth : 1;
    while (this.#queue.length < limit && !this.#stopReading) {
      const index = this.#nextIndex++;
      const raw = this.#readChain.then(() => this.#read(index));
      // The next read starts only after this one finished (and knows whether it was final).
      this.#readChain = raw.then(
        (r) => {
          if (r === null || r.final) this.#stopReading = true;
        },
        () => {
          this.#stopReading = true;
        },
      );
      const opened = raw.then((r) => (r === null ? null : this.#open(r.ciphertext, r.final, index)));
      // Records decrypted ahead may fail before anyone awaits them: that is reported in order, not as a crash.
      opened.catch(() => undefined);
      this.#queue.push(opened);
    }
  }

  async #read(index: number): Promise<{ ciphertext: Uint8Array[]; final: boolean } | null> {
    if (this.#stopReading) return null;
    if (index > MAX_INDEX) throw new SessionLimitError('too many records in one message');
    const prefix = await this.#reader.readExactOrEnd(4);
    if (prefix === null) throw new TruncatedError();
    const { final, length } = recordPrefix(readU32(prefix, 0), this.#maxCiphertext);
    return { ciphertext: await this.#reader.readParts(length), final };
  }

  #open(ciphertext: Uint8Array[], final: boolean, index: number): Promise<OpenedRecord> {
    return openRecord(this.#dir, this.#header, ciphertext, final, index);
  }
}

/** A receiver's largest accepted record plaintext must be a whole number within the hard limit (a configuration mistake otherwise). */
function checkMaxPlaintext(maxPlaintext: number): void {
  if (!Number.isInteger(maxPlaintext) || maxPlaintext < 1 || maxPlaintext > RECORD_DEFAULTS.hardMaxPlaintext) throw new RangeError('max record size out of range');
}

/** A record's Final-and-Length word, checked before anything is allocated or read. */
function recordPrefix(word: number, maxCiphertext: number): { final: boolean; length: number } {
  const final = (word & FINAL_BIT) !== 0;
  const length = word & ~FINAL_BIT;
  if (length < TAG) throw new MalformedError('record shorter than its authentication tag');
  if (length > maxCiphertext) throw new OversizeError(`record of ${length} octets exceeds the ${maxCiphertext}-octet limit`);
  if (!final && length === TAG) throw new MalformedError('non-final record with no content');
  return { final, length };
}

/** Opens one record, its sealed octets (ciphertext ‖ tag) whole or in the pieces they arrived in. */
async function openRecord(dir: DirectionState, header: EnvelopeHeader, sealed: Uint8Array | readonly Uint8Array[], final: boolean, index: number): Promise<OpenedRecord> {
  // Integrity limit: after this many forgery attempts the key is no longer trusted to open anything.
  if (dir.failedOpens >= AEAD_CEILINGS.failedOpens) throw new SessionLimitError('the session key reached its failed-authentication limit; exchange a new key');
  const nonce = recordNonce(dir.iv, header.sequence, index, final);
  const aead = dir.aead;
  const whole = sealed instanceof Uint8Array ? sealed : sealed.length === 1 ? sealed[0]! : aead.openParts ? undefined : concatBytes(...sealed);
  let parts: Uint8Array[];
  try {
    parts = whole ? [await aead.open(dir.key, nonce, header.bytes, whole)] : await aead.openParts!(dir.key, nonce, header.bytes, sealed as readonly Uint8Array[]);
  } catch (err) {
    dir.failedOpens += 1;
    throw err instanceof DecryptError ? err : new DecryptError(undefined, { cause: err });
  }
  let length = 0;
  for (const p of parts) length += p.length;
  chargeUsage(dir, length);
  return { parts, final, index };
}

/**
 * Opens the records of one message that is entirely in memory (`bytes` holds exactly its
 * records, a small envelope read whole): the same checks as RecordOpener, in order, without
 * a reader. `onRecord` sees each record right after its tag verified; nothing may follow the
 * final record, and the bytes may not end before it.
 */
export async function openRecordsAtHand(dir: DirectionState, header: EnvelopeHeader, bytes: Uint8Array, maxPlaintext: number, onRecord: (rec: OpenedRecord) => void): Promise<void> {
  checkMaxPlaintext(maxPlaintext);
  let off = 0;
  for (let index = 0; ; index++) {
    if (index > MAX_INDEX) throw new SessionLimitError('too many records in one message');
    if (bytes.length - off < 4) throw new TruncatedError();
    const { final, length } = recordPrefix(readU32(bytes, off), maxPlaintext + TAG);
    off += 4;
    if (bytes.length - off < length) throw new TruncatedError();
    onRecord(await openRecord(dir, header, bytes.subarray(off, off + length), final, index));
    off += length;
    if (final) {
      if (off !== bytes.length) throw new MalformedError('octets after the final record of the message');
      return;
    }
  }
}

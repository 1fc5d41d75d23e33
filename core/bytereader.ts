/**
 * Exact-length reads over an async stream of byte chunks of any split. A POST body is a
 * sequence of self-delimiting messages, so every parser reads from one shared reader.
 * Reads that fit inside the current chunk return views (no copy).
 */
import { TruncatedError } from './errors.ts';

export type ByteSource = AsyncIterable<Uint8Array> | Iterable<Uint8Array>;

export class ByteReader {
  #it: AsyncIterator<Uint8Array> | Iterator<Uint8Array>;
  #chunk: Uint8Array = new Uint8Array(0);
  #pos = 0;
  #eof = false;
  #consumed = 0;
  #recording: Uint8Array[] | null = null;

  constructor(source: ByteSource) {
    this.#it = Symbol.asyncIterator in source ? source[Symbol.asyncIterator]() : source[Symbol.iterator]();
  }

  /** Total octets handed out so far. */
  get consumed(): number {
    return this.#consumed;
  }

  async #fill(): Promise<boolean> {
    while (this.#pos >= this.#chunk.length) {
      if (this.#eof) return false;
      const r = await this.#it.next();
      if (r.done) {
        this.#eof = true;
        return false;
      }
      const v = r.value;
      if (!(v instanceof Uint8Array)) throw new TypeError('byte source yielded a non-Uint8Array chunk');
      this.#chunk = v;
      this.#pos = 0;
    }
    return true;
  }

  /** Starts keeping every octet read from now on (for transcript hashes of small messages). */
  startRecording(): void {
    this.#recording = [];
  }

  /** What was read since startRecording() (views; valid until the caller drops them). */
  recorded(): readonly Uint8Array[] {
    return this.#recording ?? [];
  }

  /** Stops recording and returns what was read since startRecording(). */
  stopRecording(): Uint8Array[] {
    const r = this.#recording ?? [];
    this.#recording = null;
    return r;
  }

  /** True when no octet is left. */
  async atEnd(): Promise<boolean> {
    return !(await this.#fill());
  }

  /** Reads exactly n octets, or returns null if the stream ends cleanly before the first one. */
  async readExactOrEnd(n: number): Promise<Uint8Array | null> {
    if (!(await this.#fill())) return n === 0 ? new Uint8Array(0) : null;
    return this.readExact(n);
  }

  /** Reads exactly n octets; ending early is a TruncatedError. */
  async readExact(n: number): Promise<Uint8Array> {
    if (n === 0) return new Uint8Array(0);
    if (!(await this.#fill())) throw new TruncatedError();
    const avail = this.#chunk.length - this.#pos;
    if (avail >= n) {
      const view = this.#chunk.subarray(this.#pos, this.#pos + n);
      this.#pos += n;
      this.#consumed += n;
      this.#recording?.push(view);
      return view;
    }
    const out = new Uint8Array(n);
    let off = 0;
    while (off < n) {
      if (!(await this.#fill())) throw new TruncatedError();
      const take = Math.min(n - off, this.#chunk.length - this.#pos);
      out.set(this.#chunk.subarray(this.#pos, this.#pos + take), off);
      this.#pos += take;
      off += take;
    }
    this.#consumed += n;
    this.#recording?.push(out);
    return out;
  }

  /**
   * Reads exactly n octets as views of the source's own chunks, in order, without joining them
   * (a record that straddles two socket reads costs no copy); ending early is a TruncatedError.
   */
  async readParts(n: number): Promise<Uint8Array[]> {
    if (n === 0) return [];
    const parts: Uint8Array[] = [];
    let left = n;
    while (left > 0) {
      if (!(await this.#fill())) throw new TruncatedError();
      const take = Math.min(left, this.#chunk.length - this.#pos);
      const view = this.#chunk.subarray(this.#pos, this.#pos + take);
      parts.push(view);
      this.#recording?.push(view);
      this.#pos += take;
      left -= take;
    }
    this.#consumed += n;
    return parts;
  }

  /** Stops reading the source (e.g. after a fatal error), letting it release resources. */
  async cancel(): Promise<void> {
    this.#eof = true;
    try {
      await this.#it.return?.();
    } catch {
      // The source is being abandoned; its own errors no longer matter.
    }
  }
}

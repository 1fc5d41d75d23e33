/**
 * Binary HTTP (RFC 9292): the user's request and response as carried inside the sealed
 * records. Streaming first: heads are encoded with indeterminate-length framing (§3.2) so a
 * body of unknown size can follow, and the push decoder hands body octets out as views of
 * the caller's buffers as they arrive, so a body of any size passes through in O(1) memory.
 *
 * Policy, stricter than RFC 9292 where the RFC leaves room and sws gains nothing from it
 * (encoding refuses exactly what decoding rejects):
 * - Field names must be lowercase tokens. §3.6 defers to RFC 9110 §5.1 (tokens, any case)
 *   for names and to RFC 9113 §8.2.1 for validity; HTTP/2 forbids uppercase names. The
 *   sidecars filter hop-by-hop and identity fields by lowercase name, so a name they could
 *   miss is rejected rather than folded.
 * - Every pseudo-field (name starting with ':') is rejected, not just the five §3.6 names:
 *   sws uses no extension that defines one.
 * - Field values follow RFC 9110 §5.5 (no CTL other than HTAB, no leading or trailing
 *   SP/HTAB), which covers RFC 9113 §8.2.1's NUL/CR/LF rule.
 * - Strings are ByteStrings (one char per octet, U+0000..U+00FF), as in Node's http and the
 *   Fetch standard, so obs-text octets pass through unchanged instead of being re-encoded.
 * - Status 101 is rejected: this format cannot switch protocols (§6, RFC 9113 §8.6).
 * - The request target must be origin-form (or '*' for OPTIONS) without '#'; the scheme must
 *   be "http" or "https"; the authority may be empty (§3.4) but never carries userinfo.
 * - Truncation (§3.8) is refused unless the caller opts in: sws senders always write every
 *   terminator (docs/PROTOCOL.md §3.4), and a decoder cannot tell an omitted empty body from
 *   a body cut right after the head, so accepting it would let a cut message pass as whole.
 *   With `acceptTruncated` the decoder follows §3.8 exactly (missing parts read as empty).
 */
import { concatBytes } from './bytes.ts';
import { BhttpError, OversizeError } from './errors.ts';

export type FieldLine = readonly [name: string, value: string];

export interface RequestHead {
  method: string;
  scheme: string;
  authority: string;
  path: string;
  headers: FieldLine[];
}

export interface InformationalResponse {
  status: number;
  headers: FieldLine[];
}

export interface ResponseHead {
  status: number;
  headers: FieldLine[];
  informational?: InformationalResponse[];
}

export interface BhttpLimits {
  /** Octets of names plus values in one field section (the four control-data strings count as one section). */
  maxFieldSectionBytes: number;
  /** Field lines in one field section. */
  maxFieldLines: number;
}

export interface BhttpDecodeOptions {
  /**
   * Read a message that ends early at a point RFC 9292 §3.8 allows (after the control data,
   * the header section or the content) as if the missing parts were empty. Off by default:
   * sws messages always carry every terminator.
   */
  acceptTruncated?: boolean;
}

export const DEFAULT_BHTTP_LIMITS: BhttpLimits = Object.freeze({ maxFieldSectionBytes: 65536, maxFieldLines: 512 });

/** Interim responses kept per message: each costs memory, and a response needs only a few (100, 102, 103). */
const MAX_INFORMATIONAL = 32;

/** §3.3 framing indicators. */
const Framing = { knownRequest: 0, knownResponse: 1, indeterminateRequest: 2, indeterminateResponse: 3 } as const;

/** Lengths are JS numbers; anything at or past 2^53 cannot be counted exactly and is refused. */
const MAX_SAFE_LENGTH = 2 ** 53;

// ---------------------------------------------------------------------------------------
// Octet classes (RFC 9110 §5.1, §5.5, §5.6.2)

const TCHAR = new Uint8Array(256);
for (const c of "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ") TCHAR[c.charCodeAt(0)] = 1;
/** RFC 3986 reg-name / IP-literal / port octets: no userinfo '@', no '/', '?', '#', no whitespace. */
const AUTHORITY_CHAR = new Uint8Array(256);
for (const c of "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~%!$&'()*+,;=:[]") AUTHORITY_CHAR[c.charCodeAt(0)] = 1;

function isToken(b: Uint8Array): boolean {
  if (b.length === 0) return false;
  for (let i = 0; i < b.length; i++) if (TCHAR[b[i]!] !== 1) return false;
  return true;
}

function checkFieldName(b: Uint8Array): void {
  if (b.length === 0) throw new BhttpError('a field name is empty (RFC 9292 §3.6)');
  if (b[0] === 0x3a) throw new BhttpError('pseudo-fields are not accepted in a field section (RFC 9292 §3.6)');
  for (let i = 0; i < b.length; i++) {
    const c = b[i]!;
    if (TCHAR[c] !== 1 || (c >= 0x41 && c <= 0x5a)) throw new BhttpError('a field name is not a lowercase token (RFC 9110 §5.1, RFC 9113 §8.2.1)');
  }
}

function checkFieldValue(b: Uint8Array): void {
  const n = b.length;
  if (n === 0) return;
  const first = b[0]!;
  const last = b[n - 1]!;
  if (first === 0x20 || first === 0x09 || last === 0x20 || last === 0x09) throw new BhttpError('a field value starts or ends with whitespace (RFC 9110 §5.5)');
  for (let i = 0; i < n; i++) {
    const c = b[i]!;
    if ((c < 0x20 && c !== 0x09) || c === 0x7f) throw new BhttpError('a field value contains a control character (RFC 9110 §5.5)');
  }
}

function checkMethod(b: Uint8Array): void {
  if (!isToken(b)) throw new BhttpError('the request method is not a token (RFC 9110 §9.1)');
}

function checkScheme(b: Uint8Array): void {
  const ok =
    (b.length === 4 || (b.length === 5 && b[4] === 0x73)) && b[0] === 0x68 && b[1] === 0x74 && b[2] === 0x74 && b[3] === 0x70;
  if (!ok) throw new BhttpError('the request scheme is not "http" or "https"');
}

function checkAuthority(b: Uint8Array): void {
  for (let i = 0; i < b.length; i++) {
    if (AUTHORITY_CHAR[b[i]!] !== 1) throw new BhttpError('the request authority has userinfo, whitespace or a character outside RFC 3986');
  }
}

function isOptions(method: Uint8Array): boolean {
  return method.length === 7 && latin1Decode(method) === 'OPTIONS';
}

function checkPath(b: Uint8Array, method: Uint8Array): void {
  if (b.length === 1 && b[0] === 0x2a) {
    if (isOptions(method)) return;
    throw new BhttpError('the asterisk request target is only valid for OPTIONS (RFC 9110 §7.1)');
  }
  if (b.length === 0 || b[0] !== 0x2f) throw new BhttpError('the request path does not start with "/" (RFC 9113 §8.3.1)');
  for (let i = 0; i < b.length; i++) {
    const c = b[i]!;
    // '#' never belongs in a request target; letting one through invites two parsers to split the path differently.
    if (c <= 0x20 || c === 0x7f || c === 0x23) throw new BhttpError('the request path contains whitespace, a control character or "#"');
  }
}

function isInformational(status: number): boolean {
  return status >= 100 && status <= 199 && status !== 101;
}

function isFinal(status: number): boolean {
  return status >= 200 && status <= 599;
}

// ---------------------------------------------------------------------------------------
// ByteStrings and QUIC variable-length integers (RFC 9000 §16)

/** Octets as U+0000..U+00FF. `apply` takes the typed array as its argument list: no iterator, ~5× faster than spread for field-sized strings. */
function latin1Decode(b: Uint8Array): string {
  if (b.length <= 8192) return String.fromCharCode.apply(null, b as unknown as number[]);
  let s = '';
  for (let i = 0; i < b.length; i += 8192) s += String.fromCharCode.apply(null, b.subarray(i, Math.min(b.length, i + 8192)) as unknown as number[]);
  return s;
}

function latin1Encode(s: string, what: string): Uint8Array {
  if (typeof s !== 'string') throw new BhttpError(`${what} is not a string`);
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c > 0xff) throw new BhttpError(`${what} has a character outside U+0000..U+00FF (HTTP fields are octets)`);
    out[i] = c;
  }
  return out;
}

function varintSize(v: number): number {
  return v < 0x40 ? 1 : v < 0x4000 ? 2 : v < 0x4000_0000 ? 4 : 8;
}

function writeVarint(buf: Uint8Array, off: number, v: number): number {
  if (v < 0x40) {
    buf[off] = v;
    return off + 1;
  }
  if (v < 0x4000) {
    buf[off] = 0x40 | (v >>> 8);
    buf[off + 1] = v & 0xff;
    return off + 2;
  }
  if (v < 0x4000_0000) {
    buf[off] = 0x80 | (v >>> 24);
    buf[off + 1] = (v >>> 16) & 0xff;
    buf[off + 2] = (v >>> 8) & 0xff;
    buf[off + 3] = v & 0xff;
    return off + 4;
  }
  const hi = Math.floor(v / 0x1_0000_0000);
  const lo = v >>> 0;
  buf[off] = 0xc0 | (hi >>> 24);
  buf[off + 1] = (hi >>> 16) & 0xff;
  buf[off + 2] = (hi >>> 8) & 0xff;
  buf[off + 3] = hi & 0xff;
  buf[off + 4] = lo >>> 24;
  buf[off + 5] = (lo >>> 16) & 0xff;
  buf[off + 6] = (lo >>> 8) & 0xff;
  buf[off + 7] = lo & 0xff;
  return off + 8;
}

/** Reads a varint of `len` octets at `off`; values ≥ 2^53 come back as Infinity so every range check refuses them. */
function readVarintAt(b: Uint8Array, off: number, len: number): number {
  let v = b[off]! & 0x3f;
  if (len === 8 && v >= 0x20) return Number.POSITIVE_INFINITY;
  for (let i = 1; i < len; i++) v = v * 256 + b[off + i]!;
  return v;
}

function checkLength(n: number, what: string): void {
  if (!Number.isSafeInteger(n) || n < 0) throw new TypeError(`${what} must be a non-negative safe integer`);
}

// ---------------------------------------------------------------------------------------
// Encoding

class Writer {
  #buf = new Uint8Array(256);
  #len = 0;

  #room(n: number): void {
    if (this.#len + n <= this.#buf.length) return;
    let size = this.#buf.length * 2;
    while (size < this.#len + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.#buf.subarray(0, this.#len));
    this.#buf = next;
  }

  varint(v: number): this {
    this.#room(8);
    this.#len = writeVarint(this.#buf, this.#len, v);
    return this;
  }

  bytes(b: Uint8Array): this {
    this.#room(b.length);
    this.#buf.set(b, this.#len);
    this.#len += b.length;
    return this;
  }

  prefixed(b: Uint8Array): this {
    return this.varint(b.length).bytes(b);
  }

  get length(): number {
    return this.#len;
  }

  result(): Uint8Array {
    return this.#buf.slice(0, this.#len);
  }
}

function fieldLines(w: Writer, fields: readonly FieldLine[] | undefined, what: string): void {
  if (fields === undefined) return;
  if (!Array.isArray(fields)) throw new BhttpError(`${what} is not a list of field lines`);
  for (const line of fields) {
    if (!Array.isArray(line) || line.length !== 2) throw new BhttpError(`${what} has an entry that is not a [name, value] pair`);
    const name = latin1Encode(line[0], 'a field name');
    const value = latin1Encode(line[1], 'a field value');
    checkFieldName(name);
    checkFieldValue(value);
    w.prefixed(name).prefixed(value);
  }
}

function knownSection(w: Writer, fields: readonly FieldLine[] | undefined, what: string): void {
  const section = new Writer();
  fieldLines(section, fields, what);
  w.varint(section.length).bytes(section.result());
}

function indeterminateSection(w: Writer, fields: readonly FieldLine[] | undefined, what: string): void {
  fieldLines(w, fields, what);
  w.varint(0);
}

function requestControl(w: Writer, head: RequestHead): void {
  if (head === null || typeof head !== 'object') throw new BhttpError('the request head is not an object');
  const method = latin1Encode(head.method, 'the method');
  const scheme = latin1Encode(head.scheme, 'the scheme');
  const authority = latin1Encode(head.authority, 'the authority');
  const path = latin1Encode(head.path, 'the path');
  checkMethod(method);
  checkScheme(scheme);
  checkAuthority(authority);
  checkPath(path, method);
  w.prefixed(method).prefixed(scheme).prefixed(authority).prefixed(path);
}

function checkResponseHead(head: ResponseHead): readonly InformationalResponse[] {
  if (head === null || typeof head !== 'object') throw new BhttpError('the response head is not an object');
  const info = head.informational ?? [];
  if (!Array.isArray(info)) throw new BhttpError('the informational responses are not a list');
  for (const r of info) {
    if (!Number.isInteger(r.status) || !isInformational(r.status)) throw new BhttpError('an informational status is not 100..199 (101 excluded) (RFC 9292 §3.5.1)');
  }
  if (!Number.isInteger(head.status) || !isFinal(head.status)) throw new BhttpError('the final status is not 200..599 (RFC 9292 §3.5)');
  return info;
}

/** Framing indicator 2, request control data and the header section, terminated (RFC 9292 §3.2, §3.4). */
export function encodeRequestHead(head: RequestHead): Uint8Array {
  const w = new Writer().varint(Framing.indeterminateRequest);
  requestControl(w, head);
  indeterminateSection(w, head.headers, 'the header section');
  return w.result();
}

/** Framing indicator 3, informational responses, final status and the header section, terminated (RFC 9292 §3.2, §3.5). */
export function encodeResponseHead(head: ResponseHead): Uint8Array {
  const w = new Writer().varint(Framing.indeterminateResponse);
  for (const r of checkResponseHead(head)) {
    w.varint(r.status);
    indeterminateSection(w, r.headers, 'an informational header section');
  }
  w.varint(head.status);
  indeterminateSection(w, head.headers, 'the header section');
  return w.result();
}

/** The Chunk Length of one content chunk (RFC 9292 §3.2), so a caller can send a large body without copying it. */
export function encodeContentChunkPrefix(length: number): Uint8Array {
  checkLength(length, 'a chunk length');
  // A zero Chunk Length is the Content Terminator: it would end the body early.
  if (length === 0) throw new TypeError('a content chunk must not be empty (a zero length ends the content)');
  const out = new Uint8Array(varintSize(length));
  writeVarint(out, 0, length);
  return out;
}

/** One indeterminate-length content chunk: Chunk Length ‖ Chunk (RFC 9292 §3.2). */
export function encodeContentChunk(data: Uint8Array): Uint8Array {
  if (!(data instanceof Uint8Array)) throw new TypeError('a content chunk must be a Uint8Array');
  const prefix = encodeContentChunkPrefix(data.length);
  const out = new Uint8Array(prefix.length + data.length);
  out.set(prefix, 0);
  out.set(data, prefix.length);
  return out;
}

/** Content Terminator, then the trailer section, terminated (RFC 9292 §3.2). */
export function encodeEnd(trailers?: FieldLine[]): Uint8Array {
  const w = new Writer().varint(0);
  indeterminateSection(w, trailers, 'the trailer section');
  return w.result();
}

/** A whole request in known-length framing (RFC 9292 §3.1), without truncation or padding. */
export function encodeKnownLengthRequest(head: RequestHead, content: Uint8Array, trailers?: FieldLine[]): Uint8Array {
  const w = new Writer().varint(Framing.knownRequest);
  requestControl(w, head);
  knownSection(w, head.headers, 'the header section');
  w.prefixed(content);
  knownSection(w, trailers, 'the trailer section');
  return w.result();
}

/** A whole response in known-length framing (RFC 9292 §3.1, §3.5.1), without truncation or padding. */
export function encodeKnownLengthResponse(head: ResponseHead, content: Uint8Array, trailers?: FieldLine[]): Uint8Array {
  const w = new Writer().varint(Framing.knownResponse);
  for (const r of checkResponseHead(head)) {
    w.varint(r.status);
    knownSection(w, r.headers, 'an informational header section');
  }
  w.varint(head.status);
  knownSection(w, head.headers, 'the header section');
  w.prefixed(content);
  knownSection(w, trailers, 'the trailer section');
  return w.result();
}

// ---------------------------------------------------------------------------------------
// Decoding

export type BhttpEvent<H> =
  | { kind: 'head'; head: H }
  | { kind: 'content'; data: Uint8Array }
  | { kind: 'trailers'; fields: FieldLine[] }
  | { kind: 'end' };

/** Parser states; each names what the next octets are. */
const S = {
  framing: 0,
  controlLength: 1,
  controlBytes: 2,
  status: 3,
  sectionLength: 4,
  nameLength: 5,
  name: 6,
  valueLength: 7,
  value: 8,
  contentLength: 9,
  content: 10,
  chunkLength: 11,
  chunk: 12,
  padding: 13,
} as const;
type State = (typeof S)[keyof typeof S];

type SectionKind = 'informational' | 'header' | 'trailer';

const NEED_MORE = -1;
const EMPTY = new Uint8Array(0);

function resolveLimits(limits: Partial<BhttpLimits> | undefined): BhttpLimits {
  const out: BhttpLimits = {
    maxFieldSectionBytes: limits?.maxFieldSectionBytes ?? DEFAULT_BHTTP_LIMITS.maxFieldSectionBytes,
    maxFieldLines: limits?.maxFieldLines ?? DEFAULT_BHTTP_LIMITS.maxFieldLines,
  };
  for (const k of ['maxFieldSectionBytes', 'maxFieldLines'] as const) {
    const v = out[k];
    if (!Number.isSafeInteger(v) || v < 1) throw new RangeError(`${k} must be a positive integer`);
  }
  return out;
}

/**
 * Push decoder for one message. Octets may arrive split anywhere; head parts are buffered
 * only up to the limits, checked when their length arrives and before any of them is kept.
 * Content is never buffered: each push yields views of its own input.
 */
export class BhttpDecoder<H extends RequestHead | ResponseHead> {
  readonly #isRequest: boolean;
  readonly #limits: BhttpLimits;
  /** Longest known-length field section that can satisfy both limits, allowing 8-octet varints. */
  readonly #maxSectionLength: number;
  readonly #acceptTruncated: boolean;

  #state: State = S.framing;
  #known = false;
  #done = false;
  #finished = false;
  #failed = false;

  // Input of the current push() and the absolute offset of its first octet.
  #in: Uint8Array = EMPTY;
  #pos = 0;
  #base = 0;

  // A varint or a string cut by a push() boundary.
  readonly #varBuf = new Uint8Array(8);
  #varNeed = 0;
  #varHave = 0;
  #strBuf: Uint8Array | null = null;
  #strHave = 0;

  // Control data.
  #control: Uint8Array[] = [];
  #controlBytes = 0;
  #status = 0;
  #informational: InformationalResponse[] = [];

  // The field section being read.
  #section: SectionKind = 'header';
  #sectionEnd = 0;
  #lines: FieldLine[] = [];
  #sectionBytes = 0;
  #pendingName = '';
  #want = 0;
  #headers: FieldLine[] = [];

  // Content.
  #remaining = 0;
  #chunks = 0;

  constructor(kind: 'request' | 'response', limits?: Partial<BhttpLimits>, options?: BhttpDecodeOptions) {
    this.#isRequest = kind === 'request';
    this.#acceptTruncated = options?.acceptTruncated === true;
    this.#limits = resolveLimits(limits);
    this.#maxSectionLength = this.#limits.maxFieldSectionBytes + 16 * this.#limits.maxFieldLines;
  }

  /** True once the whole message (through its trailers) was read; only zero padding may follow. */
  get done(): boolean {
    return this.#done;
  }

  /** Feeds the next octets; returns the events they complete. Content events are views of `bytes`. */
  push(bytes: Uint8Array): BhttpEvent<H>[] {
    if (this.#failed) throw new BhttpError('the message was already rejected');
    if (this.#finished) throw new BhttpError('octets arrived after the end of the input');
    const out: BhttpEvent<H>[] = [];
    this.#in = bytes;
    this.#pos = 0;
    try {
      while (this.#step(out));
    } catch (err) {
      this.#failed = true;
      throw err;
    } finally {
      this.#base += bytes.length;
      this.#in = EMPTY;
      this.#pos = 0;
    }
    return out;
  }

  /**
   * The input ended. Throws unless the message is complete; with `acceptTruncated`, returns
   * the events for the parts RFC 9292 §3.8 lets an encoder leave out, read as empty.
   */
  finish(): BhttpEvent<H>[] {
    if (this.#failed) throw new BhttpError('the message was already rejected');
    if (this.#finished) return [];
    this.#finished = true;
    const out: BhttpEvent<H>[] = [];
    if (this.#done) return out;
    const betweenItems = this.#varNeed === 0 && this.#strBuf === null;
    const sectionUntouched = this.#known ? this.#state === S.sectionLength : this.#state === S.nameLength && this.#lines.length === 0;
    let ok = false;
    if (this.#acceptTruncated && betweenItems) {
      if (this.#section === 'header' && sectionUntouched) {
        // Cut after the control data: headers, content and trailers were all empty.
        this.#headers = [];
        this.#emitHead(out);
        ok = true;
      } else if (this.#state === S.contentLength || (this.#state === S.chunkLength && this.#chunks === 0)) {
        ok = true; // cut after the header section: content and trailers were empty
      } else if (this.#section === 'trailer' && sectionUntouched) {
        ok = true; // cut after the content: trailers were empty
      }
    }
    if (!ok) {
      this.#failed = true;
      throw new BhttpError('the message is truncated (RFC 9292 §3.8)');
    }
    out.push({ kind: 'trailers', fields: [] }, { kind: 'end' });
    this.#done = true;
    this.#state = S.padding;
    return out;
  }

  get #abs(): number {
    return this.#base + this.#pos;
  }

  /** The next varint, or NEED_MORE once every octet of this push is held. */
  #varint(): number {
    const inp = this.#in;
    if (this.#varNeed === 0) {
      if (this.#pos >= inp.length) return NEED_MORE;
      const len = 1 << (inp[this.#pos]! >> 6);
      if (this.#pos + len <= inp.length) {
        const v = len === 1 ? inp[this.#pos]! : readVarintAt(inp, this.#pos, len);
        this.#pos += len;
        return v;
      }
      this.#varNeed = len;
      this.#varHave = 0;
    }
    while (this.#varHave < this.#varNeed && this.#pos < inp.length) this.#varBuf[this.#varHave++] = inp[this.#pos++]!;
    if (this.#varHave < this.#varNeed) return NEED_MORE;
    const v = readVarintAt(this.#varBuf, 0, this.#varNeed);
    this.#varNeed = 0;
    return v;
  }

  /** The next n octets (n already checked against the limits), or null once this push is held. */
  #string(n: number): Uint8Array | null {
    const inp = this.#in;
    if (this.#strBuf === null) {
      if (inp.length - this.#pos >= n) {
        const view = inp.subarray(this.#pos, this.#pos + n);
        this.#pos += n;
        return view;
      }
      this.#strBuf = new Uint8Array(n);
      this.#strHave = 0;
    }
    const take = Math.min(n - this.#strHave, inp.length - this.#pos);
    this.#strBuf.set(inp.subarray(this.#pos, this.#pos + take), this.#strHave);
    this.#strHave += take;
    this.#pos += take;
    if (this.#strHave < n) return null;
    const full = this.#strBuf;
    this.#strBuf = null;
    return full;
  }

  #startSection(kind: SectionKind): void {
    this.#section = kind;
    this.#lines = [];
    this.#sectionBytes = 0;
    this.#state = this.#known ? S.sectionLength : S.nameLength;
  }

  #endSection(out: BhttpEvent<H>[]): void {
    const lines = this.#lines;
    this.#lines = [];
    if (this.#section === 'informational') {
      this.#informational.push({ status: this.#status, headers: lines });
      this.#state = S.status;
    } else if (this.#section === 'header') {
      this.#headers = lines;
      this.#emitHead(out);
      this.#state = this.#known ? S.contentLength : S.chunkLength;
    } else {
      out.push({ kind: 'trailers', fields: lines }, { kind: 'end' });
      this.#done = true;
      this.#state = S.padding;
    }
  }

  #emitHead(out: BhttpEvent<H>[]): void {
    let head: RequestHead | ResponseHead;
    if (this.#isRequest) {
      const [method, scheme, authority, path] = this.#control.map(latin1Decode) as [string, string, string, string];
      head = { method, scheme, authority, path, headers: this.#headers };
    } else {
      head = { status: this.#status, headers: this.#headers };
      if (this.#informational.length > 0) head.informational = this.#informational;
    }
    this.#control = [];
    out.push({ kind: 'head', head: head as H });
  }

  /** In known-length framing, a field line must not run past its section's declared end. */
  #inSection(extra: number): void {
    if (this.#known && this.#abs + extra > this.#sectionEnd) throw new BhttpError('a field line runs past the end of its section (RFC 9292 §3.1)');
  }

  /** Advances by one item; false when this push has nothing more to give. */
  #step(out: BhttpEvent<H>[]): boolean {
    switch (this.#state) {
      case S.framing: {
        const f = this.#varint();
        if (f === NEED_MORE) return false;
        if (this.#isRequest ? f !== Framing.knownRequest && f !== Framing.indeterminateRequest : f !== Framing.knownResponse && f !== Framing.indeterminateResponse) {
          throw new BhttpError(`the framing indicator is not one of a ${this.#isRequest ? 'request' : 'response'} (RFC 9292 §3.3)`);
        }
        this.#known = f <= 1;
        this.#state = this.#isRequest ? S.controlLength : S.status;
        return true;
      }
      case S.controlLength: {
        const n = this.#varint();
        if (n === NEED_MORE) return false;
        if (this.#controlBytes + n > this.#limits.maxFieldSectionBytes) throw new OversizeError('the request control data exceeds the field section limit');
        this.#controlBytes += n;
        this.#want = n;
        this.#state = S.controlBytes;
        return true;
      }
      case S.controlBytes: {
        const b = this.#string(this.#want);
        if (b === null) return false;
        const c = this.#control;
        if (c.length === 0) checkMethod(b);
        else if (c.length === 1) checkScheme(b);
        else if (c.length === 2) checkAuthority(b);
        else checkPath(b, c[0]!);
        // A view would pin the caller's buffer and could change under us: keep a copy (small, bounded).
        c.push(b.slice());
        if (c.length === 4) this.#startSection('header');
        else this.#state = S.controlLength;
        return true;
      }
      case S.status: {
        const s = this.#varint();
        if (s === NEED_MORE) return false;
        if (isInformational(s)) {
          if (this.#informational.length >= MAX_INFORMATIONAL) throw new OversizeError('the response has too many informational responses');
          this.#status = s;
          this.#startSection('informational');
        } else if (isFinal(s)) {
          this.#status = s;
          this.#startSection('header');
        } else {
          throw new BhttpError('the status code is not 100..599, or is 101 (RFC 9292 §3.5)');
        }
        return true;
      }
      case S.sectionLength: {
        const n = this.#varint();
        if (n === NEED_MORE) return false;
        if (n > this.#maxSectionLength) throw new OversizeError('a field section is longer than the limits allow');
        this.#sectionEnd = this.#abs + n;
        this.#state = S.nameLength;
        return true;
      }
      case S.nameLength: {
        if (this.#known && this.#varNeed === 0 && this.#abs === this.#sectionEnd) {
          this.#endSection(out);
          return true;
        }
        const n = this.#varint();
        if (n === NEED_MORE) return false;
        if (n === 0) {
          if (this.#known) throw new BhttpError('a field name is empty (RFC 9292 §3.6)');
          this.#endSection(out);
          return true;
        }
        if (this.#lines.length >= this.#limits.maxFieldLines) throw new OversizeError('a field section has more lines than the limit');
        if (this.#sectionBytes + n > this.#limits.maxFieldSectionBytes) throw new OversizeError('a field section exceeds its size limit');
        this.#inSection(n);
        this.#sectionBytes += n;
        this.#want = n;
        this.#state = S.name;
        return true;
      }
      case S.name: {
        const b = this.#string(this.#want);
        if (b === null) return false;
        checkFieldName(b);
        this.#pendingName = latin1Decode(b);
        this.#state = S.valueLength;
        return true;
      }
      case S.valueLength: {
        const n = this.#varint();
        if (n === NEED_MORE) return false;
        if (this.#sectionBytes + n > this.#limits.maxFieldSectionBytes) throw new OversizeError('a field section exceeds its size limit');
        this.#inSection(n);
        this.#sectionBytes += n;
        this.#want = n;
        this.#state = S.value;
        return true;
      }
      case S.value: {
        const b = this.#string(this.#want);
        if (b === null) return false;
        checkFieldValue(b);
        this.#lines.push([this.#pendingName, latin1Decode(b)]);
        this.#state = S.nameLength;
        return true;
      }
      case S.contentLength: {
        const n = this.#varint();
        if (n === NEED_MORE) return false;
        if (n >= MAX_SAFE_LENGTH) throw new OversizeError('the content length is too large');
        if (n === 0) this.#startSection('trailer');
        else {
          this.#remaining = n;
          this.#state = S.content;
        }
        return true;
      }
      case S.chunkLength: {
        const n = this.#varint();
        if (n === NEED_MORE) return false;
        if (n === 0) this.#startSection('trailer');
        else {
          if (n >= MAX_SAFE_LENGTH) throw new OversizeError('a content chunk is too large');
          this.#chunks++;
          this.#remaining = n;
          this.#state = S.chunk;
        }
        return true;
      }
      case S.content:
      case S.chunk: {
        const inp = this.#in;
        const take = Math.min(this.#remaining, inp.length - this.#pos);
        if (take === 0) return false;
        out.push({ kind: 'content', data: inp.subarray(this.#pos, this.#pos + take) });
        this.#pos += take;
        this.#remaining -= take;
        if (this.#remaining === 0) {
          if (this.#state === S.content) this.#startSection('trailer');
          else this.#state = S.chunkLength;
        }
        return true;
      }
      case S.padding: {
        const inp = this.#in;
        for (let i = this.#pos; i < inp.length; i++) {
          if (inp[i] !== 0) throw new BhttpError('non-zero octets follow the message (RFC 9292 §3.8)');
        }
        this.#pos = inp.length;
        return false;
      }
    }
  }
}

export function createRequestDecoder(limits?: Partial<BhttpLimits>, options?: BhttpDecodeOptions): BhttpDecoder<RequestHead> {
  return new BhttpDecoder<RequestHead>('request', limits, options);
}

export function createResponseDecoder(limits?: Partial<BhttpLimits>, options?: BhttpDecodeOptions): BhttpDecoder<ResponseHead> {
  return new BhttpDecoder<ResponseHead>('response', limits, options);
}

function decodeWhole<H extends RequestHead | ResponseHead>(decoder: BhttpDecoder<H>, bytes: Uint8Array): { head: H; content: Uint8Array; trailers: FieldLine[] } {
  let head: H | undefined;
  let trailers: FieldLine[] = [];
  const content: Uint8Array[] = [];
  for (const ev of [...decoder.push(bytes), ...decoder.finish()]) {
    if (ev.kind === 'head') head = ev.head;
    else if (ev.kind === 'content') content.push(ev.data);
    else if (ev.kind === 'trailers') trailers = ev.fields;
  }
  if (head === undefined || !decoder.done) throw new BhttpError('the message is truncated (RFC 9292 §3.8)');
  return { head, content: content.length === 1 ? content[0]! : concatBytes(...content), trailers };
}

/** A whole request in any request framing; the content is a view of `bytes` when it arrived in one piece. */
export function decodeRequest(bytes: Uint8Array, limits?: Partial<BhttpLimits>, options?: BhttpDecodeOptions): { head: RequestHead; content: Uint8Array; trailers: FieldLine[] } {
  return decodeWhole(createRequestDecoder(limits, options), bytes);
}

/** A whole response in any response framing; the content is a view of `bytes` when it arrived in one piece. */
export function decodeResponse(bytes: Uint8Array, limits?: Partial<BhttpLimits>, options?: BhttpDecodeOptions): { head: ResponseHead; content: Uint8Array; trailers: FieldLine[] } {
  return decodeWhole(createResponseDecoder(limits, options), bytes);
}

/**
 * REQUEST and RESPONSE messages (docs/PROTOCOL.md §3, §5): a Binary HTTP message
 * (RFC 9292, indeterminate-length framing) carried in the record layer.
 *
 * Sealing is streaming: the head goes in its own record as soon as it is known (so the
 * inner can authorize before any body arrives), each body chunk becomes a record as it
 * arrives (server-sent events are never held back to fill a buffer), and a final record
 * closes the message. A body known to be small travels with its head in one record: a
 * 1 KiB request + response costs exactly 2 AES-GCM seals and 2 opens.
 */
import {
  createRequestDecoder,
  createResponseDecoder,
  encodeContentChunkPrefix,
  encodeEnd,
  encodeRequestHead,
  encodeResponseHead,
  type BhttpDecoder,
  type BhttpLimits,
  type RequestHead,
  type ResponseHead,
} from './bhttp.ts';
import type { ByteReader } from './bytereader.ts';
import { BhttpError, MalformedError, TruncatedError } from './errors.ts';
import { concatBytes } from './bytes.ts';
import { openRecordsAtHand, RECORD_DEFAULTS, RecordOpener, RecordSealer, type DirectionState } from './records.ts';
import type { EnvelopeHeader } from './wire.ts';

const NO_OCTETS = new Uint8Array(0);

/** A body: nothing, bytes known in full, or a stream of chunks of unknown total length. */
export type BodySource = Uint8Array | AsyncIterable<Uint8Array> | null;

/** Room for the largest BHTTP chunk-length prefix (a 4-octet QUIC varint covers < 2^30). */
const CHUNK_PREFIX_ROOM = 8;

export interface SealOptions {
  readonly recordSize?: number;
}

/** One BHTTP content chunk as record plaintext parts: its length prefix, then the octets (not joined: the sealer may encrypt them in turn). */
function contentPlaintext(piece: Uint8Array): readonly Uint8Array[] {
  return [encodeContentChunkPrefix(piece.length), piece];
}

function* bodyPieces(chunk: Uint8Array, max: number): Generator<Uint8Array> {
  for (let off = 0; off < chunk.length; off += max) yield chunk.subarray(off, Math.min(chunk.length, off + max));
}

/**
 * The wire octets of one message: its envelope header, then its records. `headBytes` is the
 * encoded BHTTP head. The generator seals lazily, so a slow body is never buffered.
 */
export async function* sealMessage(dir: DirectionState, header: EnvelopeHeader, headBytes: Uint8Array, body: BodySource, opts: SealOptions = {}): AsyncGenerator<Uint8Array> {
  const recordSize = opts.recordSize ?? RECORD_DEFAULTS.plaintextSize;
  const sealer = new RecordSealer(dir, header, recordSize);
  const end = encodeEnd();
  const maxPiece = recordSize - CHUNK_PREFIX_ROOM;
  if (maxPiece < 1) throw new RangeError('record size too small');
  yield header.bytes;

  if (body === null || body instanceof Uint8Array) {
    const pt = singleRecordPlaintext(headBytes, body, recordSize);
    if (pt) {
      yield* await sealer.sealRecords([pt], true);
      return;
    }
    const content = body ?? new Uint8Array(0);
    yield* await sealer.seal(headBytes, false);
    const pieces = [...bodyPieces(content, maxPiece)].map(contentPlaintext);
    // Seal the body in batches so a large in-memory body still gets several records in flight.
    for (let i = 0; i < pieces.length; i += 16) yield* await sealer.sealRecords(pieces.slice(i, i + 16), false);
    yield* await sealer.sealRecords([end], true);
    return;
  }

  yield* await sealer.seal(headBytes, false);
  yield* pipelinedBody(sealer, body, maxPiece);
  yield* await sealer.sealRecords([end], true);
}

/**
 * The one-record plaintext (head ‖ content ‖ end) of a message whose body is at hand, or null
 * when it does not fit in one record of `recordSize`.
 */
export function singleRecordPlaintext(headBytes: Uint8Array, body: Uint8Array | null, recordSize: number = RECORD_DEFAULTS.plaintextSize): Uint8Array | null {
  const content = body ?? new Uint8Array(0);
  const prefix = content.length > 0 ? encodeContentChunkPrefix(content.length) : new Uint8Array(0);
  const end = encodeEnd();
  const total = headBytes.length + prefix.length + content.length + end.length;
  if (total > recordSize) return null;
  const pt = new Uint8Array(total);
  pt.set(headBytes, 0);
  pt.set(prefix, headBytes.length);
  pt.set(content, headBytes.length + prefix.length);
  pt.set(end, total - end.length);
  return pt;
}

/**
 * A whole message in one buffer: envelope header ‖ one final record sealing `plaintext`
 * (from singleRecordPlaintext). The same octets sealMessage yields for that message, without
 * a generator: the small-request fast path of both sidecars.
 */
export async function sealSingleRecord(dir: DirectionState, header: EnvelopeHeader, plaintext: Uint8Array): Promise<Uint8Array> {
  const record = await new RecordSealer(dir, header, Math.max(1, plaintext.length)).sealRecords([plaintext], true);
  return concatBytes(header.bytes, ...record);
}

/** How many body chunks may be sealing at once. */
const SEAL_DEPTH = 8;

/**
 * Seals body chunks as they arrive, several at once when they arrive faster than one seal
 * takes, and yields each sealed chunk as soon as it and those before it are done: a chunk is
 * never held back waiting for the next one (event streams keep their latency).
 */
async function* pipelinedBody(sealer: RecordSealer, body: AsyncIterable<Uint8Array>, maxPiece: number): AsyncGenerator<Uint8Array> {
  const it = body[Symbol.asyncIterator]();
  const sealing: Promise<Uint8Array[]>[] = [];
  // A read may fail while this generator waits on a seal or on its consumer: mark it handled
  // at once (awaiting it later still throws) so the failure never surfaces as an unhandled
  // rejection that would take the process down.
  const pull = (): Promise<IteratorResult<Uint8Array>> => {
    const p = it.next();
    p.catch(() => undefined);
    return p;
  };
  let next: Promise<IteratorResult<Uint8Array>> | null = pull();
  let finished = false;
  const start = (chunk: Uint8Array) => {
    if (chunk.length === 0) return;
    const p = sealer.sealRecords([...bodyPieces(chunk, maxPiece)].map(contentPlaintext), false);
    p.catch(() => undefined);
    sealing.push(p);
  };
  try {
    while (next !== null || sealing.length > 0) {
      if (next === null || sealing.length >= SEAL_DEPTH) {
        yield* await sealing.shift()!;
        continue;
      }
      if (sealing.length === 0) {
        const r = await next;
        if (r.done) next = null;
        else (start(r.value), (next = pull()));
        continue;
      }
      const pendingNext = next;
      const first = await Promise.race([sealing[0]!.then(() => 'sealed' as const), pendingNext.then(() => 'chunk' as const)]);
      if (first === 'sealed') {
        yield* await sealing.shift()!;
      } else {
        const r = await pendingNext;
        if (r.done) next = null;
        else (start(r.value), (next = pull()));
      }
    }
    finished = true;
  } finally {
    // Stopped early (error or consumer gone): release the source without waiting on a pending read.
    if (!finished) it.return?.()?.catch(() => undefined);
  }
}

export function sealRequest(dir: DirectionState, header: EnvelopeHeader, head: RequestHead, body: BodySource, opts?: SealOptions): AsyncGenerator<Uint8Array> {
  return sealMessage(dir, header, encodeRequestHead(head), body, opts);
}

export function sealResponse(dir: DirectionState, header: EnvelopeHeader, head: ResponseHead, body: BodySource, opts?: SealOptions): AsyncGenerator<Uint8Array> {
  return sealMessage(dir, header, encodeResponseHead(head), body, opts);
}

export interface OpenedMessage<H> {
  readonly head: H;
  /**
   * The body as it arrives. It completes only after the final record authenticated and the
   * BHTTP message ended; any truncation, tampering or trailing garbage is thrown here, so a
   * consumer never mistakes a cut body for a whole one.
   */
  readonly body: AsyncIterable<Uint8Array>;
}

export interface OpenOptions {
  readonly maxRecordPlaintext?: number;
  readonly bhttpLimits?: Partial<BhttpLimits>;
  /** Called once, right after the first record authenticated (the replay window is marked here). */
  readonly onFirstRecord?: () => void;
}

/** Feeds authenticated record plaintexts to the BHTTP decoder and keeps what came out. */
class MessageAssembler<H> {
  readonly #decoder: BhttpDecoder<H & (RequestHead | ResponseHead)>;
  readonly #onFirstRecord: (() => void) | undefined;
  readonly pending: Uint8Array[] = [];
  head: H | undefined;
  ended = false;
  #first = true;

  constructor(decoder: BhttpDecoder<H & (RequestHead | ResponseHead)>, onFirstRecord: (() => void) | undefined) {
    this.#decoder = decoder;
    this.#onFirstRecord = onFirstRecord;
  }

  absorb(plaintext: readonly Uint8Array[], final: boolean): void {
    if (this.#first) {
      this.#first = false;
      this.#onFirstRecord?.();
    }
    // The decoder takes input split anywhere: a record that opened in two parts is pushed as two.
    const events = this.#decoder.push(plaintext[0] ?? NO_OCTETS);
    for (let i = 1; i < plaintext.length; i++) events.push(...this.#decoder.push(plaintext[i]!));
    if (final) events.push(...this.#decoder.finish());
    for (const ev of events) {
      if (ev.kind === 'head') this.head = ev.head as H;
      else if (ev.kind === 'content') this.pending.push(ev.data);
      else if (ev.kind === 'end') this.ended = true;
    }
    if (final && !this.ended) throw new BhttpError('the final record ended inside the HTTP message');
  }
}

async function openMessage<H>(dir: DirectionState, header: EnvelopeHeader, reader: ByteReader, decoder: BhttpDecoder<H & (RequestHead | ResponseHead)>, opts: OpenOptions): Promise<OpenedMessage<H>> {
  const opener = new RecordOpener(dir, header, reader, opts.maxRecordPlaintext ?? RECORD_DEFAULTS.maxPlaintext);
  const msg = new MessageAssembler<H>(decoder, opts.onFirstRecord);

  const nextRecord = async (): Promise<boolean> => {
    const rec = await opener.next();
    if (!rec) return false;
    msg.absorb(rec.parts, rec.final);
    return true;
  };

  while (msg.head === undefined) {
    if (!(await nextRecord())) throw new TruncatedError('the message ended before the HTTP head');
  }
  const pending = msg.pending;
  async function* body(): AsyncGenerator<Uint8Array> {
    for (;;) {
      while (pending.length > 0) yield pending.shift()!;
      if (opener.done) break;
      await nextRecord();
    }
    if (!msg.ended) throw new MalformedError('message ended without the end of its HTTP content');
  }
  return { head: msg.head, body: body() };
}

/** A message opened whole: its head and its entire content. */
export interface MessageAtHand<H> {
  readonly head: H;
  readonly body: Uint8Array;
}

/**
 * Opens a message that is entirely in memory (`records`: exactly its records, nothing after
 * the final one). Same checks as openRequest/openResponse; the content is released only
 * once every record authenticated and the HTTP message ended.
 */
async function openMessageAtHand<H>(dir: DirectionState, header: EnvelopeHeader, records: Uint8Array, decoder: BhttpDecoder<H & (RequestHead | ResponseHead)>, opts: OpenOptions): Promise<MessageAtHand<H>> {
  const msg = new MessageAssembler<H>(decoder, opts.onFirstRecord);
  await openRecordsAtHand(dir, header, records, opts.maxRecordPlaintext ?? RECORD_DEFAULTS.maxPlaintext, (rec) => msg.absorb(rec.parts, rec.final));
  if (msg.head === undefined) throw new TruncatedError('the message ended before the HTTP head');
  const parts = msg.pending;
  return { head: msg.head, body: parts.length === 1 ? parts[0]! : concatBytes(...parts) };
}

export function openRequestAtHand(dir: DirectionState, header: EnvelopeHeader, records: Uint8Array, opts: OpenOptions = {}): Promise<MessageAtHand<RequestHead>> {
  return openMessageAtHand<RequestHead>(dir, header, records, createRequestDecoder(opts.bhttpLimits), opts);
}

export function openResponseAtHand(dir: DirectionState, header: EnvelopeHeader, records: Uint8Array, opts: OpenOptions = {}): Promise<MessageAtHand<ResponseHead>> {
  return openMessageAtHand<ResponseHead>(dir, header, records, createResponseDecoder(opts.bhttpLimits), opts);
}

export function openRequest(dir: DirectionState, header: EnvelopeHeader, reader: ByteReader, opts: OpenOptions = {}): Promise<OpenedMessage<RequestHead>> {
  return openMessage<RequestHead>(dir, header, reader, createRequestDecoder(opts.bhttpLimits), opts);
}

export function openResponse(dir: DirectionState, header: EnvelopeHeader, reader: ByteReader, opts: OpenOptions = {}): Promise<OpenedMessage<ResponseHead>> {
  return openMessage<ResponseHead>(dir, header, reader, createResponseDecoder(opts.bhttpLimits), opts);
}

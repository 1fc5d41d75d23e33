/**
 * core/bhttp.ts against RFC 9292: the §5 examples byte for byte, streaming round trips in
 * random splits, truncation at every octet, and hostile inputs (each asserts its error code).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { prng } from '../test/helpers/prng.ts';
import { readFileSync } from 'node:fs';
import {
  createRequestDecoder,
  createResponseDecoder,
  decodeRequest,
  decodeResponse,
  DEFAULT_BHTTP_LIMITS,
  encodeContentChunk,
  encodeContentChunkPrefix,
  encodeEnd,
  encodeKnownLengthRequest,
  encodeKnownLengthResponse,
  encodeRequestHead,
  encodeResponseHead,
  type BhttpDecodeOptions,
  type BhttpDecoder,
  type BhttpEvent,
  type BhttpLimits,
  type FieldLine,
  type RequestHead,
  type ResponseHead,
} from './bhttp.ts';
import { concatBytes, fromHex } from './bytes.ts';

const BHTTP = 'SWS_ERR_BHTTP';
const OVERSIZE = 'SWS_ERR_OVERSIZE';

// ---------------------------------------------------------------------------------------
// Helpers


function randomBytes(rng: () => number, n: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = (rng() * 256) | 0;
  return out;
}

/** Cuts `bytes` into views of random sizes, often tiny (to split varints and strings), sometimes large. */
function randomSplits(bytes: Uint8Array, rng: () => number, maxLarge = 262_144): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let off = 0; off < bytes.length; ) {
    const n = rng() < 0.4 ? 1 + Math.floor(rng() * 9) : 1 + Math.floor(rng() * maxLarge);
    out.push(bytes.subarray(off, Math.min(bytes.length, off + n)));
    off += n;
  }
  return out;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return Buffer.from(a.buffer, a.byteOffset, a.length).equals(Buffer.from(b.buffer, b.byteOffset, b.length));
}

interface Decoded<H> {
  head: H | undefined;
  content: Uint8Array;
  trailers: FieldLine[] | undefined;
  events: BhttpEvent<H>[];
  done: boolean;
}

function run<H extends RequestHead | ResponseHead>(decoder: BhttpDecoder<H>, pieces: readonly Uint8Array[]): Decoded<H> {
  const events: BhttpEvent<H>[] = [];
  for (const p of pieces) events.push(...decoder.push(p));
  events.push(...decoder.finish());
  let head: H | undefined;
  let trailers: FieldLine[] | undefined;
  const content: Uint8Array[] = [];
  for (const ev of events) {
    if (ev.kind === 'head') head = ev.head;
    else if (ev.kind === 'content') content.push(ev.data);
    else if (ev.kind === 'trailers') trailers = ev.fields;
  }
  return { head, content: concatBytes(...content), trailers, events, done: decoder.done };
}

function decoderFor(kind: 'request' | 'response', limits?: Partial<BhttpLimits>, options?: BhttpDecodeOptions): BhttpDecoder<RequestHead | ResponseHead> {
  return kind === 'request' ? createRequestDecoder(limits, options) : createResponseDecoder(limits, options);
}

function throwsCode(fn: () => unknown, code: string, what?: string): void {
  assert.throws(fn, (err: unknown) => {
    assert.equal((err as { code?: unknown }).code, code, what);
    return true;
  });
}

/** A QUIC varint of the given size (1, 2, 4 or 8 octets), minimal or not, built by hand so hostile values need no encoder help. */
function vi(v: number | bigint, size?: 1 | 2 | 4 | 8): Uint8Array {
  const n = BigInt(v);
  const len = size ?? (n < 64n ? 1 : n < 16384n ? 2 : n < 1n << 30n ? 4 : 8);
  const out = new Uint8Array(len);
  let x = n;
  for (let i = len - 1; i >= 0; i--) {
    out[i] = Number(x & 0xffn);
    x >>= 8n;
  }
  out[0] = out[0]! | ({ 1: 0x00, 2: 0x40, 4: 0x80, 8: 0xc0 } as const)[len];
  return out;
}

function bytesOf(s: string): Uint8Array {
  return Uint8Array.from(s, (c) => c.charCodeAt(0));
}

function str(s: string): Uint8Array {
  const b = bytesOf(s);
  return concatBytes(vi(b.length), b);
}

function rawLines(fields: readonly (readonly [string, string])[]): Uint8Array {
  return concatBytes(...fields.flatMap(([n, v]) => [str(n), str(v)]));
}

/** An indeterminate-length request assembled without any validation, for hostile inputs. */
function rawRequest(control: readonly [string, string, string, string], headers: readonly (readonly [string, string])[] = [], trailers: readonly (readonly [string, string])[] = []): Uint8Array {
  return concatBytes(vi(2), ...control.map(str), rawLines(headers), vi(0), vi(0), rawLines(trailers), vi(0));
}

const GOOD_CONTROL = ['GET', 'https', 'example.com', '/'] as const;

// ---------------------------------------------------------------------------------------
// RFC 9292 §5: every example, byte for byte

interface Vector {
  name: string;
  section: string;
  kind: 'request' | 'response';
  framing: number;
  hexDump: string[];
  paddingLength: number;
  truncatableOctets: number;
  head: RequestHead | ResponseHead;
  content: string;
  trailers: [string, string][];
}
const vectors = (JSON.parse(readFileSync(new URL('../test/vectors/bhttp-rfc9292.json', import.meta.url), 'utf8')) as { vectors: Vector[] }).vectors;
const wireOf = (v: Vector): Uint8Array => fromHex(v.hexDump.join('').replace(/\s+/g, ''));

test('the vector file holds all four RFC 9292 §5 examples (Figures 8, 9, 11, 13)', () => {
  assert.deepEqual(
    vectors.map((v) => v.section.match(/Figure \d+/)![0]),
    ['Figure 8', 'Figure 9', 'Figure 11', 'Figure 13'],
  );
});

for (const v of vectors) {
  const wire = wireOf(v);
  const content = bytesOf(v.content);

  test(`${v.section}: decodes to the figure's message, whole and one octet at a time`, () => {
    for (const pieces of [[wire], Array.from(wire, (_, i) => wire.subarray(i, i + 1))]) {
      const d = run(decoderFor(v.kind), pieces);
      assert.equal(d.done, true);
      assert.deepEqual(d.head, v.head);
      assert.deepEqual(d.content, content);
      assert.deepEqual(d.trailers, v.trailers);
    }
    const whole = v.kind === 'request' ? decodeRequest(wire) : decodeResponse(wire);
    assert.deepEqual(whole.head, v.head);
  });

  test(`${v.section}: our encoder reproduces it byte for byte`, () => {
    let encoded: Uint8Array;
    if (v.framing === 0) encoded = encodeKnownLengthRequest(v.head as RequestHead, content, v.trailers);
    else if (v.framing === 1) encoded = encodeKnownLengthResponse(v.head as ResponseHead, content, v.trailers);
    else {
      const head = v.framing === 2 ? encodeRequestHead(v.head as RequestHead) : encodeResponseHead(v.head as ResponseHead);
      encoded = concatBytes(head, ...(content.length > 0 ? [encodeContentChunk(content)] : []), encodeEnd(v.trailers), new Uint8Array(v.paddingLength));
    }
    assert.equal(Buffer.from(encoded).toString('hex'), Buffer.from(wire).toString('hex'));
  });

  test(`${v.section}: ${v.truncatableOctets} trailing octet(s) can go without changing the meaning (§3.8, with acceptTruncated); one more cannot`, () => {
    for (let k = 1; k <= v.truncatableOctets + 1; k++) {
      const cut = wire.subarray(0, wire.length - k);
      if (k <= v.truncatableOctets) {
        const d = run(decoderFor(v.kind, undefined, { acceptTruncated: true }), [cut]);
        assert.deepEqual([d.head, d.content, d.trailers], [v.head, content, v.trailers], `cut ${k}`);
      } else {
        throwsCode(() => run(decoderFor(v.kind, undefined, { acceptTruncated: true }), [cut]), BHTTP, `cut ${k}`);
      }
      // The sws profile: only padding may go; a missing terminator is an error.
      if (k <= v.paddingLength) assert.equal(run(decoderFor(v.kind), [cut]).done, true);
      else throwsCode(() => run(decoderFor(v.kind), [cut]), BHTTP, `strict cut ${k}`);
    }
  });
}

// ---------------------------------------------------------------------------------------
// RFC 9292 §3, §3.3 and RFC 9000 §16: framing and integers

test('§3: integers need not be minimal — a Figure 8 re-encoded with 2-, 4- and 8-octet varints decodes the same', () => {
  const v = vectors[0]!;
  const h = v.head as RequestHead;
  const lines = concatBytes(...h.headers.flatMap(([n, val]) => [concatBytes(vi(n.length, 8), bytesOf(n)), concatBytes(vi(val.length, 4), bytesOf(val))]));
  const wire = concatBytes(
    vi(0, 2),
    ...[h.method, h.scheme, h.authority, h.path].map((s) => concatBytes(vi(s.length, 4), bytesOf(s))),
    vi(lines.length, 8),
    lines,
    vi(0, 8),
    vi(0, 2),
  );
  assert.deepEqual(decodeRequest(wire).head, v.head);
});

test('§3.3: a request decoder accepts only framings 0 and 2, a response decoder only 1 and 3', () => {
  const req = vectors[0]!;
  const wire = wireOf(req);
  for (const f of [1, 3, 4, 63]) throwsCode(() => decodeRequest(concatBytes(vi(f), wire.subarray(1))), BHTTP, `framing ${f}`);
  const resp = wireOf(vectors[2]!);
  for (const f of [0, 2, 4]) throwsCode(() => decodeResponse(concatBytes(vi(f), resp.subarray(1))), BHTTP, `framing ${f}`);
});

test('RFC 9000 §16: varints ≥ 2^53 are refused (OVERSIZE for lengths, BHTTP for codes)', () => {
  const huge = vi((1n << 62n) - 1n, 8);
  const at53 = vi(1n << 53n, 8);
  throwsCode(() => createRequestDecoder().push(huge), BHTTP, 'framing');
  throwsCode(() => createResponseDecoder().push(concatBytes(vi(3), at53)), BHTTP, 'status');
  const head = encodeRequestHead({ method: 'GET', scheme: 'https', authority: 'a', path: '/', headers: [] });
  throwsCode(() => createRequestDecoder().push(concatBytes(head, at53)), OVERSIZE, 'chunk length');
  const known = encodeKnownLengthRequest({ method: 'GET', scheme: 'https', authority: 'a', path: '/', headers: [] }, new Uint8Array(0));
  const beforeContent = known.subarray(0, known.length - 2); // framing, control, empty header section
  throwsCode(() => createRequestDecoder().push(concatBytes(beforeContent, at53)), OVERSIZE, 'content length');
});

// ---------------------------------------------------------------------------------------
// Streaming round trips (§3.1, §3.2, §3.5.1)

function sampleRequestHead(rng: () => number): RequestHead {
  const headers: FieldLine[] = [['user-agent', 'sws-test/1'], ['accept', '*/*'], ['x-obs-text', 'caf\u00e9 \u00ff'], ['x-empty', '']];
  const extra = Math.floor(rng() * 20);
  for (let i = 0; i < extra; i++) headers.push([`x-h${i}`, 'v'.repeat(Math.floor(rng() * 300))]);
  return { method: rng() < 0.5 ? 'POST' : 'PUT', scheme: 'https', authority: 'intranet.example:8443', path: `/upload/${extra}?q=${extra}`, headers };
}

function sampleResponseHead(rng: () => number): ResponseHead {
  const head: ResponseHead = { status: 200 + Math.floor(rng() * 400), headers: [['content-type', 'application/octet-stream'], ['set-cookie', 'a=b; Path=/']] };
  if (rng() < 0.5) head.informational = [{ status: 100, headers: [] }, { status: 103, headers: [['link', '</s.css>; rel=preload']] }];
  return head;
}

const SIZES = [0, 1, 2, 63, 64, 16_383, 16_384, 100_003, 1 << 20, 5 * (1 << 20) + 7];

for (const kind of ['request', 'response'] as const) {
  for (const framing of ['indeterminate', 'known'] as const) {
    test(`§3.${framing === 'known' ? 1 : 2}: ${framing}-length ${kind}s with bodies of 0 B to 5 MiB survive random splits; content events are views of the pushed octets`, () => {
      const rng = prng(kind === 'request' ? 0x5eed : 0xbee5 + (framing === 'known' ? 1 : 0));
      for (const size of SIZES) {
        const head = kind === 'request' ? sampleRequestHead(rng) : sampleResponseHead(rng);
        const body = randomBytes(rng, size);
        const trailers: FieldLine[] = rng() < 0.5 ? [] : [['x-checksum', String(size)]];
        let wire: Uint8Array;
        if (framing === 'known') {
          wire = kind === 'request' ? encodeKnownLengthRequest(head as RequestHead, body, trailers) : encodeKnownLengthResponse(head as ResponseHead, body, trailers);
        } else {
          const parts = [kind === 'request' ? encodeRequestHead(head as RequestHead) : encodeResponseHead(head as ResponseHead)];
          for (let off = 0; off < size; ) {
            const n = Math.min(size - off, 1 + Math.floor(rng() * 200_000));
            const piece = body.subarray(off, off + n);
            parts.push(...(rng() < 0.5 ? [encodeContentChunk(piece)] : [encodeContentChunkPrefix(n), piece]));
            off += n;
          }
          parts.push(encodeEnd(trailers), new Uint8Array(Math.floor(rng() * 3)));
          wire = concatBytes(...parts);
        }
        const pieces = randomSplits(wire, rng);
        const d = run(decoderFor(kind), pieces);
        assert.equal(d.done, true, `size ${size}`);
        assert.deepEqual(d.head, head, `size ${size}`);
        assert.ok(sameBytes(d.content, body), `content of size ${size}`);
        assert.deepEqual(d.trailers, trailers);
        for (const ev of d.events) if (ev.kind === 'content') assert.equal(ev.data.buffer, wire.buffer, 'content is a view, not a copy');
        assert.equal(d.events[0]!.kind, 'head');
        assert.deepEqual(d.events.slice(-2).map((e) => e.kind), ['trailers', 'end']);
      }
    });
  }
}

test('§3.2: a large chunk is released as it arrives, not when it is complete, and its length may be split', () => {
  const dec = createRequestDecoder();
  const head = encodeRequestHead({ method: 'POST', scheme: 'https', authority: 'a.example', path: '/big', headers: [] });
  assert.equal(dec.push(head)[0]!.kind, 'head');
  const prefix = encodeContentChunkPrefix(1 << 29); // 4-octet varint, fed one octet at a time
  for (const b of prefix) assert.deepEqual(dec.push(Uint8Array.of(b)), []);
  const piece = new Uint8Array(65_536).fill(7);
  for (let i = 0; i < 16; i++) {
    const evs = dec.push(piece);
    assert.equal(evs.length, 1);
    assert.equal(evs[0]!.kind, 'content');
    const data = (evs[0] as { data: Uint8Array }).data;
    assert.equal(data.buffer, piece.buffer);
    assert.equal(data.length, piece.length);
  }
  throwsCode(() => dec.finish(), BHTTP, 'the chunk is incomplete');
});

test('§3.1: a known-length content declared as 2^52 octets streams what arrives without allocating it, then fails as truncated', () => {
  const known = encodeKnownLengthRequest({ method: 'PUT', scheme: 'https', authority: 'a', path: '/', headers: [] }, new Uint8Array(0));
  const dec = createRequestDecoder();
  dec.push(known.subarray(0, known.length - 2));
  const data = new Uint8Array(1000);
  const evs = dec.push(concatBytes(vi(2 ** 52), data));
  assert.equal(evs.length, 1);
  assert.equal((evs[0] as { data: Uint8Array }).data.length, 1000);
  throwsCode(() => dec.finish(), BHTTP);
});

// ---------------------------------------------------------------------------------------
// §3.8 truncation and padding

function smallMessages(): { name: string; kind: 'request' | 'response'; wire: Uint8Array }[] {
  const rh: RequestHead = { method: 'POST', scheme: 'https', authority: 'a.example', path: '/p?q', headers: [['content-type', 'text/plain'], ['x-a', 'b']] };
  const sh: ResponseHead = { status: 200, headers: [['content-type', 'text/plain']], informational: [{ status: 103, headers: [['link', '</a>']] }] };
  const body = bytesOf('hello, world');
  const tr: FieldLine[] = [['x-digest', 'abc']];
  const chunks = [encodeContentChunk(body.subarray(0, 5)), encodeContentChunk(body.subarray(5))];
  return [
    { name: 'indeterminate request', kind: 'request', wire: concatBytes(encodeRequestHead(rh), ...chunks, encodeEnd(tr)) },
    { name: 'indeterminate response', kind: 'response', wire: concatBytes(encodeResponseHead(sh), ...chunks, encodeEnd(tr)) },
    { name: 'known-length request', kind: 'request', wire: encodeKnownLengthRequest(rh, body, tr) },
    { name: 'known-length response', kind: 'response', wire: encodeKnownLengthResponse(sh, body, tr) },
  ];
}

for (const m of smallMessages()) {
  test(`§3.8 (sws profile): every one of the ${m.name}'s proper prefixes is rejected by finish(), pushed whole or octet by octet`, () => {
    assert.equal(run(decoderFor(m.kind), [m.wire]).done, true);
    for (let p = 0; p < m.wire.length; p++) {
      const prefix = m.wire.subarray(0, p);
      throwsCode(() => run(decoderFor(m.kind), [prefix]), BHTTP, `prefix ${p}`);
      throwsCode(() => run(decoderFor(m.kind), Array.from(prefix, (_, i) => prefix.subarray(i, i + 1))), BHTTP, `prefix ${p} by octets`);
    }
  });
}

test('§3.8 (acceptTruncated): a prefix decodes only at the cuts the RFC allows — after control data, header section or content — and reads the rest as empty', () => {
  const head: RequestHead = { method: 'GET', scheme: 'https', authority: 'a', path: '/', headers: [['x-a', 'b']] };
  const control = encodeRequestHead({ ...head, headers: [] }).length - 1; // framing + control data
  const afterHeader = encodeRequestHead(head).length;
  const body = bytesOf('xyz');
  const wire = concatBytes(encodeRequestHead(head), encodeContentChunk(body), encodeEnd([['x-t', 'u']]));
  const afterContent = afterHeader + encodeContentChunk(body).length + 1;
  const accepted: number[] = [];
  for (let p = 0; p <= wire.length; p++) {
    try {
      const d = run(createRequestDecoder(undefined, { acceptTruncated: true }), [wire.subarray(0, p)]);
      accepted.push(p);
      const expectContent = p >= afterContent ? body : new Uint8Array(0);
      assert.deepEqual(d.head, p < afterHeader ? { ...head, headers: [] } : head);
      assert.deepEqual(d.content, expectContent);
      assert.deepEqual(d.trailers, p === wire.length ? [['x-t', 'u']] : []);
    } catch (err) {
      assert.equal((err as { code?: string }).code, BHTTP, `prefix ${p}`);
    }
  }
  assert.deepEqual(accepted, [control, afterHeader, afterContent, wire.length]);
});

test('§3.8: zero padding of any length is accepted, in the same push or later ones', () => {
  const wire = wireOf(vectors[1]!);
  const dec = createRequestDecoder();
  dec.push(concatBytes(wire, new Uint8Array(1000)));
  assert.equal(dec.done, true);
  assert.deepEqual(dec.push(new Uint8Array(5000)), []);
  assert.deepEqual(dec.finish(), []);
});

test('§3.8: a non-zero octet after the message is rejected, in the same push or a later one', () => {
  const wire = wireOf(vectors[0]!);
  throwsCode(() => decodeRequest(concatBytes(wire, Uint8Array.of(0, 0, 1))), BHTTP);
  const dec = createRequestDecoder();
  dec.push(wire);
  throwsCode(() => dec.push(Uint8Array.of(0x47)), BHTTP, 'garbage after end');
  throwsCode(() => dec.push(new Uint8Array(1)), BHTTP, 'a rejected decoder stays rejected');
  throwsCode(() => dec.finish(), BHTTP, 'finish after rejection');
});

// ---------------------------------------------------------------------------------------
// Limits (RFC 9292 §8: resource exhaustion) — refused when the length arrives, before buffering

test('§8: huge declared lengths fail on the length octets alone, before any allocation', () => {
  const start = concatBytes(vi(2), ...GOOD_CONTROL.map(str));
  const cases: [string, Uint8Array][] = [
    ['method length 2^40', concatBytes(vi(2), vi(2 ** 40))],
    ['path length 2^20', concatBytes(vi(2), str('GET'), str('https'), str('a'), vi(1 << 20))],
    ['name length 2^62-1', concatBytes(start, vi((1n << 62n) - 1n, 8))],
    ['value length 2^30', concatBytes(start, str('x-a'), vi(2 ** 30))],
    ['value length just over the limit', concatBytes(start, str('x-a'), vi(65_536 - 2))],
  ];
  for (const [what, bytes] of cases) throwsCode(() => createRequestDecoder().push(bytes), OVERSIZE, what);
  const knownStart = concatBytes(vi(0), ...GOOD_CONTROL.map(str));
  throwsCode(() => createRequestDecoder().push(concatBytes(knownStart, vi((1n << 62n) - 1n, 8))), OVERSIZE, 'known section length');
  throwsCode(() => createRequestDecoder().push(concatBytes(knownStart, vi(65_536 + 16 * 512 + 1))), OVERSIZE, 'section longer than the limits allow');
});

test('§8: maxFieldLines and maxFieldSectionBytes bound each section; exactly at the limit is fine', () => {
  const limits = { maxFieldLines: 4, maxFieldSectionBytes: 40 };
  const lines = (n: number): [string, string][] => Array.from({ length: n }, (_, i) => [`x-${i}`, 'v'] as [string, string]);
  assert.equal(decodeRequest(rawRequest(GOOD_CONTROL, lines(4)), limits).head.headers.length, 4);
  throwsCode(() => decodeRequest(rawRequest(GOOD_CONTROL, lines(5)), limits), OVERSIZE, 'five lines');
  throwsCode(() => decodeRequest(rawRequest(GOOD_CONTROL, [], lines(5)), limits), OVERSIZE, 'five trailer lines');
  assert.equal(decodeRequest(rawRequest(GOOD_CONTROL, [['x', 'v'.repeat(39)]]), limits).head.headers.length, 1);
  throwsCode(() => decodeRequest(rawRequest(GOOD_CONTROL, [['x', 'v'.repeat(40)]]), limits), OVERSIZE, '41 octets');
  throwsCode(() => decodeRequest(rawRequest(['GET', 'https', 'a', '/' + 'p'.repeat(40)]), limits), OVERSIZE, 'control data');
  assert.deepEqual(DEFAULT_BHTTP_LIMITS, { maxFieldSectionBytes: 65536, maxFieldLines: 512 });
  assert.throws(() => createRequestDecoder({ maxFieldLines: 0 }), RangeError);
});

test('§3.5.1 + §8: more than 32 informational responses are refused', () => {
  const info = (n: number): Uint8Array => concatBytes(vi(3), ...Array.from({ length: n }, () => concatBytes(vi(100), vi(0))), vi(200), vi(0), vi(0), vi(0));
  assert.equal(decodeResponse(info(32)).head.informational?.length, 32);
  throwsCode(() => decodeResponse(info(33)), OVERSIZE);
});

// ---------------------------------------------------------------------------------------
// §3.4 request control data (RFC 9113 §8.3.1, RFC 9110 §9.1)

test('§3.4: invalid methods, schemes, authorities and paths are refused by the decoder and the encoder', () => {
  const bad: [string, [string, string, string, string]][] = [
    ['empty method', ['', 'https', 'a', '/']],
    ['method with space', ['GE T', 'https', 'a', '/']],
    ['method with NUL', ['G\0T', 'https', 'a', '/']],
    ['method with CRLF', ['GET\r\n', 'https', 'a', '/']],
    ['method with a delimiter', ['(GET)', 'https', 'a', '/']],
    ['uppercase scheme', ['GET', 'HTTPS', 'a', '/']],
    ['other scheme', ['GET', 'ftp', 'a', '/']],
    ['empty scheme', ['GET', '', 'a', '/']],
    ['scheme with colon', ['GET', 'https:', 'a', '/']],
    ['userinfo', ['GET', 'https', 'user:pw@a.example', '/']],
    ['space in authority', ['GET', 'https', 'a example', '/']],
    ['CRLF in authority', ['GET', 'https', 'a\r\nx', '/']],
    ['slash in authority', ['GET', 'https', 'a/b', '/']],
    ['DEL in authority', ['GET', 'https', 'a\x7f', '/']],
    ['empty path', ['GET', 'https', 'a', '']],
    ['relative path', ['GET', 'https', 'a', 'hello']],
    ['absolute URI as path', ['GET', 'https', 'a', 'https://b/']],
    ['space in path', ['GET', 'https', 'a', '/a b']],
    ['CRLF in path', ['GET', 'https', 'a', '/a\r\nX-Injected: 1']],
    ['NUL in path', ['GET', 'https', 'a', '/a\0']],
    ['TAB in path', ['GET', 'https', 'a', '/a\tb']],
    ['fragment in path', ['GET', 'https', 'a', '/a#b']],
    ['asterisk for GET', ['GET', 'https', 'a', '*']],
  ];
  for (const [what, control] of bad) {
    throwsCode(() => decodeRequest(rawRequest(control)), BHTTP, `decode: ${what}`);
    const [method, scheme, authority, path] = control;
    throwsCode(() => encodeRequestHead({ method, scheme, authority, path, headers: [] }), BHTTP, `encode: ${what}`);
  }
  const good: [string, string, string, string][] = [
    ['OPTIONS', 'https', 'a', '*'],
    ['GET', 'http', '', '/'], // §3.4: an absent :authority is encoded as zero length
    ['PATCH', 'https', '[::1]:8443', '/%20a/b;c?d=e&f=%2F'],
    ['M-SEARCH', 'https', 'a.example', '//double/slash'],
    ['get', 'https', 'a', '/caf\u00e9'], // methods are case-sensitive tokens; obs-text passes through as octets
  ];
  for (const [method, scheme, authority, path] of good) {
    const head = { method, scheme, authority, path, headers: [] };
    assert.deepEqual(decodeRequest(concatBytes(encodeRequestHead(head), encodeEnd())).head, head);
  }
});

// ---------------------------------------------------------------------------------------
// §3.5 status codes

test('§3.5, §3.5.1: final status is 200..599; informational is 100..199 without 101 (RFC 9113 §8.6)', () => {
  for (const status of [99, 100, 101, 199, 600, 1000, 200.5]) throwsCode(() => encodeResponseHead({ status, headers: [] }), BHTTP, `final ${status}`);
  for (const status of [99, 101, 200, 204]) throwsCode(() => encodeResponseHead({ status: 200, headers: [], informational: [{ status, headers: [] }] }), BHTTP, `informational ${status}`);
  const wire = (...statuses: number[]): Uint8Array => concatBytes(vi(3), ...statuses.map((s) => concatBytes(vi(s), vi(0))), vi(0), vi(0));
  for (const s of [0, 99, 101, 600, 16383]) throwsCode(() => decodeResponse(wire(s)), BHTTP, `decode ${s}`);
  throwsCode(() => decodeResponse(wire(100, 101, 200)), BHTTP, '101 as informational');
  throwsCode(() => decodeResponse(concatBytes(vi(3), vi(100), vi(0))), BHTTP, 'informational only, never final');
  assert.deepEqual(decodeResponse(wire(100, 102, 599)).head, { status: 599, headers: [], informational: [{ status: 100, headers: [] }, { status: 102, headers: [] }] });
});

// ---------------------------------------------------------------------------------------
// §3.6 field lines (RFC 9110 §5.1, §5.5; RFC 9113 §8.2.1)

test('§3.6: field names must be lowercase tokens and never pseudo-fields — in headers, trailers and informational sections', () => {
  const names = ['Content-Type', 'X-A', ':path', ':authority', ':method', ':scheme', ':status', ':protocol', 'a b', 'x\0', 'a:b', 'x\r\n', 'caf\u00e9', '(x)'];
  for (const name of names) {
    throwsCode(() => decodeRequest(rawRequest(GOOD_CONTROL, [[name, 'v']])), BHTTP, `decode header ${JSON.stringify(name)}`);
    throwsCode(() => decodeRequest(rawRequest(GOOD_CONTROL, [], [[name, 'v']])), BHTTP, `decode trailer ${JSON.stringify(name)}`);
    throwsCode(() => encodeRequestHead({ method: 'GET', scheme: 'https', authority: 'a', path: '/', headers: [[name, 'v']] }), BHTTP, `encode ${JSON.stringify(name)}`);
    throwsCode(() => encodeEnd([[name, 'v']]), BHTTP, `encode trailer ${JSON.stringify(name)}`);
    throwsCode(() => encodeResponseHead({ status: 200, headers: [], informational: [{ status: 103, headers: [[name, 'v']] }] }), BHTTP, `encode informational ${JSON.stringify(name)}`);
  }
  throwsCode(() => decodeResponse(concatBytes(vi(3), vi(103), rawLines([['Link', 'x']]), vi(0), vi(200), vi(0), vi(0), vi(0))), BHTTP, 'decode informational');
  throwsCode(() => encodeRequestHead({ method: 'GET', scheme: 'https', authority: 'a', path: '/', headers: [['', 'v']] }), BHTTP, 'empty name');
});

test('§3.6: a zero Name Length inside a known-length section is invalid (Name Length = 1..)', () => {
  const lines = concatBytes(vi(0), str('v'));
  const wire = concatBytes(vi(0), ...GOOD_CONTROL.map(str), vi(lines.length), lines, vi(0), vi(0));
  throwsCode(() => decodeRequest(wire), BHTTP);
});

test('§3.1: a field line that runs past its known-length section is invalid, as soon as its length says so', () => {
  const lines = rawLines([['x-a', 'value']]);
  for (const declared of [lines.length - 1, 1, 4]) {
    const upToLines = concatBytes(vi(0), ...GOOD_CONTROL.map(str), vi(declared), lines);
    throwsCode(() => createRequestDecoder().push(upToLines), BHTTP, `declared ${declared}`);
  }
});

test('§3.6 (RFC 9110 §5.5): CR, LF, NUL, other controls and edge whitespace in values are refused; HTAB inside, obs-text and empty are fine', () => {
  const bad = ['a\r\nX-Injected: 1', 'a\nb', 'a\rb', 'a\0b', 'a\x01b', 'a\x1fb', 'a\x7fb', ' lead', 'trail ', '\ttab', 'tab\t', ' '];
  for (const value of bad) {
    throwsCode(() => decodeRequest(rawRequest(GOOD_CONTROL, [['x-a', value]])), BHTTP, `decode ${JSON.stringify(value)}`);
    throwsCode(() => decodeRequest(rawRequest(GOOD_CONTROL, [], [['x-a', value]])), BHTTP, `decode trailer ${JSON.stringify(value)}`);
    throwsCode(() => encodeRequestHead({ method: 'GET', scheme: 'https', authority: 'a', path: '/', headers: [['x-a', value]] }), BHTTP, `encode ${JSON.stringify(value)}`);
    throwsCode(() => encodeEnd([['x-a', value]]), BHTTP, `encode trailer ${JSON.stringify(value)}`);
  }
  const good: FieldLine[] = [['x-a', 'a\tb  c'], ['x-b', 'caf\u00e9\u0080\u00ff'], ['x-c', ''], ['cookie', 'a=1'], ['cookie', 'b=2']];
  const head: RequestHead = { method: 'GET', scheme: 'https', authority: 'a', path: '/', headers: good };
  const wire = concatBytes(encodeRequestHead(head), encodeEnd(good));
  assert.deepEqual(decodeRequest(wire), { head, content: new Uint8Array(0), trailers: good });
  assert.ok(wire.includes(0xe9), 'obs-text travels as one octet (ByteString), not re-encoded as UTF-8');
  throwsCode(() => encodeRequestHead({ ...head, headers: [['x-a', 'snow \u2603']] }), BHTTP, 'non-ByteString value');
});

// ---------------------------------------------------------------------------------------
// Encoder contract

test('§3.2: content chunks are never empty — a zero Chunk Length would end the content', () => {
  assert.throws(() => encodeContentChunk(new Uint8Array(0)), TypeError);
  for (const n of [0, -1, 1.5, Number.NaN, 2 ** 53]) assert.throws(() => encodeContentChunkPrefix(n), TypeError, `prefix ${n}`);
  assert.deepEqual(encodeContentChunkPrefix(63), Uint8Array.of(63));
  assert.deepEqual(encodeContentChunkPrefix(64), Uint8Array.of(0x40, 64));
  assert.deepEqual(encodeContentChunkPrefix(2 ** 30), Uint8Array.of(0xc0, 0, 0, 0, 0x40, 0, 0, 0));
  assert.deepEqual(encodeContentChunk(Uint8Array.of(9, 8)), Uint8Array.of(2, 9, 8));
  assert.deepEqual(encodeEnd(), Uint8Array.of(0, 0));
});

test('decodeRequest/decodeResponse: the content is a view of the input when it arrived as one chunk', () => {
  const body = new Uint8Array(70_000).fill(1);
  const wire = encodeKnownLengthResponse({ status: 201, headers: [] }, body);
  const d = decodeResponse(wire);
  assert.equal(d.content.buffer, wire.buffer);
  assert.ok(sameBytes(d.content, body));
  throwsCode(() => decodeResponse(wire.subarray(0, 100)), BHTTP);
  throwsCode(() => decodeRequest(wire), BHTTP, 'a response is not a request');
});

/**
 * Property 5 for RESPONSES (the outer's side of the record layer, docs/PROTOCOL.md §5):
 * a multi-record response cut at any octet (every record boundary and inside every record),
 * or with records reordered, duplicated or dropped, is never presented as complete, and
 * whatever body octets were released before the error are a true prefix of the real body.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { concatBytes, ENVELOPE_HEADER_LENGTH, readU32, type OuterCall } from './index.ts';
import { collect, getHead, makePair, ORIGIN, roundTrip, type Pair } from '../test/helpers/protocol.ts';

const BODY = Uint8Array.from({ length: 400 }, (_, i) => (i * 31 + 7) & 0xff);

/** An established session whose inner seals 64-octet records. */
async function established(): Promise<Pair> {
  const p = await makePair({ endpoint: { policy: { recordSize: 64 } } });
  assert.equal((await roundTrip(p.alice_, p.endpoint, getHead(), null)).kind, 'ok');
  return p;
}

/** A fresh request on the session and the inner's genuine RESPONSE octets for it. */
async function freshResponse(p: Pair): Promise<{ call: OuterCall; wire: Uint8Array }> {
  const call = await p.alice_.prepare(ORIGIN);
  const env = await p.endpoint.open([await collect(call.seal(getHead('/big'), null))]);
  assert.ok(env.kind === 'envelope' && env.confirm === null);
  const req = await env.readRequest();
  assert.ok(req && req.kind === 'request');
  await collect(req.body);
  const wire = await collect(req.respond({ status: 200, headers: [['content-type', 'application/octet-stream']] }, BODY));
  return { call, wire };
}

/** Offsets where each record starts, and the records, of one message starting at 0. */
function split(wire: Uint8Array): { header: Uint8Array; records: Uint8Array[]; boundaries: number[] } {
  const records: Uint8Array[] = [];
  const boundaries: number[] = [];
  let off = ENVELOPE_HEADER_LENGTH;
  for (;;) {
    boundaries.push(off);
    const word = readU32(wire, off);
    const len = word & 0x7fffffff;
    records.push(wire.subarray(off, off + 4 + len));
    off += 4 + len;
    if (word & 0x80000000) break;
  }
  assert.equal(off, wire.length);
  return { header: wire.subarray(0, ENVELOPE_HEADER_LENGTH), records, boundaries };
}

/**
 * How the outer reads the answer: streamed record by record (open), or read whole and opened
 * in memory (openAtHand, the sidecar's path for a small answer with a Content-Length). Every
 * property below must hold for both.
 */
type Mode = 'streamed' | 'at hand';
const MODES: Mode[] = ['streamed', 'at hand'];

/** The outer's outcome for these octets: 'ok' only if the head and the whole body came out. */
async function outerOutcome(call: OuterCall, octets: Uint8Array, mode: Mode): Promise<{ outcome: string; released: Uint8Array }> {
  const parts: Uint8Array[] = [];
  try {
    if (mode === 'at hand') {
      parts.push((await call.openAtHand('ok', octets)).body);
    } else {
      const opened = await call.open('ok', [octets]);
      for await (const c of opened.body) parts.push(c);
    }
    return { outcome: 'ok', released: concatBytes(...parts) };
  } catch (e) {
    return { outcome: (e as { code?: string }).code ?? `uncoded: ${(e as Error).message}`, released: concatBytes(...parts) };
  }
}

/** Released octets are never wrong, only short (or, when only the final record is missing, all there but still failed). */
function assertPrefix(released: Uint8Array, what: string): void {
  assert.ok(released.length <= BODY.length, `${what}: more than the body was released`);
  assert.deepEqual(released, BODY.subarray(0, released.length), `${what}: released octets are not a prefix of the real body`);
}

for (const mode of MODES) {
  test(`${mode}: control: the untouched multi-record response opens whole`, async () => {
    const p = await established();
    const { call, wire } = await freshResponse(p);
    const s = split(wire);
    assert.ok(s.records.length >= 6, `needs several records, got ${s.records.length}`);
    const r = await outerOutcome(call, wire, mode);
    assert.equal(r.outcome, 'ok');
    assert.deepEqual(r.released, BODY);
  });

  test(`${mode}: property 5 (responses): truncation at every octet, every record boundary included, is SWS_ERR_TRUNCATED`, async () => {
    const p = await established();
    const probe = await freshResponse(p);
    const { boundaries } = split(probe.wire);
    const length = probe.wire.length;
    let boundaryCuts = 0;
    for (let cut = 0; cut < length; cut++) {
      const { call, wire } = await freshResponse(p);
      assert.equal(wire.length, length);
      const { outcome, released } = await outerOutcome(call, wire.subarray(0, cut), mode);
      // Nothing at all is "no response"; anything longer ends before the final record.
      assert.equal(outcome, cut === 0 ? 'SWS_ERR_MALFORMED' : 'SWS_ERR_TRUNCATED', `cut at ${cut} of ${length}`);
      assertPrefix(released, `cut at ${cut}`);
      if (boundaries.includes(cut)) boundaryCuts++;
    }
    assert.equal(boundaryCuts, boundaries.length, 'every record boundary was cut at');
  });

  test(`${mode}: property 5 (responses): reordered, duplicated, dropped or re-flagged records are refused with the expected code`, async () => {
    const p = await established();
    const n = split((await freshResponse(p)).wire).records.length;
    type Variant = [string, string, (r: Uint8Array[]) => Uint8Array[]];
    const setFinal = (rec: Uint8Array, final: boolean) => {
      const c = rec.slice();
      c[0] = final ? c[0]! | 0x80 : c[0]! & 0x7f;
      return c;
    };
    const variants: Variant[] = [];
    for (let i = 0; i + 1 < n; i++) variants.push([`swap ${i}/${i + 1}`, 'SWS_ERR_DECRYPT', (r) => [...r.slice(0, i), r[i + 1]!, r[i]!, ...r.slice(i + 2)]]);
    // A copy of record i at index i + 1 fails its nonce; a copy of the final record after it is trailing data.
    for (let i = 0; i < n; i++) variants.push([`duplicate ${i}`, i === n - 1 ? 'SWS_ERR_MALFORMED' : 'SWS_ERR_DECRYPT', (r) => [...r.slice(0, i + 1), r[i]!, ...r.slice(i + 1)]]);
    // Dropping a record shifts the later ones' indexes; dropping the final one leaves the message unfinished.
    for (let i = 0; i < n; i++) variants.push([`drop ${i}`, i === n - 1 ? 'SWS_ERR_TRUNCATED' : 'SWS_ERR_DECRYPT', (r) => [...r.slice(0, i), ...r.slice(i + 1)]]);
    for (let i = 0; i + 1 < n; i++) variants.push([`final flag set on ${i}`, 'SWS_ERR_DECRYPT', (r) => r.map((x, j) => (j === i ? setFinal(x, true) : x))]);
    variants.push(['final flag cleared on the last', 'SWS_ERR_DECRYPT', (r) => r.map((x, j) => (j === n - 1 ? setFinal(x, false) : x))]);
    variants.push(['reversed', 'SWS_ERR_DECRYPT', (r) => [...r].reverse()]);
    for (const [name, code, mutate] of variants) {
      const { call, wire } = await freshResponse(p);
      const s = split(wire);
      const { outcome, released } = await outerOutcome(call, concatBytes(s.header, ...mutate(s.records)), mode);
      assert.equal(outcome, code, name);
      if (code !== 'SWS_ERR_MALFORMED') assertPrefix(released, name);
    }
  });

  test(`${mode}: property 5 (responses): a response cannot take records from another response of the same session`, async () => {
    const p = await established();
    const a = await freshResponse(p);
    const b = await freshResponse(p);
    const sa = split(a.wire);
    const sb = split(b.wire);
    // b's header (its sequence) with a's records: every record was sealed for another nonce.
    const { outcome, released } = await outerOutcome(b.call, concatBytes(sb.header, ...sa.records), mode);
    assert.equal(outcome, 'SWS_ERR_DECRYPT');
    assert.equal(released.length, 0);
  });
}

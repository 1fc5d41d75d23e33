/** The node:crypto AEAD backend is a drop-in for the core's WebCrypto default: same octets, same failures. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { ByteReader, collect as _c, deriveKeyIv, directionFrom, encodeEnvelopeHeader, extractSessionPrk, fromHex, MessageTypes, openRequest, parseEnvelopeHeader, sealRequest, toHex, webCryptoAead } from '../test/vectors/vector-support.ts';
import { inspect } from 'node:util';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { KeySlots, nodeAead, UNZEROED_FROM } from './node-aead.ts';
import { makePair, roundTrip, getHead } from '../test/helpers/protocol.ts';

const v = JSON.parse(readFileSync(new URL('../test/vectors/sws-v1.json', import.meta.url), 'utf8'));

test('node:crypto backend reproduces the vector REQUEST octets exactly and opens them', async () => {
  const prk = await extractSessionPrk(fromHex(v.sessionId), fromHex(v.secret));
  const dir = await directionFrom(await deriveKeyIv(prk, 'c2s', fromHex(v.th1)), nodeAead);
  const header = encodeEnvelopeHeader(MessageTypes.request, fromHex(v.sessionId), v.request.sequence, v.request.timestamp);
  assert.equal(toHex(await _c(sealRequest(dir, header, v.request.head, fromHex(v.request.body)))), v.request.message);
  const wire = fromHex(v.request.message);
  const opened = await openRequest(await directionFrom(await deriveKeyIv(prk, 'c2s', fromHex(v.th1)), nodeAead), parseEnvelopeHeader(wire.subarray(0, 38)), new ByteReader([wire.subarray(38)]));
  assert.equal(toHex(await _c(opened.body)), v.request.body);
});

test('node:crypto and WebCrypto backends seal identically and each opens the other', async () => {
  const raw = crypto.getRandomValues(new Uint8Array(32));
  const [a, b] = [await nodeAead.importKey(raw.slice()), await webCryptoAead.importKey(raw.slice())];
  const nonce = crypto.getRandomValues(new Uint8Array(12));
  const aad = new Uint8Array([1, 2, 3]);
  for (const n of [0, 1, 1024, 65600]) {
    const pt = new Uint8Array(n).map((_, i) => (i * 7 + 3) & 0xff);
    const x = await nodeAead.seal(a, nonce, aad, pt);
    const y = await webCryptoAead.seal(b, nonce, aad, pt);
    assert.deepEqual(x, y, `${n} octets`);
    assert.deepEqual(new Uint8Array(await webCryptoAead.open(b, nonce, aad, x)), pt);
    assert.deepEqual(new Uint8Array(await nodeAead.open(a, nonce, aad, y)), pt);
  }
});

test('node:crypto backend fails closed: any flipped octet, wrong AAD or short input is SWS_ERR_DECRYPT', async () => {
  const key = await nodeAead.importKey(new Uint8Array(32).fill(9));
  const nonce = new Uint8Array(12);
  const sealed = await nodeAead.seal(key, nonce, new Uint8Array([1]), new Uint8Array(40).fill(5));
  for (let i = 0; i < sealed.length; i++) {
    const bad = sealed.slice();
    bad[i]! ^= 1;
    assert.throws(() => nodeAead.open(key, nonce, new Uint8Array([1]), bad), { code: 'SWS_ERR_DECRYPT' });
  }
  assert.throws(() => nodeAead.open(key, nonce, new Uint8Array([2]), sealed), { code: 'SWS_ERR_DECRYPT' });
  assert.throws(() => nodeAead.open(key, nonce, new Uint8Array([1]), sealed.subarray(0, 10)), { code: 'SWS_ERR_DECRYPT' });
});

test('a whole session works with the node:crypto backend on one side and WebCrypto on the other', async () => {
  const p = await makePair();
  const { OuterChannel, parseRekeyPolicy } = await import('../core/index.ts');
  const outer = new OuterChannel({ user: { name: 'alice', key: p.alice.priv }, inner: p.inner.pub, policy: parseRekeyPolicy('destination'), aead: nodeAead, now: () => p.clock.now });
  for (let i = 0; i < 3; i++) {
    const r = await roundTrip(outer, p.endpoint, { ...getHead(), method: 'POST' }, new Uint8Array(100_000).fill(i));
    assert.equal(r.kind, 'ok');
    if (r.kind === 'ok') assert.equal(r.body.length, 100_000);
  }
});

test('raw AES-128 and AES-256 keys seal octet for octet like WebCrypto, in every slot of several slabs', async () => {
  const nonce = crypto.getRandomValues(new Uint8Array(12));
  const aad = new Uint8Array([4, 5, 6]);
  const pt = new Uint8Array(300).map((_, i) => i & 0xff);
  const raws = Array.from({ length: 1100 }, (_, i) => crypto.getRandomValues(new Uint8Array(i % 2 === 0 ? 32 : 16)));
  const keys = await Promise.all(raws.map((r) => nodeAead.importKey(r.slice())));
  for (let i = 0; i < raws.length; i++) {
    const web = await webCryptoAead.importKey(raws[i]!.slice());
    const x = await nodeAead.seal(keys[i]!, nonce, aad, pt);
    assert.deepEqual(x, await webCryptoAead.seal(web, nonce, aad, pt), `key ${i}`);
    assert.deepEqual(new Uint8Array(await webCryptoAead.open(web, nonce, aad, x)), pt);
  }
});

test('an imported key shows none of its octets when inspected, stringified or serialised', async () => {
  const raw = crypto.getRandomValues(new Uint8Array(32));
  const key = await nodeAead.importKey(raw.slice());
  const hex = toHex(raw);
  const decimal = Array.from(raw).join(',');
  for (const shown of [inspect(key, { depth: 5, showHidden: true }), JSON.stringify(key), String(key)]) {
    assert.ok(!shown.includes(hex) && !shown.includes(decimal), shown);
  }
});

test('a key slot is zeroed and reused once its handle is unreachable (as node wipes a freed KeyObject)', async () => {
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  const store = new KeySlots();
  const raw = crypto.getRandomValues(new Uint8Array(32));
  let key: object | undefined = store.import(raw);
  const slot = store.octets(key);
  assert.deepEqual(slot, raw);
  assert.equal(store.inUse, 1);
  key = undefined;
  for (let i = 0; i < 100 && store.inUse > 0; i++) {
    gc();
    await new Promise((resolve) => setImmediate(resolve));
  }
  assert.equal(store.inUse, 0);
  assert.ok(slot.every((b) => b === 0), 'the freed slot still holds key octets');
  const next = store.octets(store.import(new Uint8Array(16).fill(1)));
  assert.equal(next.byteOffset, slot.byteOffset);
});

test('a key store refuses keys it did not import', async () => {
  const [a, b] = [new KeySlots(), new KeySlots()];
  assert.throws(() => b.octets(a.import(new Uint8Array(32))), TypeError);
  const foreign = await webCryptoAead.importKey(new Uint8Array(32));
  assert.throws(() => a.octets(foreign), TypeError);
  assert.throws(() => a.import(new Uint8Array(24)), RangeError);
});

/** Allocates buffers of `size` octets filled with 0xa5 and has the collector free them, so that malloc reuses dirty memory. */
async function freeDirtyMemory(size: number): Promise<void> {
  (() => {
    for (let i = 0; i < 64; i++) Buffer.allocUnsafeSlow(size).fill(0xa5);
  })();
  setFlagsFromString('--expose-gc');
  (runInNewContext('gc') as () => void)();
  setFlagsFromString('--no-expose-gc');
  // V8 may free the backing stores on a helper thread after the collection.
  await new Promise((r) => setTimeout(r, 50));
}

test('sealParts: the room asked for, then the same octets seal gives for the joined parts, however they are split', async () => {
  const raw = crypto.getRandomValues(new Uint8Array(32));
  const [a, b] = [await nodeAead.importKey(raw.slice()), await webCryptoAead.importKey(raw.slice())];
  const nonce = crypto.getRandomValues(new Uint8Array(12));
  const aad = new Uint8Array([9, 8, 7]);
  const data = new Uint8Array(70_000).map((_, i) => (i * 13 + 5) & 0xff);
  // Records from UNZEROED_FROM on are not zero-filled: give the allocator dirty memory to hand back.
  assert.ok(data.length > UNZEROED_FROM);
  await freeDirtyMemory(70_036);
  const splits: Uint8Array[][] = [
    [],
    [new Uint8Array(0)],
    [data.subarray(0, 1)],
    [data.subarray(0, 2), data.subarray(2, 65_538)],
    [data.subarray(0, 3), new Uint8Array(0), data.subarray(3, 17), data.subarray(17)],
  ];
  for (const parts of splits) {
    let n = 0;
    for (const p of parts) n += p.length;
    const joined = new Uint8Array(n);
    let at = 0;
    for (const p of parts) (joined.set(p, at), (at += p.length));
    const expected = await webCryptoAead.seal(b, nonce, aad, joined);
    for (const headroom of [0, 4]) {
      const out = await nodeAead.sealParts!(a, nonce, aad, parts, headroom);
      assert.equal(out.length, headroom + expected.length, `${parts.length} parts, room ${headroom}`);
      assert.deepEqual(out.subarray(headroom), expected, `${parts.map((p) => p.length).join('+')} octets, room ${headroom}`);
      // The room is zeroed even where the buffer is not zero-filled first, and the record is a plain Uint8Array that owns its memory.
      assert.deepEqual([...out.subarray(0, headroom)], new Array<number>(headroom).fill(0));
      assert.equal(Object.getPrototypeOf(out), Uint8Array.prototype);
      assert.equal(out.byteOffset, 0);
      assert.equal(out.buffer.byteLength, out.length);
    }
  }
});

test('a streamed body seals to the same wire octets with node:crypto (one buffer per record) as with WebCrypto (prefix and record apart)', async () => {
  const prk = await extractSessionPrk(fromHex(v.sessionId), fromHex(v.secret));
  const header = encodeEnvelopeHeader(MessageTypes.request, fromHex(v.sessionId), 7, v.request.timestamp);
  const body = new Uint8Array(200_000).map((_, i) => (i * 31 + (i >> 9)) & 0xff);
  // Chunks smaller, equal to and larger than a record, as a socket delivers them.
  const sizes = [1, 100, 16_384, 65_536, 70_000];
  async function* chunks(): AsyncGenerator<Uint8Array> {
    let at = 0;
    for (let i = 0; at < body.length; i++) {
      const n = Math.min(sizes[i % sizes.length]!, body.length - at);
      yield body.slice(at, at + n);
      at += n;
    }
  }
  const wire = async (aead: typeof nodeAead) => {
    const dir = await directionFrom(await deriveKeyIv(prk, 'c2s', fromHex(v.th1)), aead);
    const parts: Uint8Array[] = [];
    for await (const c of sealRequest(dir, header, v.request.head, chunks())) parts.push(c);
    return parts;
  };
  const [fast, reference] = [await wire(nodeAead), await wire(webCryptoAead)];
  assert.equal(toHex(await _c((async function* () { yield* fast; })())), toHex(await _c((async function* () { yield* reference; })())));
  assert.ok(fast.length < reference.length, `fewer chunks to write (${fast.length} against ${reference.length})`);
  const opened = await openRequest(await directionFrom(await deriveKeyIv(prk, 'c2s', fromHex(v.th1)), webCryptoAead), parseEnvelopeHeader(fast[0]!), new ByteReader([(await _c((async function* () { yield* fast.slice(1); })()))]));
  assert.deepEqual(await _c(opened.body), body);
});

/** `sealed` cut at each offset in `cuts` (as socket reads would deliver it). */
function cutAt(sealed: Uint8Array, cuts: number[]): Uint8Array[] {
  const out: Uint8Array[] = [];
  let at = 0;
  for (const c of [...cuts, sealed.length]) {
    out.push(sealed.subarray(at, c));
    at = c;
  }
  return out;
}

test('openParts: the plaintext of the joined pieces, however ciphertext and tag are split, including inside the tag', async () => {
  const key = await nodeAead.importKey(crypto.getRandomValues(new Uint8Array(32)));
  const nonce = crypto.getRandomValues(new Uint8Array(12));
  const aad = new Uint8Array([4, 5, 6]);
  for (const n of [0, 1, 1000, 65_600]) {
    const pt = new Uint8Array(n).map((_, i) => (i * 11 + 1) & 0xff);
    const sealed = nodeAead.seal(key, nonce, aad, pt) as Uint8Array;
    const l = sealed.length;
    // Inside the ciphertext, at the tag's first octet, inside the tag, one before the end, several at once.
    const cutSets = [[], [Math.floor(n / 2)], [n], [n + 7], [l - 1], [0, 1, n, n + 8, l]].map((cs) => [...new Set(cs.filter((c) => c >= 0 && c <= l))].sort((x, y) => x - y));
    for (const cuts of cutSets) {
      const parts = nodeAead.openParts!(key, nonce, aad, cutAt(sealed, cuts)) as Uint8Array[];
      assert.ok(parts.length >= 1, 'at least one part, possibly empty');
      assert.deepEqual(new Uint8Array(Buffer.concat(parts)), pt, `${n} octets cut at ${cuts.join(',')}`);
    }
  }
});

test('openParts fails closed like open: a flipped octet anywhere, in any piece, or a short input is SWS_ERR_DECRYPT', async () => {
  const key = await nodeAead.importKey(new Uint8Array(32).fill(3));
  const nonce = new Uint8Array(12);
  const aad = new Uint8Array([1]);
  const sealed = nodeAead.seal(key, nonce, aad, new Uint8Array(50).fill(7)) as Uint8Array;
  for (let i = 0; i < sealed.length; i++) {
    const bad = sealed.slice();
    bad[i]! ^= 1;
    assert.throws(() => nodeAead.openParts!(key, nonce, aad, cutAt(bad, [20, 58])), { code: 'SWS_ERR_DECRYPT' }, `octet ${i}`);
  }
  assert.throws(() => nodeAead.openParts!(key, nonce, aad, cutAt(sealed.subarray(0, 15), [5])), { code: 'SWS_ERR_DECRYPT' });
  assert.throws(() => nodeAead.openParts!(key, nonce, new Uint8Array([2]), cutAt(sealed, [30])), { code: 'SWS_ERR_DECRYPT' });
});

test('a streamed message whose records straddle every kind of read boundary opens the same with node:crypto (no joining) as with WebCrypto', async () => {
  const prk = await extractSessionPrk(fromHex(v.sessionId), fromHex(v.secret));
  const header = encodeEnvelopeHeader(MessageTypes.request, fromHex(v.sessionId), 9, v.request.timestamp);
  const body = new Uint8Array(300_000).map((_, i) => (i * 17 + (i >> 11)) & 0xff);
  const sealDir = await directionFrom(await deriveKeyIv(prk, 'c2s', fromHex(v.th1)), nodeAead);
  const wire = await _c(sealRequest(sealDir, header, v.request.head, body));
  const records = wire.subarray(38);
  // Socket-like reads: 64 KiB (a record never fits), odd sizes, and single octets at the start.
  for (const sizes of [[65_536], [1, 2, 3, 65_536], [7_919, 65_521], [40_000]]) {
    const reads: Uint8Array[] = [];
    for (let at = 0, i = 0; at < records.length; i++) {
      const n = Math.min(sizes[i % sizes.length]!, records.length - at);
      reads.push(records.subarray(at, at + n));
      at += n;
    }
    for (const aead of [nodeAead, webCryptoAead]) {
      const dir = await directionFrom(await deriveKeyIv(prk, 'c2s', fromHex(v.th1)), aead);
      const opened = await openRequest(dir, parseEnvelopeHeader(wire.subarray(0, 38)), new ByteReader(reads));
      assert.deepEqual(await _c(opened.body), body, `${aead.name}, reads of ${sizes.join('/')}`);
    }
  }
});

/** Byte helpers: hex is what session tables and replay caches key on, so it must be exact at any length; the reader parses every message. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fromHex, toHex } from './bytes.ts';
import { ByteReader } from './bytereader.ts';

test('toHex spells every octet as two lower-case digits, in order, at any length; fromHex inverts it', () => {
  const all = Uint8Array.from({ length: 256 }, (_, i) => i);
  assert.equal(toHex(all), Buffer.from(all).toString('hex'));
  assert.equal(toHex(new Uint8Array(0)), '');
  const big = crypto.getRandomValues(new Uint8Array(65_536));
  assert.equal(toHex(big), Buffer.from(big).toString('hex'));
  assert.equal(toHex(big.subarray(1000, 1016)), Buffer.from(big.subarray(1000, 1016)).toString('hex'));
  assert.deepEqual(fromHex(toHex(big)), big);
});

test('ByteReader.readParts hands out views of the chunks as they came (no joined copy), in order, and a short source is SWS_ERR_TRUNCATED', async () => {
  const a = new Uint8Array([1, 2, 3, 4]);
  const b = new Uint8Array([5, 6, 7]);
  const r = new ByteReader([a, b]);
  assert.deepEqual(await r.readExact(1), new Uint8Array([1]));
  const parts = await r.readParts(5);
  assert.deepEqual(parts, [new Uint8Array([2, 3, 4]), new Uint8Array([5, 6])]);
  assert.equal(parts[0]!.buffer, a.buffer, 'a view of the first chunk');
  assert.equal(parts[1]!.buffer, b.buffer, 'a view of the second chunk');
  assert.equal(r.consumed, 6);
  assert.deepEqual(await r.readParts(0), []);
  await assert.rejects(r.readParts(2), { code: 'SWS_ERR_TRUNCATED' });
});

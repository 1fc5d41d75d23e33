/** Byte helpers: hex is what session tables and replay caches key on, so it must be exact at any length. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fromHex, toHex } from './bytes.ts';

test('toHex spells every octet as two lower-case digits, in order, at any length; fromHex inverts it', () => {
  const all = Uint8Array.from({ length: 256 }, (_, i) => i);
  assert.equal(toHex(all), Buffer.from(all).toString('hex'));
  assert.equal(toHex(new Uint8Array(0)), '');
  const big = crypto.getRandomValues(new Uint8Array(65_536));
  assert.equal(toHex(big), Buffer.from(big).toString('hex'));
  assert.equal(toHex(big.subarray(1000, 1016)), Buffer.from(big.subarray(1000, 1016)).toString('hex'));
  assert.deepEqual(fromHex(toHex(big)), big);
});

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Slots } from './slots.ts';

test('Slots holds what was added until its slot is deleted, and iterates over exactly those', () => {
  const slots = new Slots<{ n: number }>();
  const a = { n: 1 };
  const b = { n: 2 };
  const c = { n: 3 };
  const sa = slots.add(a);
  const sb = slots.add(b);
  const sc = slots.add(c);
  assert.equal(slots.size, 3);
  assert.deepEqual([...slots], [a, b, c]);
  slots.delete(sb);
  assert.equal(slots.size, 2);
  assert.deepEqual([...slots], [a, c]);
  slots.delete(sb); // twice: no change
  assert.equal(slots.size, 2);
  slots.delete(sa);
  slots.delete(sc);
  assert.equal(slots.size, 0);
  assert.deepEqual([...slots], []);
});

test('Slots reuses freed slots, so the array grows only to the peak number held', () => {
  const slots = new Slots<object>();
  const held: number[] = [];
  for (let i = 0; i < 16; i++) held.push(slots.add({}));
  let highest = Math.max(...held);
  for (let round = 0; round < 1000; round++) {
    slots.delete(held.shift()!);
    const s = slots.add({});
    highest = Math.max(highest, s);
    held.push(s);
  }
  assert.equal(highest, 15);
  assert.equal(slots.size, 16);
});

test('Slots: a slot freed and taken again during iteration does not end the iteration', () => {
  const slots = new Slots<{ n: number }>();
  const items = [0, 1, 2, 3].map((n) => ({ n }));
  const at = items.map((i) => slots.add(i));
  const seen: number[] = [];
  for (const item of slots) {
    seen.push(item.n);
    if (item.n === 1) slots.delete(at[1]!); // what the inner does when it cuts a revoked request
  }
  assert.deepEqual(seen, [0, 1, 2, 3]);
  assert.deepEqual([...slots].map((i) => i.n), [0, 2, 3]);
});

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { hopByHopNames } from './headers.ts';

test('hopByHopNames: the fixed hop-by-hop names, plus what Connection names, in any case and spacing', () => {
  const fixed = hopByHopNames([]);
  assert.ok(fixed.has('keep-alive') && fixed.has('transfer-encoding') && fixed.has('upgrade'));
  const named = hopByHopNames([' X-Hop-One ,x-hop-two', 'keep-alive,,', 'Close']);
  for (const n of ['x-hop-one', 'x-hop-two', 'close', 'keep-alive', 'transfer-encoding']) assert.ok(named.has(n), n);
  assert.equal(fixed.has('x-hop-one'), false, 'the shared set is never extended');
  assert.equal(hopByHopNames(['x-other']).has('x-hop-one'), false, 'one message\'s names do not leak into the next');
});

test('hopByHopNames: a Connection value naming only hop-by-hop names (keep-alive) gives the shared set, not a copy', () => {
  assert.equal(hopByHopNames(['keep-alive']), hopByHopNames([]));
  assert.equal(hopByHopNames(['Keep-Alive, TE', ' upgrade ']), hopByHopNames([]));
  assert.notEqual(hopByHopNames(['keep-alive, x-hop']), hopByHopNames([]));
});

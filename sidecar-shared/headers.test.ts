import { test } from 'node:test';
import assert from 'node:assert/strict';
import { endToEndFields, fieldsFromRecord, hopByHopNames } from './headers.ts';

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

test('endToEndFields (a request at the outer): names lowercased, order and repeats kept; hop-by-hop, what Connection names and every Proxy-* field dropped', () => {
  const raw = ['Host', 'a.example', 'Connection', 'X-Hop, keep-alive', 'X-Hop', 'h', 'Keep-Alive', 'timeout=5', 'Proxy-Authorization', 'Basic eDp5', 'PROXY-Connection', 'keep-alive', 'Proxy-Anything', 'p', 'TE', 'trailers', 'Accept', 'a/1', 'accept', 'a/2', 'X-Dropped-By-Caller', 'd'];
  assert.deepEqual(endToEndFields(raw, (n) => n === 'x-dropped-by-caller'), [['host', 'a.example'], ['accept', 'a/1'], ['accept', 'a/2']]);
});

test("fieldsFromRecord (the web server's answer at the inner): hop-by-hop, what Connection names and Proxy-* dropped; repeated fields kept in order", () => {
  const fields = fieldsFromRecord({
    'content-type': 'text/plain',
    connection: 'x-hop',
    'x-hop': 'h',
    'keep-alive': 'timeout=5',
    'transfer-encoding': 'chunked',
    'proxy-authenticate': 'Basic realm="x"',
    'proxy-authentication-info': 'x',
    'set-cookie': ['a=1', 'b=2'],
    'x-epoch': '7',
    'x-gone': undefined,
  }, (n) => n === 'x-epoch');
  assert.deepEqual(fields, [['content-type', 'text/plain'], ['set-cookie', 'a=1'], ['set-cookie', 'b=2']]);
});

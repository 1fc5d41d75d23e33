/**
 * Young collections paced by record octets (sidecar-shared/young-gc.ts): one request per
 * `everyBytes` passed, none when off, V8's collector reached without a global `gc`, and a real
 * young (not full) collection when it asks.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { PerformanceObserver, constants, performance, type PerformanceEntry } from 'node:perf_hooks';
import { runInNewContext } from 'node:vm';
import { YoungGcPacer } from './young-gc.ts';

function fakeCollector() {
  const calls: unknown[] = [];
  let loads = 0;
  return {
    calls,
    get loads() {
      return loads;
    },
    load: () => {
      loads += 1;
      return (options: unknown) => void calls.push(options);
    },
  };
}

test('asks for one young collection each time the configured octets have passed, counting across calls', () => {
  const fake = fakeCollector();
  const pacer = new YoungGcPacer(fake.load);
  pacer.configure(1000);
  pacer.note(400);
  pacer.note(599);
  assert.equal(fake.calls.length, 0);
  pacer.note(1);
  assert.deepEqual(fake.calls, [{ type: 'minor' }]);
  pacer.note(999);
  assert.equal(fake.calls.length, 1);
  pacer.note(5000);
  assert.equal(fake.calls.length, 2, 'a large record is one request, not one per 1000 octets');
  assert.equal(pacer.collections, 2);
});

test('off by default and with 0: nothing counted, the collector never even looked up', () => {
  const fake = fakeCollector();
  const pacer = new YoungGcPacer(fake.load);
  pacer.note(1 << 30);
  pacer.configure(0);
  pacer.note(1 << 30);
  assert.equal(fake.calls.length, 0);
  assert.equal(fake.loads, 0);
  assert.equal(pacer.configure(10), true);
  assert.equal(pacer.configure(20), true);
  assert.equal(fake.loads, 1, 'looked up once, when first switched on');
  pacer.configure(0);
  pacer.note(100);
  assert.equal(fake.calls.length, 0, 'switched off again');
});

test('a V8 without a collector entry point leaves pacing off instead of failing', () => {
  let loads = 0;
  const pacer = new YoungGcPacer(() => {
    loads += 1;
    return undefined;
  });
  assert.equal(pacer.configure(1000), false);
  pacer.note(5000);
  assert.equal(pacer.collections, 0);
  assert.equal(pacer.configure(0), false);
  assert.equal(loads, 1);
});

test('what passes the interval counts toward the next one, whatever the record sizes', () => {
  const fake = fakeCollector();
  const pacer = new YoungGcPacer(fake.load);
  pacer.configure(1000);
  pacer.note(1500);
  assert.equal(fake.calls.length, 1);
  pacer.note(500);
  assert.equal(fake.calls.length, 2, '1500 + 500 octets are two intervals');
  for (let i = 0; i < 30; i++) pacer.note(700);
  assert.equal(fake.calls.length, 2 + 21, '21,000 more octets: 21 more');
});

test('a collector that throws stops pacing with one warning; the record that noted it is not failed', async () => {
  const pacer = new YoungGcPacer(() => () => {
    throw new TypeError('no such option');
  });
  assert.equal(pacer.configure(10), true);
  const warned = once(process, 'warning');
  pacer.note(10);
  const [warning] = (await warned) as [Error & { code?: string }];
  assert.equal(warning.code, 'SWS_YOUNG_GC_UNAVAILABLE');
  assert.match(warning.message, /no such option/);
  pacer.note(100);
  assert.equal(pacer.collections, 0, 'a refused call is not counted, and pacing is off');
});

test('reconfiguring starts the count over; a bad setting is refused', () => {
  const fake = fakeCollector();
  const pacer = new YoungGcPacer(fake.load);
  pacer.configure(100);
  pacer.note(90);
  pacer.configure(100);
  pacer.note(90);
  assert.equal(fake.calls.length, 0);
  for (const bad of [-1, 1.5, Number.NaN, Number.POSITIVE_INFINITY]) assert.throws(() => pacer.configure(bad), RangeError, String(bad));
});

test('with V8: a young collection happens (not a full one) and this program gets no global gc', async () => {
  const seen: PerformanceEntry[] = [];
  const observer = new PerformanceObserver((list) => seen.push(...list.getEntries()));
  observer.observe({ entryTypes: ['gc'] });
  try {
    const hadGc = typeof (globalThis as { gc?: unknown }).gc === 'function';
    const pacer = new YoungGcPacer();
    pacer.configure(1);
    const from = performance.now();
    pacer.note(1);
    const to = performance.now();
    assert.equal(pacer.collections, 1);
    assert.equal(typeof (globalThis as { gc?: unknown }).gc === 'function', hadGc, 'the global is left as it was');
    if (!hadGc) assert.equal(runInNewContext('typeof gc'), 'undefined', 'new contexts get no gc either: the flag was switched off again');
    // The collection ran inside note(); its entry is delivered asynchronously: wait for it (bounded).
    const ours = () => seen.filter((e) => e.startTime >= from && e.startTime <= to);
    for (let turns = 0; ours().length === 0; turns++) {
      assert.ok(turns < 10_000, 'the young collection asked for was reported');
      await new Promise((r) => setImmediate(r));
    }
    assert.deepEqual(ours().map((e) => (e as unknown as { detail: { kind: number } }).detail.kind), [constants.NODE_PERFORMANCE_GC_MINOR]);
  } finally {
    observer.disconnect();
  }
});

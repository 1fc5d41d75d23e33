// RFC 4303 §3.4.3 anti-replay window: protocol.md property 4 (replay protection with concurrency).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { prng } from '../test/helpers/prng.ts';
import { DEFAULT_REPLAY_WINDOW, ReplayWindow, type ReplayVerdict } from './replaywindow.ts';
import { MAX_SEQUENCE } from './wire.ts';
import { ErrorCodes, ReplayError } from './errors.ts';


function shuffle<T>(xs: T[], rand: () => number): T[] {
  for (let i = xs.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [xs[i], xs[j]] = [xs[j]!, xs[i]!];
  }
  return xs;
}

/** What the caller does: pre-check, then (after the tag verified) mark. */
function accept(w: ReplayWindow, seq: number): ReplayVerdict {
  const v = w.check(seq);
  if (v === 'ok') w.mark(seq);
  return v;
}

test('the default window is 1024 and sizes are multiples of 32 from 32 to 65536', () => {
  assert.equal(DEFAULT_REPLAY_WINDOW, 1024);
  assert.equal(new ReplayWindow().size, 1024);
  for (const size of [32, 96, 1024, 65536]) assert.equal(new ReplayWindow(size).size, size);
  for (const size of [0, 16, 31, 33, 100, 65568, 1.5 * 32, Number.NaN, -32]) {
    assert.throws(() => new ReplayWindow(size), RangeError, String(size));
  }
});

test('property 4: in-order sequence numbers are accepted once each, and replays of them are refused', () => {
  const w = new ReplayWindow();
  assert.equal(w.highest, 0);
  for (let s = 1; s <= 5000; s++) assert.equal(accept(w, s), 'ok');
  assert.equal(w.highest, 5000);
  for (let s = 5000 - 1023; s <= 5000; s++) assert.equal(w.check(s), 'replay', String(s));
  assert.equal(w.check(5000 - 1024), 'too-old');
  assert.equal(w.check(1), 'too-old');
});

test('property 4: out-of-order within the window is accepted, duplicates are replays', () => {
  const w = new ReplayWindow(64);
  for (const s of [10, 3, 7, 1, 64, 40, 2]) assert.equal(accept(w, s), 'ok', String(s));
  for (const s of [10, 3, 7, 1, 64, 40, 2]) assert.equal(w.check(s), 'replay', String(s));
  for (const s of [4, 5, 6, 8, 9, 11, 63]) assert.equal(w.check(s), 'ok', String(s));
  assert.equal(w.highest, 64);
});

test('check has no side effect; mark after the integrity check is what updates the window', () => {
  const w = new ReplayWindow(32);
  for (let i = 0; i < 3; i++) assert.equal(w.check(1000), 'ok');
  assert.equal(w.highest, 0);
  assert.equal(w.check(1), 'ok', 'a forged far-right number that failed its tag moved nothing');
});

test('left of the window is too-old; the window edge is exact', () => {
  const w = new ReplayWindow(32);
  accept(w, 100);
  assert.equal(w.check(100 - 31), 'ok', 'highest - size + 1 is the left edge, inside');
  assert.equal(w.check(100 - 32), 'too-old');
  assert.equal(w.check(1), 'too-old');
  accept(w, 69);
  assert.equal(w.check(69), 'replay');
});

test('huge jumps clear the window, and slots reused by the ring are not mistaken for replays', () => {
  for (const size of [32, 96, 1024]) {
    const w = new ReplayWindow(size);
    for (let s = 1; s <= size; s++) accept(w, s);
    // jump by size - 1: every slot but one is reused
    const a = size + size - 1;
    assert.equal(accept(w, a), 'ok');
    for (let s = size + 1; s < a; s++) assert.equal(w.check(s), 'ok', `size ${size} seq ${s}`);
    assert.equal(w.check(size), 'replay', 'the one number still in the window');
    // jump by exactly size and by more
    for (const next of [a + size, a + size + 1 + size * 7, 2 ** 39]) {
      assert.equal(accept(w, next), 'ok');
      for (let s = next - size + 1; s < next; s++) assert.equal(w.check(s), 'ok', `size ${size} seq ${s}`);
      assert.equal(w.check(next), 'replay');
      assert.equal(w.check(next - size), 'too-old');
    }
  }
  const w = new ReplayWindow();
  assert.equal(accept(w, MAX_SEQUENCE), 'ok', 'the largest uint40 sequence is valid');
  assert.equal(w.check(MAX_SEQUENCE), 'replay');
});

test('property 4 concurrency: 1024 requests in flight completing in random order are all accepted once', () => {
  const rand = prng(0xc0ffee);
  const w = new ReplayWindow(DEFAULT_REPLAY_WINDOW);
  const batch = shuffle(Array.from({ length: 1024 }, (_, i) => i + 1), rand);
  for (const s of batch) assert.equal(accept(w, s), 'ok', String(s));
  for (const s of batch) assert.equal(w.check(s), 'replay', String(s));
  assert.equal(w.highest, 1024);
});

test('property 4 concurrency: a steady stream of 256 in flight, completing in random order, is always accepted while its span fits the window', () => {
  // A request stays acceptable until `size` later-numbered ones have been accepted (RFC 4303):
  // the window bounds how far apart in sequence concurrent requests may be, not how many there are.
  const rand = prng(42);
  const w = new ReplayWindow(DEFAULT_REPLAY_WINDOW);
  const inFlight: number[] = [];
  let next = 1;
  let stragglerWaits = 0;
  for (let step = 0; step < 50_000; step++) {
    const oldest = inFlight.length === 0 ? next : Math.min(...inFlight);
    while (inFlight.length < 256 && next - oldest < DEFAULT_REPLAY_WINDOW) inFlight.push(next++);
    if (inFlight.length < 256) stragglerWaits++;
    const i = Math.floor(rand() * inFlight.length);
    const s = inFlight[i]!;
    inFlight[i] = inFlight[inFlight.length - 1]!;
    inFlight.pop();
    assert.equal(accept(w, s), 'ok');
    if (step % 97 === 0) assert.equal(w.check(s), 'replay');
  }
  assert.ok(stragglerWaits > 0, 'the schedule did produce stragglers far behind the newest');
});

test('mark without check of a replay or a too-old number throws SWS_ERR_REPLAY and changes nothing', () => {
  const w = new ReplayWindow(32);
  w.mark(5);
  w.mark(100);
  for (const s of [100, 5]) {
    assert.throws(
      () => w.mark(s),
      (err: unknown) => err instanceof ReplayError && err.code === ErrorCodes.REPLAY,
    );
  }
  assert.throws(() => w.mark(50), { code: ErrorCodes.REPLAY }); // left of the window
  assert.equal(w.highest, 100);
  assert.equal(w.check(99), 'ok');
});

test('hostile sequence numbers are rejected without throwing from check, and mark refuses them', () => {
  const w = new ReplayWindow();
  accept(w, 10);
  const hostile: unknown[] = [
    0,
    -1,
    -0,
    Number.NaN,
    Infinity,
    -Infinity,
    1.5,
    2 ** 40,
    2 ** 53,
    2 ** 53 + 2,
    Number.MAX_VALUE,
    '11',
    11n,
    null,
    undefined,
    {},
    [11],
  ];
  for (const s of hostile) {
    assert.equal(w.check(s as number), 'too-old', String(s));
    assert.throws(() => w.mark(s as number), { code: ErrorCodes.REPLAY }, String(s));
  }
  assert.equal(w.highest, 10);
  assert.equal(accept(w, 11), 'ok');
});

test('agrees with a reference model (a set of seen numbers) under random marks and jumps', () => {
  for (const size of [32, 96, 1024]) {
    const rand = prng(size);
    const w = new ReplayWindow(size);
    const seen = new Set<number>();
    let highest = 0;
    const model = (s: number): ReplayVerdict =>
      s > highest ? 'ok' : s <= highest - size ? 'too-old' : seen.has(s) ? 'replay' : 'ok';
    for (let i = 0; i < 20_000; i++) {
      const r = rand();
      const s =
        r < 0.6
          ? Math.max(1, highest - Math.floor(rand() * size * 1.2)) // near or left of the window
          : r < 0.95
            ? highest + 1 + Math.floor(rand() * 40) // small advance
            : highest + 1 + Math.floor(rand() * size * 3); // jump
      const expected = model(s);
      assert.equal(w.check(s), expected, `size ${size} step ${i} seq ${s}`);
      if (expected === 'ok' && rand() < 0.8) {
        w.mark(s);
        seen.add(s);
        highest = Math.max(highest, s);
      }
    }
  }
});

test('a window over storage the caller provides (shared with other session state) behaves the same and uses only that storage', () => {
  const rand = prng(7);
  const buffer = new ArrayBuffer(8 + 128 + 8);
  const guard = new Uint8Array(buffer);
  const own = new ReplayWindow(1024);
  const shared = new ReplayWindow(1024, new Uint32Array(buffer, 8, 32));
  for (let i = 0; i < 5_000; i++) {
    const s = 1 + Math.floor(rand() * 3_000) + Math.floor(i / 2);
    assert.equal(accept(shared, s), accept(own, s), `seq ${s}`);
  }
  assert.ok(guard.subarray(0, 8).every((b) => b === 0) && guard.subarray(136).every((b) => b === 0), 'wrote outside its words');
  assert.throws(() => new ReplayWindow(1024, new Uint32Array(31)), RangeError);
  assert.throws(() => new ReplayWindow(1024, new Uint32Array(32).fill(1)), RangeError);
});

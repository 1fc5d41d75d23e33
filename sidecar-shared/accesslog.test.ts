/**
 * The hand-written access line (accesslog.ts): the same bytes as pino's for the same record,
 * batched into pino's own destination without reordering, flushed on size, timer, shutdown and
 * exit, and silent above level info.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { ACCESS_MESSAGE, AccessBatch, AccessLog, BATCH_CHARS, BATCH_DELAY_MS } from './accesslog.ts';
import { createLogger, loggerOptions } from './logger.ts';
import { flushLog } from './lifecycle.ts';

/** A destination that records each write call. */
function capture(): { writes: string[]; lines: () => string[]; write(s: string): void } {
  const writes: string[] = [];
  return {
    writes,
    lines: () => writes.join('').split('\n').filter(Boolean),
    write: (s: string) => void writes.push(s),
  };
}

/** A sidecar logger writing to a capture, and pino itself configured the same way, at a fixed clock. */
function pair(t: TestContext, level?: string) {
  t.mock.method(Date, 'now', () => Date.UTC(2024, 0, 2, 3, 4, 5, 678));
  const ours = capture();
  const theirs = capture();
  const log = createLogger({ role: 'outer', destination: ours, ...(level ? { level } : {}) });
  const reference = pino(loggerOptions('outer', level), theirs);
  return { log, access: AccessLog.of(log), ours, reference, theirs };
}

const outerRecord = {
  method: 'GET',
  remote: '127.0.0.1',
  host: 'intranet.example',
  path: '/docs/a.html',
  portal: true,
  user: 'alice',
  inner: 'intranet',
  cache: undefined,
  keyState: 'ok',
  rekey: undefined,
  decision: 'allow',
  status: 200,
  ms: 1.2345678,
  outcome: 'ok',
};

test('an access line is byte for byte the line pino writes for the same record: keys, values, order, omitted undefined', (t) => {
  const { log, access, ours, reference, theirs } = pair(t);
  access.write(outerRecord);
  reference.info(outerRecord, ACCESS_MESSAGE);
  log.flush();
  assert.equal(ours.writes.join(''), theirs.writes.join(''));
  const line = ours.lines()[0]!;
  assert.match(line, /^\{"level":30,"time":"2024-01-02T03:04:05\.678Z","role":"outer","pid":\d+,"method":"GET",/);
  assert.match(line, /,"outcome":"ok","msg":"request"\}$/);
  assert.ok(!line.includes('cache') && !line.includes('rekey'), 'undefined fields are left out');
  const parsed = JSON.parse(line) as Record<string, unknown>;
  assert.deepEqual(Object.keys(parsed), ['level', 'time', 'role', 'pid', 'method', 'remote', 'host', 'path', 'portal', 'user', 'inner', 'keyState', 'decision', 'status', 'ms', 'outcome', 'msg']);
});

test('each line carries the time pino would stamp at that moment, to the millisecond', (t) => {
  const { log, access, ours, reference, theirs } = pair(t);
  let now = Date.UTC(2024, 0, 2, 3, 4, 5, 678);
  t.mock.method(Date, 'now', () => now);
  for (const step of [0, 0, 1, 999, 0, 86_400_000]) {
    now += step;
    access.write({ status: 200 });
    reference.info({ status: 200 }, ACCESS_MESSAGE);
  }
  log.flush();
  assert.equal(ours.writes.join(''), theirs.writes.join(''));
  assert.equal(new Set(ours.lines().map((l) => (JSON.parse(l) as { time: string }).time)).size, 4);
});

test('strings needing escapes round-trip and match pino: quotes, backslashes, control characters, non-ASCII, lone surrogates, long strings, each seen again', (t) => {
  const { log, access, ours, reference, theirs } = pair(t);
  const hard = ['"quoted"', 'back\\slash', 'ctl\u0000\u0001\n\r\t\u001f\u007f', 'é ü 日本 😀', 'lone \ud800 surrogate', `${'x'.repeat(150)}"\\`, `${'y'.repeat(300)}"\n`, ''];
  // Twice, and then past the number of values the line remembers: repeats come from that memory.
  const values = [...hard, ...hard, ...Array.from({ length: 1100 }, (_, i) => `v"${i}`), ...hard];
  for (const path of values) {
    const record = { user: path, path, status: 200, ms: 0.5, code: 'SWS_ERR_X' };
    access.write(record);
    reference.info(record, ACCESS_MESSAGE);
  }
  log.flush();
  assert.equal(ours.writes.join(''), theirs.writes.join(''));
  assert.deepEqual(ours.lines().map((l) => (JSON.parse(l) as { path: string }).path), values);
});

test('numbers as pino writes them: non-finite as null, -0 as 0, exponent form', (t) => {
  const { log, access, ours, reference, theirs } = pair(t);
  const record = { a: NaN, b: Infinity, c: -0, d: 1e21, e: 5e-7, f: 0.1 + 0.2, g: false };
  access.write(record);
  reference.info(record, ACCESS_MESSAGE);
  log.flush();
  assert.equal(ours.writes.join(''), theirs.writes.join(''));
});

test('a record the hand path cannot reproduce goes through pino: a redacted key is still censored, an object is still serialized', (t) => {
  const { log, access, ours, reference, theirs } = pair(t);
  const records = [{ user: 'alice', password: 'hunter2' }, { user: 'alice', headers: { cookie: 'c', accept: '*/*' } }, { key: 'k' }];
  for (const r of records) {
    access.write(r);
    reference.info(r, ACCESS_MESSAGE);
  }
  log.flush();
  assert.equal(ours.writes.join(''), theirs.writes.join(''));
  assert.ok(!ours.writes.join('').includes('hunter2'));
});

test('pino options that reshape the line (a name, a level formatter, another timestamp): access lines are pino\'s own, still batched in order', (t) => {
  t.mock.method(Date, 'now', () => 1_700_000_000_000);
  const variants = [
    { ...loggerOptions('inner'), name: 'sws' },
    { ...loggerOptions('inner'), formatters: { level: (label: string) => ({ level: label }) } },
    { ...loggerOptions('inner'), timestamp: pino.stdTimeFunctions.epochTime },
  ];
  for (const options of variants) {
    const ours = capture();
    const theirs = capture();
    const batch = new AccessBatch(ours);
    const log = pino(options, batch);
    const access = AccessLog.attach(log, batch, options);
    access.write({ path: '/a', status: 200 });
    log.warn('between');
    const reference = pino(options, theirs);
    reference.info({ path: '/a', status: 200 }, ACCESS_MESSAGE);
    reference.warn('between');
    assert.equal(ours.writes.join(''), theirs.writes.join(''));
  }
});

test('lines are batched: nothing is written per access line until the batch is handed over', (t) => {
  const { log, access, ours } = pair(t);
  for (let i = 0; i < 20; i++) access.write({ ...outerRecord, status: i });
  assert.equal(ours.writes.length, 0, 'still pending');
  log.flush();
  assert.equal(ours.writes.length, 1, 'twenty lines, one write');
  assert.deepEqual(ours.lines().map((l) => (JSON.parse(l) as { status: number }).status), [...Array(20).keys()]);
});

test('ordering: a pino line logged between access lines comes out between them', (t) => {
  const { log, access, ours } = pair(t);
  access.write({ ...outerRecord, path: '/1' });
  access.write({ ...outerRecord, path: '/2' });
  log.warn({ code: 'SWS_ERR_X' }, 'response body cut');
  assert.equal(ours.lines().length, 3, 'the warning took the pending access lines with it');
  access.write({ ...outerRecord, path: '/3' });
  log.info('outer sidecar stopped');
  access.write({ ...outerRecord, path: '/4' });
  log.flush();
  const seen = ours.lines().map((l) => JSON.parse(l) as { msg: string; path?: string });
  assert.deepEqual(
    seen.map((l) => l.path ?? l.msg),
    ['/1', '/2', 'response body cut', '/3', 'outer sidecar stopped', '/4'],
  );
});

test('flush on size: a batch past the size limit is handed over at once, without waiting for the timer', (t) => {
  const { access, ours } = pair(t);
  let written = 0;
  while (ours.writes.length === 0) {
    access.write(outerRecord);
    written++;
    assert.ok(written < 1000, 'the size limit never triggered');
  }
  const bytes = ours.writes[0]!.length;
  assert.ok(bytes >= BATCH_CHARS && bytes < BATCH_CHARS + 1024, `one batch of about ${BATCH_CHARS} characters, got ${bytes}`);
  assert.equal(ours.lines().length, written);
});

/** Resolves once `cond` holds; a readiness probe rather than a sleep (the timer may run late on a loaded machine). */
async function until(cond: () => boolean, what: string, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    assert.ok(Date.now() < end, `${what} did not happen within ${ms} ms`);
    await new Promise((r) => setImmediate(r));
  }
}

test('flush on timer: a lone line reaches the destination by itself once the batch delay passed', async (t) => {
  const ours = capture();
  const batch = new AccessBatch(ours);
  const appendedAt = performance.now();
  batch.append('{"a":1}\n');
  assert.equal(ours.writes.length, 0);
  await until(() => ours.writes.length > 0, 'the timer flush');
  // Held for the batch delay (timers may round down by a millisecond), not flushed on the next turn.
  assert.ok(performance.now() - appendedAt >= BATCH_DELAY_MS - 2, 'the line waited for the batch delay');
  assert.deepEqual(ours.writes, ['{"a":1}\n']);
  // Through the logger too.
  const { access, ours: sink } = pair(t);
  access.write(outerRecord);
  assert.equal(sink.writes.length, 0);
  await until(() => sink.writes.length > 0, 'the timer flush through the logger');
  assert.equal(sink.lines().length, 1);
});

test('flush on shutdown: flushLog (both sidecars\' stop) delivers pending access lines, then the destination\'s own flush runs', async () => {
  const calls: string[] = [];
  const dest = { write: (s: string) => void calls.push(`write ${s.split('\n').filter(Boolean).length}`), flush: (cb: () => void) => (calls.push('flush'), cb()) };
  const log = createLogger({ role: 'inner', destination: dest });
  AccessLog.of(log).write({ user: 'alice', status: 200 });
  AccessLog.of(log).write({ user: 'bob', status: 403 });
  assert.deepEqual(calls, []);
  await flushLog(log);
  assert.deepEqual(calls, ['write 2', 'flush']);
});

test('level: above info no access line is written, also after a change of level at run time', (t) => {
  const { log, access, ours } = pair(t, 'warn');
  access.write(outerRecord);
  log.flush();
  assert.equal(ours.writes.length, 0);
  log.level = 'info';
  access.write(outerRecord);
  log.level = 'silent';
  access.write(outerRecord);
  log.flush();
  assert.equal(ours.lines().length, 1);
});

test('a caller\'s own pino logger: access lines reach its destination, in order with its lines, as pino writes them', (t) => {
  t.mock.method(Date, 'now', () => 1_700_000_000_000);
  const ours = capture();
  const theirs = capture();
  const log = pino({ base: { role: 'test' } }, ours);
  const reference = pino({ base: { role: 'test' } }, theirs);
  const access = AccessLog.of(log);
  access.write({ path: '/a', status: 200 });
  log.warn('between');
  access.write({ path: '/b', status: 200 });
  reference.info({ path: '/a', status: 200 }, ACCESS_MESSAGE);
  reference.warn('between');
  reference.info({ path: '/b', status: 200 }, ACCESS_MESSAGE);
  assert.equal(ours.writes.join(''), theirs.writes.join(''));
  assert.equal(AccessLog.of(pino({ level: 'warn' }, ours)).write({ path: '/c' }), undefined);
  assert.equal(ours.lines().length, 3, 'no line above info');
});

const loggerUrl = new URL('./logger.ts', import.meta.url).href;
const accessUrl = new URL('./accesslog.ts', import.meta.url).href;
/** Runs `body` in a fresh Node process with a sidecar logger on fd 1; returns what it printed. */
function child(body: string): string {
  const script = `import { createLogger } from ${JSON.stringify(loggerUrl)}; import { AccessLog } from ${JSON.stringify(accessUrl)};
const log = createLogger({ role: 'outer' }); const access = AccessLog.of(log);
${body}`;
  const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { encoding: 'utf8', cwd: fileURLToPath(new URL('..', import.meta.url)), timeout: 30_000 });
  assert.equal(r.status, 0, r.stderr);
  return r.stdout;
}

test('exit paths: lines still pending when the process ends are written (natural end, process.exit, an uncaught exception); the batch timer does not hold the process open', () => {
  const natural = child(`access.write({ path: '/natural', status: 200 });`);
  assert.match(natural, /"path":"\/natural"/);
  const started = Date.now();
  const idle = child(`const { AccessBatch } = await import(${JSON.stringify(accessUrl)}); new AccessBatch({ write: (s) => setImmediate(() => process.stdout.write(s)) }, { delayMs: 60_000 }).append('{"idle":1}\\n');`);
  assert.equal(idle, '{"idle":1}\n');
  assert.ok(Date.now() - started < 30_000, 'the process ended without waiting for the timer');
  const exited = child(`access.write({ path: '/exit', status: 200 }); process.exit(0);`);
  assert.match(exited, /"path":"\/exit"/);
  const crashed = child(`access.write({ path: '/crash', status: 500 }); process.on('uncaughtException', () => process.exit(0)); setImmediate(() => { throw new Error('boom'); });`);
  assert.match(crashed, /"path":"\/crash"/);
  // In order on a natural end. (On process.exit a write already in flight in pino's SonicBoom can land after
  // what its exit flush writes synchronously: pino's own lines race the same way.)
  const ordered = child(`access.write({ path: '/1' }); log.info('two'); access.write({ path: '/3' });`);
  assert.deepEqual(ordered.trim().split('\n').map((l) => { const o = JSON.parse(l) as { path?: string; msg: string }; return o.path ?? o.msg; }), ['/1', 'two', '/3']);
});

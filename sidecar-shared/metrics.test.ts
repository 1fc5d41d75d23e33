/**
 * The per-request metrics (`answered`) are kept as plain numbers and handed to prom-client at
 * scrape time: what Prometheus reads must be what prom-client's own Counter and Histogram
 * would have exposed for the same requests, however often it scrapes.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Counter, Histogram, Registry } from 'prom-client';
import { createMetrics, DURATION_BUCKETS } from './metrics.ts';

/** `name{labels} value` lines of an exposition, labels sorted, for comparing two of them. */
function samples(text: string, prefix: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (!line.startsWith(prefix)) continue;
    const m = /^([a-z_]+)(?:\{(.*)\})? (\S+)$/.exec(line);
    assert.ok(m, `a sample line: ${line}`);
    const labels = (m[2] ?? '').split(',').filter(Boolean).sort().join(',');
    out.set(`${m[1]}{${labels}}`, Number(m[3]));
  }
  return out;
}

/** Requests as (outcome, status, seconds), with values on bucket bounds, between them, beyond the last. */
const REQUESTS: [string, number, number][] = [
  ['ok', 200, 0.0001],
  ['ok', 200, 0.0005],
  ['ok', 304, 0.0007],
  ['ok', 200, 0.003],
  ['denied', 403, 0.01],
  ['error', 502, 12],
  ['ok', 200, 2.5],
  ['aborted', 0, 0.2],
];

/** The same requests through prom-client's own Counter and Histogram, as the sidecars recorded them before. */
async function reference(): Promise<string> {
  const registry = new Registry();
  registry.setDefaultLabels({ role: 'outer' });
  const requests = new Counter({ name: 'sws_requests_total', help: 'h', labelNames: ['outcome', 'status'], registers: [registry] });
  const duration = new Histogram({ name: 'sws_request_duration_seconds', help: 'h', labelNames: ['outcome'], buckets: [...DURATION_BUCKETS], registers: [registry] });
  for (const [outcome, status, seconds] of REQUESTS) {
    requests.inc({ outcome, status: String(status) });
    duration.observe({ outcome }, seconds);
  }
  return registry.metrics();
}

test('answered: /metrics shows the same sws_requests_total and sws_request_duration_seconds samples as prom-client Counter and Histogram would', async () => {
  const m = createMetrics('outer');
  for (const [outcome, status, seconds] of REQUESTS) m.answered(outcome, status, seconds);
  const ours = await m.registry.metrics();
  const theirs = await reference();
  for (const name of ['sws_requests_total', 'sws_request_duration_seconds']) {
    assert.deepEqual(samples(ours, name), samples(theirs, name), name);
    assert.match(ours, new RegExp(`# TYPE ${name} ${name.endsWith('_total') ? 'counter' : 'histogram'}`));
  }
  assert.equal(samples(ours, 'sws_request_duration_seconds_bucket').get('sws_request_duration_seconds_bucket{le="+Inf",outcome="ok",role="outer"}'), 5);
});

test('answered: a second scrape does not count the same requests again; later ones are added; direct inc() calls still count', async () => {
  const m = createMetrics('inner');
  m.answered('ok', 200, 0.001);
  m.answered('ok', 200, 0.001);
  const first = samples(await m.registry.metrics(), 'sws_requests_total');
  assert.equal(first.get('sws_requests_total{outcome="ok",role="inner",status="200"}'), 2);
  const again = samples(await m.registry.metrics(), 'sws_requests_total');
  assert.deepEqual(again, first, 'scraping twice changes nothing');
  m.answered('ok', 200, 0.001);
  m.requests.inc({ outcome: 'refused', status: '405' });
  m.answered('odd', 1000, 0.001);
  const later = samples(await m.registry.metrics(), 'sws_requests_total');
  assert.equal(later.get('sws_requests_total{outcome="ok",role="inner",status="200"}'), 3);
  assert.equal(later.get('sws_requests_total{outcome="refused",role="inner",status="405"}'), 1);
  assert.equal(later.get('sws_requests_total{outcome="odd",role="inner",status="1000"}'), 1, 'a status beyond 599 is counted too');
  assert.equal(samples(await m.registry.metrics(), 'sws_request_duration_seconds_count').get('sws_request_duration_seconds_count{outcome="ok",role="inner"}'), 3);
});

test('answered: a duration that is not a finite number is refused with a TypeError, as prom-client refuses it', () => {
  const m = createMetrics('outer');
  assert.throws(() => m.answered('ok', 200, Number.NaN), TypeError);
});

test('cacheHit: sws_cache_hits_total by cache, counted once however often /metrics is scraped', async () => {
  const m = createMetrics('outer');
  const hits = async () => samples(await m.registry.metrics(), 'sws_cache_hits_total');
  m.cacheHit('outer');
  m.cacheHit('outer');
  m.cacheHit('inner');
  assert.equal((await hits()).get('sws_cache_hits_total{cache="outer",role="outer"}'), 2);
  assert.equal((await hits()).get('sws_cache_hits_total{cache="outer",role="outer"}'), 2, 'a second scrape adds nothing');
  m.cacheHit('outer');
  const later = await hits();
  assert.equal(later.get('sws_cache_hits_total{cache="outer",role="outer"}'), 3);
  assert.equal(later.get('sws_cache_hits_total{cache="inner",role="outer"}'), 1);
});

/**
 * Prometheus metrics shared by both sidecars (contract: sws_requests_total,
 * sws_key_exchanges_total, sws_cache_hits_total at least). One registry per sidecar
 * instance so that tests running two sidecars in one process do not mix counts.
 */
import { Counter, Gauge, Registry, collectDefaultMetrics, type Metric } from 'prom-client';
import { youngGc } from './young-gc.ts';

/** Upper bounds (seconds) of sws_request_duration_seconds. */
export const DURATION_BUCKETS: readonly number[] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

export interface SidecarMetrics {
  readonly registry: Registry;
  /** Requests by outcome (ok, denied, refused, error, ...) and HTTP status. */
  readonly requests: Counter<'outcome' | 'status'>;
  /** Key exchanges by reason (S101–S105) and result (ok, failed). */
  readonly keyExchanges: Counter<'reason' | 'result'>;
  readonly cacheHits: Counter<'cache'>;
  readonly cacheMisses: Counter<'cache'>;
  /** Conditional requests a cache sent, by result (not-modified, modified, error). */
  readonly cacheRevalidations: Counter<'cache' | 'result'>;
  /** Entries removed, by reason (size, expired, acl, user, replaced). */
  readonly cacheEvictions: Counter<'cache' | 'reason'>;
  readonly cacheBytes: Gauge<'cache'>;
  readonly cacheEntries: Gauge<'cache'>;
  /** Every rejection, by stable error code. */
  readonly rejections: Counter<'code'>;
  readonly duration: OutcomeHistogram;
  readonly sessions: Gauge;
  readonly inFlight: Gauge;
  /** Young collections the process asked for (sidecar-shared/young-gc.ts), read at each scrape. */
  readonly youngCollections: Counter;
  /** One response served from `cache` (sws_cache_hits_total), counted as cheaply as `answered`. */
  cacheHit(cache: string): void;
  /** The end of one request: sws_requests_total and sws_request_duration_seconds at once, cheaply. */
  answered(outcome: string, status: number, seconds: number): void;
}

export function createMetrics(role: 'inner' | 'outer'): SidecarMetrics {
  const registry = new Registry();
  registry.setDefaultLabels({ role });
  // The event-loop-delay histogram samples on a timer: at prom-client's default 10 ms an idle
  // sidecar woke ~107 times a second (one per pod, all day); 100 ms still gives its quantiles.
  collectDefaultMetrics({ register: registry, eventLoopMonitoringPrecision: 100 });
  const registers = [registry];
  const tally = new StatusTally();
  const requests = new Counter({
    name: 'sws_requests_total',
    help: 'Requests handled, by outcome and status',
    labelNames: ['outcome', 'status'] as const,
    registers,
    // Requests counted by `answered` since the last scrape join the counter now.
    collect(this: Counter<'outcome' | 'status'>) {
      tally.drain((outcome, status, n) => this.inc({ outcome, status: String(status) }, n));
    },
  });
  const hitsByCache = new Map<string, number>();
  const cacheHits = new Counter({
    name: 'sws_cache_hits_total',
    help: 'Responses served from a cache',
    labelNames: ['cache'] as const,
    registers,
    collect(this: Counter<'cache'>) {
      for (const [cache, n] of hitsByCache) if (n > 0) this.inc({ cache }, n);
      hitsByCache.clear();
    },
  });
  const duration = new OutcomeHistogram({
    name: 'sws_request_duration_seconds',
    help: 'Time from request start to response head, by outcome',
    buckets: DURATION_BUCKETS,
    registers,
  });
  return {
    registry,
    requests,
    keyExchanges: new Counter({ name: 'sws_key_exchanges_total', help: 'Session key exchanges (patent S103), by reason and result', labelNames: ['reason', 'result'], registers }),
    cacheHits,
    cacheMisses: new Counter({ name: 'sws_cache_misses_total', help: 'Cache look-ups that missed', labelNames: ['cache'], registers }),
    cacheRevalidations: new Counter({ name: 'sws_cache_revalidations_total', help: 'Conditional requests sent to refresh a cached response, by result', labelNames: ['cache', 'result'], registers }),
    cacheEvictions: new Counter({ name: 'sws_cache_evictions_total', help: 'Cached responses removed, by reason', labelNames: ['cache', 'reason'], registers }),
    cacheBytes: new Gauge({ name: 'sws_cache_bytes', help: 'Bytes held by the cache (bodies, headers and bookkeeping)', labelNames: ['cache'], registers }),
    cacheEntries: new Gauge({ name: 'sws_cache_entries', help: 'Responses held by the cache', labelNames: ['cache'], registers }),
    rejections: new Counter({ name: 'sws_rejections_total', help: 'Rejected requests or messages, by stable error code', labelNames: ['code'], registers }),
    duration,
    sessions: new Gauge({ name: 'sws_sessions', help: 'Sessions currently held', registers }),
    inFlight: new Gauge({ name: 'sws_requests_in_flight', help: 'Requests in progress', registers }),
    youngCollections: new Counter({
      name: 'sws_young_gc_requested_total',
      help: 'Young-generation collections this process asked V8 for, paced by record octets ($SWS_YOUNG_GC_MIB); process-wide',
      registers,
      // The pacer is one per process (node-aead's records): its count is read at each scrape, and
      // two sidecars in one process (tests) both report the process's total.
      collect(this: Counter) {
        this.reset();
        this.inc(youngGc.collections);
      },
    }),
    cacheHit(cache) {
      hitsByCache.set(cache, (hitsByCache.get(cache) ?? 0) + 1);
    },
    answered(outcome, status, seconds) {
      duration.observe(outcome, seconds);
      if (!tally.add(outcome, status)) requests.inc({ outcome, status: String(status) });
    },
  };
}

/*
 * Every request ends with one count and one duration (and every cache hit adds one). prom-client hashes the label object of
 * each call and its Histogram turns the bucket bound into a property key twice per
 * observation: inside a sidecar answering cache hits that was 1.4 us per `inc` and 1.8 us per
 * `observe` (p50, measured in the process under wrk), several per cent of a hit. Both are
 * kept here as plain numbers instead and handed to the registry when it is scraped.
 */

/** Requests by outcome and status (0-599) since the last scrape. */
export class StatusTally {
  readonly #byOutcome = new Map<string, Float64Array>();

  /** Counts one; false for a status outside 0-599 (the caller counts it itself). */
  add(outcome: string, status: number): boolean {
    if (!(status >= 0 && status < 600) || !Number.isInteger(status)) return false;
    let counts = this.#byOutcome.get(outcome);
    if (!counts) this.#byOutcome.set(outcome, (counts = new Float64Array(600)));
    counts[status]!++;
    return true;
  }

  /** Hands over every non-zero count and starts again from zero. */
  drain(to: (outcome: string, status: number, n: number) => void): void {
    for (const [outcome, counts] of this.#byOutcome) {
      for (let status = 0; status < counts.length; status++) {
        const n = counts[status]!;
        if (n === 0) continue;
        counts[status] = 0;
        to(outcome, status, n);
      }
    }
  }
}

interface Series {
  readonly buckets: Float64Array;
  sum: number;
  count: number;
}

interface ExportedValue {
  value: number;
  labels: Record<string, string | number>;
  metricName: string;
}

/**
 * A histogram with one label, `outcome`, exposed through a prom-client Registry exactly as a
 * prom-client Histogram with the same name, buckets and label would be (cumulative `_bucket`
 * series with `le`, `+Inf`, `_sum`, `_count`).
 */
export class OutcomeHistogram {
  readonly name: string;
  readonly help: string;
  readonly type = 'histogram';
  readonly aggregator = 'sum';
  readonly #bounds: readonly number[];
  readonly #series = new Map<string, Series>();

  constructor(opts: { name: string; help: string; buckets: readonly number[]; registers: Registry[] }) {
    this.name = opts.name;
    this.help = opts.help;
    this.#bounds = [...opts.buckets].sort((a, b) => a - b);
    // The registry asks a metric for `get()` (and `reset()`); this class has both.
    for (const r of opts.registers) r.registerMetric(this as unknown as Metric);
  }

  observe(outcome: string, seconds: number): void {
    if (!Number.isFinite(seconds)) throw new TypeError(`${this.name}: not a finite number of seconds: ${seconds}`);
    let s = this.#series.get(outcome);
    if (!s) this.#series.set(outcome, (s = { buckets: new Float64Array(this.#bounds.length), sum: 0, count: 0 }));
    s.sum += seconds;
    s.count++;
    const bounds = this.#bounds;
    for (let i = 0; i < bounds.length; i++) {
      if (seconds <= bounds[i]!) {
        s.buckets[i]!++;
        break;
      }
    }
  }

  async get(): Promise<{ name: string; help: string; type: string; aggregator: string; values: ExportedValue[] }> {
    const values: ExportedValue[] = [];
    for (const [outcome, s] of this.#series) {
      let below = 0;
      for (let i = 0; i < this.#bounds.length; i++) {
        below += s.buckets[i]!;
        values.push({ value: below, labels: { le: this.#bounds[i]!, outcome }, metricName: `${this.name}_bucket` });
      }
      values.push({ value: s.count, labels: { le: '+Inf', outcome }, metricName: `${this.name}_bucket` });
      values.push({ value: s.sum, labels: { outcome }, metricName: `${this.name}_sum` });
      values.push({ value: s.count, labels: { outcome }, metricName: `${this.name}_count` });
    }
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values };
  }

  reset(): void {
    this.#series.clear();
  }
}

/**
 * Prometheus metrics shared by both sidecars (contract: sws_requests_total,
 * sws_key_exchanges_total, sws_cache_hits_total at least). One registry per sidecar
 * instance so that tests running two sidecars in one process do not mix counts.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

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
  readonly duration: Histogram<'outcome'>;
  readonly sessions: Gauge;
  readonly inFlight: Gauge;
}

export function createMetrics(role: 'inner' | 'outer'): SidecarMetrics {
  const registry = new Registry();
  registry.setDefaultLabels({ role });
  collectDefaultMetrics({ register: registry });
  const registers = [registry];
  return {
    registry,
    requests: new Counter({ name: 'sws_requests_total', help: 'Requests handled, by outcome and status', labelNames: ['outcome', 'status'], registers }),
    keyExchanges: new Counter({ name: 'sws_key_exchanges_total', help: 'Session key exchanges (patent S103), by reason and result', labelNames: ['reason', 'result'], registers }),
    cacheHits: new Counter({ name: 'sws_cache_hits_total', help: 'Responses served from a cache', labelNames: ['cache'], registers }),
    cacheMisses: new Counter({ name: 'sws_cache_misses_total', help: 'Cache look-ups that missed', labelNames: ['cache'], registers }),
    cacheRevalidations: new Counter({ name: 'sws_cache_revalidations_total', help: 'Conditional requests sent to refresh a cached response, by result', labelNames: ['cache', 'result'], registers }),
    cacheEvictions: new Counter({ name: 'sws_cache_evictions_total', help: 'Cached responses removed, by reason', labelNames: ['cache', 'reason'], registers }),
    cacheBytes: new Gauge({ name: 'sws_cache_bytes', help: 'Bytes held by the cache (bodies, headers and bookkeeping)', labelNames: ['cache'], registers }),
    cacheEntries: new Gauge({ name: 'sws_cache_entries', help: 'Responses held by the cache', labelNames: ['cache'], registers }),
    rejections: new Counter({ name: 'sws_rejections_total', help: 'Rejected requests or messages, by stable error code', labelNames: ['code'], registers }),
    duration: new Histogram({
      name: 'sws_request_duration_seconds',
      help: 'Time from request start to response head, by outcome',
      labelNames: ['outcome'],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    }),
    sessions: new Gauge({ name: 'sws_sessions', help: 'Sessions currently held', registers }),
    inFlight: new Gauge({ name: 'sws_requests_in_flight', help: 'Requests in progress', registers }),
  };
}

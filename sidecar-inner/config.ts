/** The inner sidecar's configuration, parsed once at the edge (bin/) into this typed object. */
import type { InnerPolicy } from '../core/inner.ts';
import type { CacheLimits } from '../sidecar-shared/cache.ts';
import type { ListenAddress } from '../sidecar-shared/listen.ts';

export interface InnerSidecarConfig {
  readonly dataDir: string;
  readonly listen: ListenAddress;
  readonly adminListen?: ListenAddress;
  /** Header that carries the authenticated user to the WWW server (lowercase). */
  readonly forwardedUserHeader: string;
  readonly connectTimeoutMs: number;
  /** Time to wait for the upstream's response head before answering 504. */
  readonly upstreamHeadersTimeoutMs: number;
  /** Longest silence inside an upstream body before it is cut (long-lived streams need a large value). */
  readonly upstreamBodyTimeoutMs: number;
  readonly shutdownGraceMs: number;
  readonly logLevel: string;
  readonly policy: Partial<InnerPolicy>;
  /** The shared cache of WWW responses (docs/CACHING.md); absent or maxBytes 0: off. */
  readonly cache?: CacheLimits;
}

export const INNER_DEFAULTS = {
  forwardedUserHeader: 'x-forwarded-user',
  connectTimeoutMs: 5_000,
  upstreamHeadersTimeoutMs: 30_000,
  upstreamBodyTimeoutMs: 300_000,
  shutdownGraceMs: 10_000,
  logLevel: 'info',
} as const;

/** The outer sidecar's configuration, parsed once at the edge (bin/) into this typed object. */
import { availableParallelism } from 'node:os';
import type { RekeyPolicy } from '../core/keyrotation.ts';
import type { ListenAddress } from '../sidecar-shared/listen.ts';
import type { OuterCacheConfig } from './cache.ts';
import type { PortalConfig } from './portal.ts';
import type { FailureLimit } from './auth-limit.ts';

export interface OuterSidecarConfig {
  readonly dataDir: string;
  readonly listen: ListenAddress;
  readonly adminListen?: ListenAddress;
  readonly rekey: RekeyPolicy;
  /** Time to wait for the inner's answer head (it includes the WWW server's time). */
  readonly innerHeadersTimeoutMs: number;
  readonly innerBodyTimeoutMs: number;
  readonly connectTimeoutMs: number;
  readonly shutdownGraceMs: number;
  readonly logLevel: string;
  /** An HTTP proxy between outer and inner (claim 2: works through unmodified proxies). */
  readonly innerProxy?: string;
  /** Claim 7: serve clients (proxy and portal) over HTTPS with this certificate chain and key (PEM). */
  readonly tls?: { readonly certPem: string; readonly keyPem: string };
  /** The private per-user caches (docs/CACHING.md); absent or maxBytes 0: off. */
  readonly cache?: OuterCacheConfig;
  /** Portal mode for browsers without proxy settings; absent: forward-proxy mode only. */
  readonly portal?: PortalConfig;
  /** Forward-proxy mode: Clear-Site-Data "cache" when an address changes user (default on). */
  readonly clearOnUserSwitch?: boolean;
  /** Password checks (scrypt, 32 MiB each with the default cost) run at once; default defaultPasswordChecks(). */
  readonly passwordChecks?: number;
  /** Wrong passwords allowed per client address (IPv6: per /64) before its checks pause; default DEFAULT_FAILURE_LIMIT. */
  readonly authFailureLimit?: FailureLimit;
}

/**
 * Concurrent password checks by default: one per core, at most 4. scrypt is CPU-bound, so more
 * than the cores only lengthens each check, and each holds 128 × r × N octets while it runs
 * (32 MiB at the default cost): a burst of logins or of wrong passwords adds this many × 32 MiB.
 */
export function defaultPasswordChecks(): number {
  return Math.max(1, Math.min(4, availableParallelism()));
}

export const OUTER_DEFAULTS = {
  innerHeadersTimeoutMs: 60_000,
  innerBodyTimeoutMs: 300_000,
  connectTimeoutMs: 5_000,
  shutdownGraceMs: 10_000,
  logLevel: 'info',
} as const;

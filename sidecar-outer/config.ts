/** The outer sidecar's configuration, parsed once at the edge (bin/) into this typed object. */
import type { RekeyPolicy } from '../core/keyrotation.ts';
import type { ListenAddress } from '../sidecar-shared/listen.ts';

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
}

export const OUTER_DEFAULTS = {
  innerHeadersTimeoutMs: 60_000,
  innerBodyTimeoutMs: 300_000,
  connectTimeoutMs: 5_000,
  shutdownGraceMs: 10_000,
  logLevel: 'info',
} as const;

/**
 * Cache and portal flags of `sws inner start` and `sws outer start` (docs/CACHING.md), parsed
 * here at the edge into the sidecars' typed configuration.
 */
import { Option, type Command } from 'commander';
import { UsageError } from '../../store/index.ts';
import { DEFAULT_CACHE_LIMITS, parseByteSize, type CacheLimits } from '../../sidecar-shared/cache.ts';
import { DEFAULT_RECHECK_MS, type OuterCacheConfig } from '../../sidecar-outer/cache.ts';
import { PORTAL_DEFAULTS, type PortalConfig } from '../../sidecar-outer/portal.ts';
import { intFlag } from './run.ts';

export interface CacheFlags {
  cache: boolean;
  cacheSize?: string;
  cacheMaxObject?: string;
}

export interface OuterCacheFlags extends CacheFlags {
  cacheRecheck?: string;
  portal?: boolean;
  portalSuffix?: string;
  portalCookieSecure: 'auto' | 'always' | 'never';
  portalSessionLifetime?: string;
  portalIdleTimeout?: string;
  clearOnUserSwitch: boolean;
}

const MiB = 1024 * 1024;

export function addCacheOptions(cmd: Command, what: string): Command {
  return cmd
    .option('--cache-size <SIZE>', `bytes for the ${what} (e.g. 64MiB, 512KiB; 0 turns it off; default ${DEFAULT_CACHE_LIMITS.maxBytes / MiB}MiB)`)
    .option('--cache-max-object <SIZE>', `largest response the cache keeps (default ${DEFAULT_CACHE_LIMITS.maxObjectBytes / MiB}MiB)`)
    .option('--no-cache', `turn the ${what} off`);
}

export function addOuterOptions(cmd: Command): Command {
  return addCacheOptions(cmd, 'private per-user caches')
    .option('--cache-recheck <SECONDS>', `longest time a cached answer is served before the inner re-checks the user's access (default ${DEFAULT_RECHECK_MS / 1000}; 0: every time)`)
    .option('--portal', 'also serve browsers without proxy settings: a login page, then requests by Host header (docs/CACHING.md)')
    .option('--portal-suffix <SUFFIX>', 'portal host = site host + SUFFIX (e.g. .localhost, .portal.example.com); default: the site names point at the outer')
    .addOption(new Option('--portal-cookie-secure <WHEN>', 'Secure attribute on portal cookies').choices(['auto', 'always', 'never']).default(PORTAL_DEFAULTS.cookieSecure))
    .option('--portal-session-lifetime <SECONDS>', `longest life of a portal session (default ${PORTAL_DEFAULTS.sessionLifetimeMs / 1000})`)
    .option('--portal-idle-timeout <SECONDS>', `a portal session unused this long ends (default ${PORTAL_DEFAULTS.sessionIdleMs / 1000})`)
    .option('--no-clear-on-user-switch', 'forward-proxy mode: do not send Clear-Site-Data when a client address changes user');
}

function sizeFlag(value: string | undefined, flag: string): number | undefined {
  if (value === undefined) return undefined;
  const n = parseByteSize(value);
  if (n === undefined || n > 64 * 1024 * MiB) throw new UsageError('must be a size such as 64MiB, 512KiB or 1000000 (at most 64GiB)', flag);
  return n;
}

export function cacheLimits(opts: CacheFlags): CacheLimits {
  const maxBytes = opts.cache === false ? 0 : (sizeFlag(opts.cacheSize, '--cache-size') ?? DEFAULT_CACHE_LIMITS.maxBytes);
  const maxObjectBytes = sizeFlag(opts.cacheMaxObject, '--cache-max-object') ?? DEFAULT_CACHE_LIMITS.maxObjectBytes;
  return { maxBytes, maxObjectBytes: Math.min(maxObjectBytes, maxBytes) };
}

export function outerCacheConfig(opts: OuterCacheFlags): OuterCacheConfig {
  const recheck = intFlag(opts.cacheRecheck, '--cache-recheck', 0, 86_400);
  return { ...cacheLimits(opts), recheckMs: recheck === undefined ? DEFAULT_RECHECK_MS : recheck * 1000 };
}

export function portalConfig(opts: OuterCacheFlags): PortalConfig | undefined {
  if (!opts.portal) {
    if (opts.portalSuffix !== undefined) throw new UsageError('needs --portal', '--portal-suffix');
    return undefined;
  }
  const suffix = (opts.portalSuffix ?? '').toLowerCase();
  if (suffix !== '' && !/^\.[a-z0-9-]+(\.[a-z0-9-]+)*$/.test(suffix)) throw new UsageError('must start with a dot and be a DNS suffix, e.g. .localhost', '--portal-suffix');
  const lifetime = intFlag(opts.portalSessionLifetime, '--portal-session-lifetime', 60, 30 * 86_400);
  const idle = intFlag(opts.portalIdleTimeout, '--portal-idle-timeout', 60, 30 * 86_400);
  return {
    suffix,
    cookieSecure: opts.portalCookieSecure,
    sessionLifetimeMs: lifetime === undefined ? PORTAL_DEFAULTS.sessionLifetimeMs : lifetime * 1000,
    sessionIdleMs: idle === undefined ? PORTAL_DEFAULTS.sessionIdleMs : idle * 1000,
  };
}

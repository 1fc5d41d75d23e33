/**
 * A limit on wrong passwords per client address. Each password check is a scrypt (32 MiB,
 * tens of ms of a core), and Basic authentication lets anyone who reaches the proxy guess
 * freely; after `failures` wrong passwords from one address within `periodMs`, that address
 * gets no password check until the allowance refills (a token bucket: `failures` tokens,
 * refilled evenly over `periodMs`). Successes neither consume nor refill: a user who knows
 * one account's password cannot use it to reset the allowance for guessing another.
 *
 * IPv6 clients are counted per /64 (one host usually holds a whole /64), IPv4 per address.
 * At most `maxClients` addresses are tracked; beyond that the least recently failing one is
 * dropped, so the table stays bounded whatever an attacker sends.
 */
import { isIPv4, isIPv6 } from 'node:net';
import { SwsError } from '../core/errors.ts';

export interface FailureLimit {
  /** Wrong passwords an address may make in a row before it has to wait; 0 turns the limit off. */
  readonly failures: number;
  /** The time over which that allowance refills. */
  readonly periodMs: number;
}

export const DEFAULT_FAILURE_LIMIT: FailureLimit = { failures: 10, periodMs: 60_000 };

/** Thrown instead of checking a password for an address over its allowance. */
export class AuthRateLimitedError extends SwsError {
  /** Whole seconds until the next password check from this address is allowed (≥ 1). */
  readonly retryAfterSeconds: number;
  constructor(retryAfterMs: number) {
    super('SWS_ERR_AUTH_RATE_LIMITED', 'too many wrong passwords from this address');
    this.retryAfterSeconds = Math.max(1, Math.ceil(retryAfterMs / 1000));
  }
}

/** The key an address is counted under: IPv4 as is (also when IPv4-mapped), IPv6 by its /64. */
export function clientKey(address: string): string {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped && isIPv4(mapped[1]!)) return mapped[1]!;
  if (!isIPv6(address)) return address;
  const zone = address.indexOf('%');
  const bare = zone < 0 ? address : address.slice(0, zone);
  const [head, tail] = bare.includes('::') ? bare.split('::') : [bare, undefined];
  const left = head ? head.split(':') : [];
  const right = tail === undefined ? [] : tail ? tail.split(':') : [];
  // A dotted IPv4 tail stands for two groups: '::' fills in what the written groups leave of eight.
  const written = left.length + right.length + (right.at(-1)?.includes('.') ? 1 : 0);
  const groups = tail === undefined ? left : [...left, ...Array<string>(Math.max(0, 8 - written)).fill('0'), ...right];
  return `${groups
    .slice(0, 4)
    .map((g) => (Number.parseInt(g, 16) || 0).toString(16))
    .join(':')}::/64`;
}

interface Allowance {
  tokens: number;
  at: number;
}

export class FailureLimiter {
  readonly #limit: FailureLimit;
  readonly #maxClients: number;
  readonly #now: () => number;
  /** Insertion order = order of last failure: the first entry is the one to drop. */
  readonly #clients = new Map<string, Allowance>();

  constructor(limit: FailureLimit = DEFAULT_FAILURE_LIMIT, opts: { maxClients?: number; now?: () => number } = {}) {
    if (!Number.isInteger(limit.failures) || limit.failures < 0) throw new RangeError('failures must be a whole number ≥ 0');
    if (!(limit.periodMs > 0)) throw new RangeError('periodMs must be > 0');
    this.#limit = limit;
    this.#maxClients = opts.maxClients ?? 10_000;
    this.#now = opts.now ?? Date.now;
  }

  get enabled(): boolean {
    return this.#limit.failures > 0;
  }

  /** Addresses currently tracked (for tests and metrics). */
  get size(): number {
    return this.#clients.size;
  }

  /** Milliseconds until `address` may have a password checked; 0 when it may now. */
  waitMs(address: string): number {
    if (!this.enabled) return 0;
    const a = this.#refilled(clientKey(address));
    if (a === undefined || a.tokens >= 1) return 0;
    return Math.ceil(((1 - a.tokens) * this.#limit.periodMs) / this.#limit.failures);
  }

  /** A wrong password (or unknown user) from `address`. */
  failed(address: string): void {
    if (!this.enabled) return;
    const key = clientKey(address);
    const a = this.#refilled(key) ?? { tokens: this.#limit.failures, at: this.#now() };
    a.tokens = Math.max(0, a.tokens - 1);
    this.#clients.delete(key);
    this.#clients.set(key, a);
    if (this.#clients.size > this.#maxClients) this.#clients.delete(this.#clients.keys().next().value!);
  }

  /** The address's allowance brought up to now; a full one is forgotten (undefined). */
  #refilled(key: string): Allowance | undefined {
    const a = this.#clients.get(key);
    if (a === undefined) return undefined;
    const now = this.#now();
    a.tokens = Math.min(this.#limit.failures, a.tokens + (Math.max(0, now - a.at) * this.#limit.failures) / this.#limit.periodMs);
    a.at = now;
    if (a.tokens >= this.#limit.failures) {
      this.#clients.delete(key);
      return undefined;
    }
    return a;
  }
}

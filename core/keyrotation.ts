/**
 * When the outer exchanges a new session key with the inner: patent claim 8, embodiment 3
 * (Fig. 7, ¶0075–0076), protocol.md properties 6 and 7, protocol-reference.md §7. (The retry
 * rule of §9 after a lost session belongs to the sidecar; `invalidate` is its hook here.)
 *
 *   S101 first request?                         yes → S103
 *   S102 same destination as the previous one?  yes → S105, no → S103
 *   S103 exchange a new key    S104 exchange succeeded? (failure is reported)    S105 use the key
 *
 * The S102 test is replaceable (¶0076): every request, after N requests, after T seconds,
 * after B bytes; sws lets the operator combine them. Whatever the policy, the AEAD usage
 * ceilings and the limits the inner granted in its signed confirmation force a new exchange.
 *
 * `decideRekey` is the pure decision; `KeyRotation` makes concurrent requests share one
 * exchange. No timers, no I/O: the clock and the exchange itself are injected.
 */
import { PolicyError } from './errors.ts';
import { AEAD_CEILINGS } from './limits.ts';

// ---------------------------------------------------------------------------------------
// Policy: the replaceable S102 test
// ---------------------------------------------------------------------------------------

export type RekeyTrigger =
  | { kind: 'request' }
  | { kind: 'destination' }
  | { kind: 'count'; requests: number }
  | { kind: 'time'; seconds: number }
  | { kind: 'bytes'; bytes: number };

export type RekeyTriggerKind = RekeyTrigger['kind'];

export interface RekeyPolicy {
  readonly triggers: readonly RekeyTrigger[];
}

/** Canonical order of triggers in a formatted policy, and the syntax each one takes. */
export const REKEY_TRIGGER_SYNTAX = {
  request: 'request',
  destination: 'destination',
  count: 'count:N',
  time: 'time:SECONDS',
  bytes: 'bytes:N',
} as const satisfies Record<RekeyTriggerKind, string>;

const TRIGGER_ORDER = Object.keys(REKEY_TRIGGER_SYNTAX) as readonly RekeyTriggerKind[];

/** Largest value accepted for count:N, time:SECONDS and bytes:N (exact in a double). */
export const MAX_TRIGGER_VALUE = 2 ** 53;

const ALLOWED =
  'allowed: a comma-separated list of request, destination, count:N, time:SECONDS, bytes:N ' +
  '(N and SECONDS decimal integers from 1 to 2^53), each kind at most once';

/** The patent's own S102 test: exchange when the destination differs from the previous request's. */
export const DEFAULT_REKEY_POLICY: RekeyPolicy = Object.freeze({
  triggers: Object.freeze([Object.freeze({ kind: 'destination' as const })]),
});

/** Shows an operator-supplied item in a message: quoted, control characters escaped, length capped. */
function show(item: string): string {
  return JSON.stringify(item.length > 40 ? `${item.slice(0, 40)}…` : item);
}

function badItem(item: string, position: number, why: string): PolicyError {
  return new PolicyError(`rekey policy item ${position} ${show(item)} ${why}; ${ALLOWED}`);
}

function parseValue(raw: string | undefined, item: string, position: number): number {
  if (raw === undefined || raw === '') return fail('needs a value after ":"');
  if (!/^[0-9]+$/.test(raw)) return fail('must have a positive decimal integer value');
  // Compared exactly: above 2^53, Number() would round 2^53 + 1 down to 2^53.
  if (raw.length > 15 && BigInt(raw) > BigInt(MAX_TRIGGER_VALUE)) return fail('has a value larger than 2^53');
  const n = Number(raw);
  if (n === 0) return fail('must have a value of at least 1');
  return n;

  function fail(why: string): never {
    throw badItem(item, position, why);
  }
}

function parseItem(item: string, position: number): RekeyTrigger {
  const colon = item.indexOf(':');
  const word = colon === -1 ? item : item.slice(0, colon);
  const value = colon === -1 ? undefined : item.slice(colon + 1);
  switch (word) {
    case 'request':
    case 'destination':
      if (value !== undefined) throw badItem(item, position, `takes no value (write "${word}")`);
      return { kind: word };
    case 'count':
      return { kind: 'count', requests: parseValue(value, item, position) };
    case 'time':
      return { kind: 'time', seconds: parseValue(value, item, position) };
    case 'bytes':
      return { kind: 'bytes', bytes: parseValue(value, item, position) };
    default:
      throw badItem(item, position, 'is not a known trigger');
  }
}

function canonical(triggers: readonly RekeyTrigger[]): RekeyPolicy {
  const sorted = [...triggers].sort((a, b) => TRIGGER_ORDER.indexOf(a.kind) - TRIGGER_ORDER.indexOf(b.kind));
  return Object.freeze({ triggers: Object.freeze(sorted.map((t) => Object.freeze({ ...t }))) });
}

/**
 * Parses the `--rekey` value, e.g. `destination,count:100,time:300`. Spaces around items are
 * ignored; everything else is strict. The result lists triggers in canonical order and is
 * frozen. Throws PolicyError naming the offending item and listing what is allowed.
 */
export function parseRekeyPolicy(spec: string): RekeyPolicy {
  if (typeof spec !== 'string' || spec.trim() === '') {
    throw new PolicyError(`the rekey policy is empty; ${ALLOWED}`);
  }
  const seen = new Set<RekeyTriggerKind>();
  const triggers: RekeyTrigger[] = [];
  const items = spec.split(',');
  for (let i = 0; i < items.length; i++) {
    const item = (items[i] ?? '').trim();
    const position = i + 1;
    if (item === '') throw new PolicyError(`rekey policy item ${position} is empty; ${ALLOWED}`);
    const trigger = parseItem(item, position);
    if (seen.has(trigger.kind)) throw badItem(item, position, `repeats the trigger "${trigger.kind}"`);
    seen.add(trigger.kind);
    triggers.push(trigger);
  }
  return canonical(triggers);
}

function triggerValue(t: RekeyTrigger): number | undefined {
  switch (t.kind) {
    case 'request':
    case 'destination':
      return undefined;
    case 'count':
      return t.requests;
    case 'time':
      return t.seconds;
    case 'bytes':
      return t.bytes;
  }
}

/**
 * Canonical text of a policy (triggers in the order of REKEY_TRIGGER_SYNTAX, no spaces);
 * `parseRekeyPolicy(formatRekeyPolicy(p))` equals `p` for every policy parse can return.
 * Throws PolicyError for a hand-built policy that parse would reject.
 */
export function formatRekeyPolicy(p: RekeyPolicy): string {
  const items: string[] = [];
  for (const t of canonical(p.triggers).triggers) {
    const v = triggerValue(t);
    items.push(v === undefined ? t.kind : `${t.kind}:${String(v)}`);
  }
  const text = items.join(',');
  parseRekeyPolicy(text); // one validator for both directions
  return text;
}

// ---------------------------------------------------------------------------------------
// Hard limits: independent of the policy
// ---------------------------------------------------------------------------------------

/**
 * The outer rotates this far before a hard ceiling, because the request about to be sent
 * adds records and octets the outer cannot predict, and takes time to arrive: a 4 GiB body
 * (65 536 records of 64 KiB) and a minute of flight fit between the two thresholds. A body
 * larger than that is stopped by the record layer at the hard ceiling (fail closed).
 * `grantExpiryMs` is the same margin for the `expiresAt` the inner granted.
 */
export const REKEY_MARGIN = {
  records: 2 ** 16,
  bytes: 2 ** 32,
  failedOpens: 0,
  ageMs: 60 * 1000,
  grantExpiryMs: 5 * 1000,
} as const;

// ---------------------------------------------------------------------------------------
// S101–S105: the decision
// ---------------------------------------------------------------------------------------

/** What the outer knows about the session key it holds. All numbers on the injected clock (ms). */
export interface SessionUsage {
  readonly establishedAt: number;
  /** Requests sent on this key. */
  readonly requests: number;
  /** Body and head plaintext octets, both directions. */
  readonly bytes: number;
  /** max(records sealed c2s, records opened s2c). */
  readonly records: number;
  readonly failedOpens: number;
  /** Origin (scheme://host:port) of the previous request on this key; '' when none yet. */
  readonly lastDestination: string;
  /** Limits from the inner's signed EXCHANGE_CONFIRM; `expiresAt` on the same clock as `now`. */
  readonly granted?: { maxRequests: number; expiresAt: number; maxBytes: number };
}

export const EXCHANGE_REASONS = [
  'first-request',
  'destination-changed',
  'every-request',
  'request-count',
  'time-elapsed',
  'byte-count',
  'ceiling-records',
  'ceiling-bytes',
  'ceiling-failures',
  'ceiling-age',
  'granted-limit',
  'session-lost',
] as const;

export type ExchangeReason = (typeof EXCHANGE_REASONS)[number];

export type RekeyDecision = { kind: 'exchange'; reason: ExchangeReason } | { kind: 'reuse'; reason: 'within-policy' };

// Decisions are shared frozen constants: the hot path allocates nothing to decide.
const REUSE: RekeyDecision = Object.freeze({ kind: 'reuse', reason: 'within-policy' });
const EXCHANGE = Object.freeze(
  Object.fromEntries(EXCHANGE_REASONS.map((reason) => [reason, Object.freeze({ kind: 'exchange', reason })])),
) as Readonly<Record<ExchangeReason, RekeyDecision>>;

/** The frozen decision object for an exchange with this reason. */
export function exchangeDecision(reason: ExchangeReason): RekeyDecision {
  return EXCHANGE[reason];
}

/**
 * Every limit test is written `!(used < limit)`, so a NaN or missing counter exchanges
 * (fail closed) instead of silently reusing a key.
 */
function decide(
  policy: RekeyPolicy,
  u: SessionUsage,
  requests: number,
  lastDestination: string,
  destination: string,
  now: number,
): RekeyDecision {
  const age = now - u.establishedAt;
  // Hard ceilings first, whatever the policy (property 6).
  if (!(u.records < AEAD_CEILINGS.records - REKEY_MARGIN.records)) return EXCHANGE['ceiling-records'];
  if (!(u.bytes < AEAD_CEILINGS.bytes - REKEY_MARGIN.bytes)) return EXCHANGE['ceiling-bytes'];
  if (!(u.failedOpens < AEAD_CEILINGS.failedOpens - REKEY_MARGIN.failedOpens)) return EXCHANGE['ceiling-failures'];
  // A clock that went backwards cannot prove the key is young enough.
  if (!(age >= 0 && age < AEAD_CEILINGS.ageMs - REKEY_MARGIN.ageMs)) return EXCHANGE['ceiling-age'];
  const g = u.granted;
  if (
    g !== undefined &&
    (!(requests < g.maxRequests) || !(u.bytes < g.maxBytes) || !(now < g.expiresAt - REKEY_MARGIN.grantExpiryMs))
  ) {
    return EXCHANGE['granted-limit'];
  }
  // S102 and its replacements.
  for (const t of policy.triggers) {
    switch (t.kind) {
      case 'request':
        return EXCHANGE['every-request'];
      case 'destination':
        if (lastDestination !== '' && lastDestination !== destination) return EXCHANGE['destination-changed'];
        break;
      case 'count':
        if (!(requests < t.requests)) return EXCHANGE['request-count'];
        break;
      case 'time':
        if (!(age < t.seconds * 1000)) return EXCHANGE['time-elapsed'];
        break;
      case 'bytes':
        if (!(u.bytes < t.bytes)) return EXCHANGE['byte-count'];
        break;
    }
  }
  return REUSE;
}

/**
 * S101–S105 for the next request to `next.destination` at `next.now`.
 *
 * - S101: no session → exchange, `first-request`.
 * - Hard limits, checked before the policy: AEAD_CEILINGS less REKEY_MARGIN (`ceiling-*`),
 *   then the granted limits (`granted-limit`: requests ≥ maxRequests, bytes ≥ maxBytes, or
 *   within REKEY_MARGIN.grantExpiryMs of expiresAt). A clock earlier than `establishedAt`
 *   counts as `ceiling-age`.
 * - Policy triggers in canonical order: `request` always; `destination` when the origin
 *   differs from `lastDestination` (a key with no request yet has no previous destination);
 *   `count:N` once N requests were sent (a key serves at most N); `time:S` once the key is
 *   S seconds old (no request goes on a key aged S s or more); `bytes:N` once N octets were
 *   used (the request that crosses N finishes on the old key; the next one rekeys).
 * - Otherwise reuse (S105).
 *
 * Destinations are compared exactly: pass origins in one canonical form.
 */
export function decideRekey(
  policy: RekeyPolicy,
  usage: SessionUsage | undefined,
  next: { destination: string; now: number },
): RekeyDecision {
  if (usage === undefined) return EXCHANGE['first-request'];
  return decide(policy, usage, usage.requests, usage.lastDestination, next.destination, next.now);
}

// ---------------------------------------------------------------------------------------
// Single flight: concurrent requests share one exchange (property 7)
// ---------------------------------------------------------------------------------------

interface Slot<S> {
  readonly session: S;
  /** Acquires handed this session (counted before the sidecar records them in usageOf). */
  handed: number;
  /** Destination of the last acquire handed this session. */
  lastDestination: string;
}

interface Waiter<S> {
  readonly destination: string;
  readonly resolve: (r: Acquired<S>) => void;
  readonly reject: (err: unknown) => void;
}

/** An exchange in flight: its starter and the acquires that joined it. */
interface Group<S> {
  readonly reason: ExchangeReason;
  readonly destination: string;
  readonly generation: number;
  readonly waiters: Waiter<S>[];
}

/** A key that has carried no request yet, to ask the policy whether a group may grow. */
const FRESH: SessionUsage = Object.freeze({
  establishedAt: 0,
  requests: 0,
  bytes: 0,
  records: 0,
  failedOpens: 0,
  lastDestination: '',
});

export interface KeyRotationOptions<S> {
  readonly policy: RekeyPolicy;
  /** Milliseconds since the epoch (same clock as SessionUsage.establishedAt and granted.expiresAt). */
  readonly now: () => number;
  /** S103: runs one exchange; resolves with the new session once its confirmation verified (S104). */
  readonly exchange: (reason: ExchangeReason) => Promise<S>;
  /** Reads the usage the sidecar records on the session. */
  readonly usageOf: (s: S) => SessionUsage;
}

export interface Acquired<S> {
  readonly session: S;
  readonly decision: RekeyDecision;
  /** True when this acquire joined an exchange another acquire started; `decision` then names that exchange's reason. */
  readonly shared: boolean;
}

/**
 * Holds the outer's current session for one (user, inner) pair and applies S101–S105 to
 * each request. Single-threaded; "concurrent" means between awaits.
 *
 * - Each acquire counts against its session when handed out, before the sidecar records it
 *   in `usageOf`, so concurrent acquires cannot overrun `count:N` or the granted
 *   `maxRequests`; S102 compares with the destination of the last acquire handed the key.
 * - An acquire that may reuse the current key does so at once, even while an exchange is in
 *   flight (the old key stays valid: the sidecar keeps it until its requests settle).
 * - An acquire that needs a new key joins an exchange in flight when the policy lets that
 *   future key serve it too (same origin under `destination`, fewer than N under `count:N`,
 *   never under `request`); otherwise it starts its own exchange, in parallel. So 50
 *   concurrent first requests to one origin make one exchange; requests to two origins make
 *   two; under `request` each request has its own.
 * - When an exchange resolves, its starter gets the key; the joiners get it in arrival
 *   order, each checked again against the key's real usage and granted limits. A joiner
 *   the key cannot serve starts an exchange of its own, which it always gets: every acquire
 *   settles after at most two exchanges (or the first failure).
 * - Under `destination`, alternating origins ping-pong: every change of origin is an
 *   exchange, and every key serves one origin only. That is the policy, not a loop.
 * - S104: a failed exchange rejects its starter and every joiner with the same error and is
 *   forgotten at once; the next acquire starts a new one.
 * - When exchanges overlap, the one started last becomes `current()`, whatever order they
 *   finish in; an older one that finishes later still serves its own starter and joiners.
 */
export class KeyRotation<S> {
  readonly #policy: RekeyPolicy;
  readonly #now: () => number;
  readonly #exchange: (reason: ExchangeReason) => Promise<S>;
  readonly #usageOf: (s: S) => SessionUsage;
  /** Whether a future key could ever serve a second request (false under `request`). */
  readonly #shareable: boolean;
  #slot: Slot<S> | undefined;
  /** Exchanges in flight; undefined rather than an empty Set (~190 octets) while the channel is idle. */
  #inFlight: Set<Group<S>> | undefined;
  /** Generation of the last exchange started, and of the session that is current. */
  #started = 0;
  #installed = 0;
  /** The inner lost the current session and no newer one replaced it yet. */
  #lost = false;

  constructor(opts: KeyRotationOptions<S>) {
    this.#policy = opts.policy;
    this.#now = opts.now;
    this.#exchange = opts.exchange;
    this.#usageOf = opts.usageOf;
    this.#shareable = !opts.policy.triggers.some((t) => t.kind === 'request' || (t.kind === 'count' && t.requests <= 1));
  }

  /** The session to use for the next request to `destination`, and why (S101–S105). */
  async acquire(destination: string): Promise<Acquired<S>> {
    const slot = this.#slot;
    const decision =
      slot === undefined ? EXCHANGE[this.#lost ? 'session-lost' : 'first-request'] : this.#decide(slot, destination);
    if (slot !== undefined && decision.kind === 'reuse') {
      slot.handed++;
      slot.lastDestination = destination;
      return { session: slot.session, decision, shared: false };
    }
    const group = this.#joinable(destination);
    if (group !== undefined) {
      return new Promise<Acquired<S>>((resolve, reject) => {
        group.waiters.push({ destination, resolve, reject });
      });
    }
    return this.#start(decision.kind === 'exchange' ? decision.reason : 'first-request', destination);
  }

  /**
   * The inner reported that it lost `session` (restart, expiry): the next acquire exchanges
   * with reason `session-lost`. No effect when `session` is not the current one (a newer
   * session already replaced it, or it never became current).
   */
  invalidate(session: S, _reason: 'session-lost'): void {
    if (this.#slot === undefined || this.#slot.session !== session) return;
    this.#slot = undefined;
    this.#lost = true;
  }

  current(): S | undefined {
    return this.#slot?.session;
  }

  #decide(slot: Slot<S>, destination: string): RekeyDecision {
    const u = this.#usageOf(slot.session);
    const last = slot.lastDestination !== '' ? slot.lastDestination : u.lastDestination;
    return decide(this.#policy, u, Math.max(u.requests, slot.handed), last, destination, this.#now());
  }

  /** The first exchange in flight whose key the policy would let serve this request too. */
  #joinable(destination: string): Group<S> | undefined {
    if (!this.#shareable || this.#inFlight === undefined) return undefined;
    for (const g of this.#inFlight) {
      if (decide(this.#policy, FRESH, 1 + g.waiters.length, g.destination, destination, 0).kind === 'reuse') return g;
    }
    return undefined;
  }

  /** An exchange finished, either way: forget it, and the Set once it is empty. */
  #landed(group: Group<S>): void {
    this.#inFlight?.delete(group);
    if (this.#inFlight?.size === 0) this.#inFlight = undefined;
  }

  /** S103/S104: the starter gets the new session; then the joiners, in order. */
  async #start(reason: ExchangeReason, destination: string): Promise<Acquired<S>> {
    const group: Group<S> = { reason, destination, generation: ++this.#started, waiters: [] };
    (this.#inFlight ??= new Set()).add(group);
    let session: S;
    try {
      session = await this.#exchange(reason);
    } catch (err) {
      this.#landed(group);
      for (const w of group.waiters) w.reject(err);
      throw err;
    }
    this.#landed(group);
    const slot: Slot<S> = { session, handed: 1, lastDestination: destination };
    if (group.generation > this.#installed) {
      this.#installed = group.generation;
      this.#slot = slot;
      this.#lost = false;
    }
    for (const w of group.waiters) this.#admit(slot, w, reason);
    return { session, decision: EXCHANGE[reason], shared: false };
  }

  #admit(slot: Slot<S>, w: Waiter<S>, reason: ExchangeReason): void {
    let d: RekeyDecision;
    try {
      d = this.#decide(slot, w.destination);
    } catch (err) {
      w.reject(err);
      return;
    }
    if (d.kind === 'reuse') {
      slot.handed++;
      slot.lastDestination = w.destination;
      w.resolve({ session: slot.session, decision: EXCHANGE[reason], shared: true });
    } else {
      this.#start(d.reason, w.destination).then(w.resolve, w.reject);
    }
  }
}

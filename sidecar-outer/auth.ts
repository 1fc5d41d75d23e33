/**
 * Outer authentication of users (patent 0067: user name + password on first access).
 * Passwords are checked against the store's memory-hard hash once; a success is then
 * remembered as an HMAC under a per-process random key, so later requests cost one HMAC and
 * a constant-time compare instead of a scrypt. A keep-alive connection also remembers the
 * exact Proxy-Authorization value it last proved, so its next requests cost one constant-time
 * compare (cache hits are too cheap for an HMAC each). Any store change forgets every success.
 * Identical credentials that arrive while their check runs wait for that check instead of
 * starting another (a browser opens several connections with the same header at once).
 * Wrong passwords are limited per client address (auth-limit.ts): an address over its
 * allowance gets AuthRateLimitedError instead of a check; remembered successes still pass.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { AuthRateLimitedError, FailureLimiter } from './auth-limit.ts';

export interface PasswordChecker {
  verifyPassword(user: string, password: string): Promise<boolean>;
}

export interface Credentials {
  readonly user: string;
  readonly password: string;
}

/** RFC 7617 Basic credentials from an (Proxy-)Authorization value, or undefined. */
export function parseBasic(value: string | undefined): Credentials | undefined {
  if (!value) return undefined;
  const m = /^Basic[ ]+([A-Za-z0-9+/]+={0,2})[ ]*$/i.exec(value);
  if (!m) return undefined;
  const decoded = Buffer.from(m[1]!, 'base64').toString('utf8');
  const i = decoded.indexOf(':');
  if (i <= 0) return undefined;
  return { user: decoded.slice(0, i), password: decoded.slice(i + 1) };
}

/** What a connection last proved: the exact header octets, as of one store generation. */
interface ConnectionProof {
  readonly value: Buffer;
  readonly user: string;
  readonly generation: number;
}

export class Authenticator {
  readonly #checker: PasswordChecker;
  readonly #key = randomBytes(32);
  readonly #ok = new Map<string, Buffer>();
  /** Checks running since the last store change, by the HMAC of their credentials: the same credentials join the check. */
  readonly #checking = new Map<string, Promise<boolean>>();
  /** Connection (socket) → its last accepted Proxy-Authorization; gone with the socket. */
  readonly #byConnection = new WeakMap<object, ConnectionProof>();
  /** Moves on every store change: a success remembered under an older generation no longer counts. */
  #generation = 0;
  /** scrypt is deliberately slow: bound how many run at once so a flood cannot take every core. */
  #running = 0;
  readonly #queue: (() => void)[] = [];
  readonly #maxConcurrent: number;

  readonly #failures: FailureLimiter;

  constructor(checker: PasswordChecker, maxConcurrent = 4, failures: FailureLimiter = new FailureLimiter()) {
    this.#checker = checker;
    this.#maxConcurrent = maxConcurrent;
    this.#failures = failures;
  }

  #tag(c: Credentials): Buffer {
    return createHmac('sha256', this.#key).update(c.user).update('\0').update(c.password).digest();
  }

  /**
   * The user `connection` proved with exactly this Proxy-Authorization value since the last
   * store change, else undefined (then use `authenticateHeader`). Synchronous: no HMAC, no await.
   */
  remembered(connection: object, header: string | undefined): string | undefined {
    const proof = this.#byConnection.get(connection);
    if (proof === undefined || header === undefined || proof.generation !== this.#generation) return undefined;
    // Header strings hold one octet per character (latin1); only the length may leak.
    if (header.length !== proof.value.length || !timingSafeEqual(proof.value, Buffer.from(header, 'latin1'))) return undefined;
    return proof.user;
  }

  /**
   * The user named by a Proxy-Authorization value when its credentials are right; a success is
   * remembered for `connection`. `client` is the address wrong passwords are counted against.
   */
  async authenticateHeader(connection: object, header: string | undefined, client: string): Promise<string | undefined> {
    // Kept under the generation the check started in: one that raced a store change never counts.
    const generation = this.#generation;
    const user = await this.authenticate(parseBasic(header), client);
    if (user !== undefined) this.#byConnection.set(connection, { value: Buffer.from(header!, 'latin1'), user, generation });
    return user;
  }

  /**
   * The user name when the credentials are right, else undefined. Credentials that need a
   * password check from a `client` over its allowance of wrong passwords throw
   * AuthRateLimitedError (nothing is checked); already proven ones are answered as usual.
   */
  async authenticate(c: Credentials | undefined, client: string): Promise<string | undefined> {
    if (!c) return undefined;
    const generation = this.#generation;
    const tag = this.#tag(c);
    const known = this.#ok.get(c.user);
    if (known && timingSafeEqual(known, tag)) return c.user;
    const waitMs = this.#failures.waitMs(client);
    if (waitMs > 0) throw new AuthRateLimitedError(waitMs);
    const key = tag.toString('base64');
    let check = this.#checking.get(key);
    if (check === undefined) {
      const started = this.#check(c, tag, generation, client);
      this.#checking.set(key, started);
      const done = () => {
        if (this.#checking.get(key) === started) this.#checking.delete(key);
      };
      started.then(done, done);
      check = started;
    }
    return (await check) ? c.user : undefined;
  }

  /** One password check (scrypt), at most `maxConcurrent` at once; a success is remembered, a failure counted against `client`. */
  async #check(c: Credentials, tag: Buffer, generation: number, client: string): Promise<boolean> {
    if (this.#running >= this.#maxConcurrent) await new Promise<void>((r) => this.#queue.push(r));
    this.#running++;
    try {
      if (!(await this.#checker.verifyPassword(c.user, c.password))) {
        // One failure per check: the same wrong credentials sent at once shared one scrypt.
        this.#failures.failed(client);
        return false;
      }
      // A check that raced a store change may have read the old password: not remembered.
      if (generation === this.#generation) this.#ok.set(c.user, tag);
      return true;
    } finally {
      this.#running--;
      this.#queue.shift()?.();
    }
  }

  /** The store changed (a password, a user): every remembered success is forgotten. */
  forgetAll(): void {
    this.#ok.clear();
    // A check already running may have read the old password: later requests start their own.
    this.#checking.clear();
    this.#generation++;
  }
}

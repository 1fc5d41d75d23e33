/**
 * Outer authentication of users (patent 0067: user name + password on first access).
 * Passwords are checked against the store's memory-hard hash once; a success is then
 * remembered as an HMAC under a per-process random key, so later requests cost one HMAC and
 * a constant-time compare instead of a scrypt. Any store change forgets every success.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

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

export class Authenticator {
  readonly #checker: PasswordChecker;
  readonly #key = randomBytes(32);
  readonly #ok = new Map<string, Buffer>();
  /** scrypt is deliberately slow: bound how many run at once so a flood cannot take every core. */
  #running = 0;
  readonly #queue: (() => void)[] = [];
  readonly #maxConcurrent: number;

  constructor(checker: PasswordChecker, maxConcurrent = 4) {
    this.#checker = checker;
    this.#maxConcurrent = maxConcurrent;
  }

  #tag(c: Credentials): Buffer {
    return createHmac('sha256', this.#key).update(c.user).update('\0').update(c.password).digest();
  }

  /** The user name when the credentials are right, else undefined. */
  async authenticate(c: Credentials | undefined): Promise<string | undefined> {
    if (!c) return undefined;
    const tag = this.#tag(c);
    const known = this.#ok.get(c.user);
    if (known && timingSafeEqual(known, tag)) return c.user;
    if (this.#running >= this.#maxConcurrent) await new Promise<void>((r) => this.#queue.push(r));
    this.#running++;
    try {
      if (!(await this.#checker.verifyPassword(c.user, c.password))) return undefined;
      this.#ok.set(c.user, tag);
      return c.user;
    } finally {
      this.#running--;
      this.#queue.shift()?.();
    }
  }

  forgetAll(): void {
    this.#ok.clear();
  }
}

/**
 * Password hashing for outer users (patent 0067: user name + password on first access).
 * scrypt (RFC 7914) with a 16-octet random salt per user, stored as a PHC string
 * `$scrypt$ln=15,r=8,p=1$<salt>$<hash>` so parameters can be raised later without breaking
 * old hashes. Default N = 2^15, r = 8, p = 1: 32 MiB and about 120 ms per hash on the 2-core
 * CI machine (2^16: 225 ms, 2^17: 580 ms) — strong for an interactive login, and a sidecar
 * verifies once per session, not per request. Comparison is constant-time.
 */
import { randomBytes, scrypt, timingSafeEqual } from 'node:crypto';

export interface ScryptParams {
  readonly log2N: number;
  readonly r: number;
  readonly p: number;
}

export const DEFAULT_SCRYPT: ScryptParams = { log2N: 15, r: 8, p: 1 };
const KEY_LEN = 32;
const SALT_LEN = 16;

function derive(password: string, salt: Buffer, prm: ScryptParams): Promise<Buffer> {
  const N = 2 ** prm.log2N;
  return new Promise((resolve, reject) =>
    scrypt(Buffer.from(password, 'utf8'), salt, KEY_LEN, { N, r: prm.r, p: prm.p, maxmem: 256 * N * prm.r * prm.p }, (err, key) =>
      err ? reject(err) : resolve(key),
    ),
  );
}

const b64 = (b: Buffer) => b.toString('base64').replace(/=+$/, '');

export async function hashPassword(password: string, prm: ScryptParams = DEFAULT_SCRYPT): Promise<string> {
  const salt = randomBytes(SALT_LEN);
  const key = await derive(password, salt, prm);
  return `$scrypt$ln=${prm.log2N},r=${prm.r},p=${prm.p}$${b64(salt)}$${b64(key)}`;
}

const PHC = /^\$scrypt\$ln=(\d{1,2}),r=(\d{1,2}),p=(\d{1,2})\$([A-Za-z0-9+/]+)\$([A-Za-z0-9+/]+)$/;

export function parseHash(encoded: string): { prm: ScryptParams; salt: Buffer; key: Buffer } | undefined {
  const m = PHC.exec(encoded);
  if (!m) return undefined;
  const prm = { log2N: Number(m[1]), r: Number(m[2]), p: Number(m[3]) };
  if (prm.log2N < 1 || prm.log2N > 22 || prm.r < 1 || prm.p < 1) return undefined;
  return { prm, salt: Buffer.from(m[4]!, 'base64'), key: Buffer.from(m[5]!, 'base64') };
}

/** Constant-time check of `password` against a stored PHC string; false for any malformed hash. */
export async function verifyPasswordHash(password: string, encoded: string): Promise<boolean> {
  const h = parseHash(encoded);
  if (!h) return false;
  const key = await derive(password, h.salt, h.prm);
  return key.length === h.key.length && timingSafeEqual(key, h.key);
}

/**
 * The master key: 32 random octets that wrap every private key in the database (AES-256-GCM,
 * core/atrest.ts). It never lives in the database, so a copy of `sws.db` alone reveals no key.
 * Source, first match wins: `$SWS_MASTER_KEY` (base64), else `DATA/master.key` (base64 text,
 * mode 0600, written by `init` when the variable is not set; refused when group or others may
 * read it). The database keeps only a check value, HMAC-SHA-256(master key, "sws master key
 * check v1"), to tell a wrong key from a damaged row.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { accessSync, constants as fsConstants, existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { MasterKeyError } from './errors.ts';

export const MASTER_KEY_FILE = 'master.key';
export const MASTER_KEY_ENV = 'SWS_MASTER_KEY';

export interface MasterKeyMaterial {
  readonly raw: Buffer;
  readonly source: 'env' | 'file' | 'new';
}

function decode(text: string, where: string): Buffer {
  const t = text.trim();
  if (!/^[A-Za-z0-9+/]{43}=?$/.test(t)) throw new MasterKeyError(`${where} must hold the base64 encoding of exactly 32 random octets`);
  return Buffer.from(t, 'base64');
}

/**
 * Refuses a master.key that the group or others may read (as ssh refuses a shared private key):
 * whoever reads it can open every sealed private key. `init` writes it 0600. The one exception
 * is a file on a read-only mount (EROFS), such as a Kubernetes Secret volume, whose mode is set
 * by the orchestrator and cannot be changed from inside the container.
 */
function assertPrivate(file: string): void {
  let mode: number;
  try {
    mode = statSync(file).mode & 0o777;
  } catch (cause) {
    throw new MasterKeyError(`cannot read ${file}: check its owner and permissions`, { cause });
  }
  if ((mode & 0o077) === 0) return;
  try {
    accessSync(file, fsConstants.W_OK);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EROFS') return;
  }
  throw new MasterKeyError(
    `${file} is readable or writable by group or others (mode 0${mode.toString(8)}); anyone who reads it can open every stored private key: ` +
      `run \`chmod 600 ${file}\` (and check who has read it), or use $${MASTER_KEY_ENV}`,
  );
}

/** Reads the master key; with `create`, makes a fresh one (not yet written) when none exists. */
export function loadMasterKey(dataDir: string, env: NodeJS.ProcessEnv, create = false): MasterKeyMaterial {
  const fromEnv = env[MASTER_KEY_ENV];
  if (fromEnv !== undefined && fromEnv !== '') return { raw: decode(fromEnv, `$${MASTER_KEY_ENV}`), source: 'env' };
  const file = join(dataDir, MASTER_KEY_FILE);
  if (existsSync(file)) {
    assertPrivate(file);
    let buf: Buffer;
    try {
      buf = readFileSync(file);
    } catch (cause) {
      throw new MasterKeyError(`cannot read ${file}: check its owner and permissions`, { cause });
    }
    return { raw: buf.length === 32 ? buf : decode(buf.toString('latin1'), file), source: 'file' };
  }
  if (create) return { raw: randomBytes(32), source: 'new' };
  throw new MasterKeyError(`no master key: set $${MASTER_KEY_ENV} or restore ${file} (without it the stored private keys cannot be used)`);
}

export function writeMasterKeyFile(dataDir: string, raw: Buffer): void {
  writeFileSync(join(dataDir, MASTER_KEY_FILE), raw.toString('base64') + '\n', { mode: 0o600, flag: 'wx' });
}

export function masterKeyCheck(raw: Buffer): string {
  return createHmac('sha256', raw).update('sws master key check v1').digest('hex');
}

export function verifyMasterKeyCheck(raw: Buffer, expectedHex: string): boolean {
  const a = Buffer.from(masterKeyCheck(raw), 'hex');
  const b = Buffer.from(expectedHex, 'hex');
  return a.length === b.length && timingSafeEqual(a, b);
}

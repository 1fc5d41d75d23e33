/**
 * `init` for both roles, atomically: everything that can fail (master key, key generation,
 * sealing) happens before the new database is renamed into place (db.ts createDataDir).
 */
import { importMasterKey } from '../core/atrest.ts';
import type { RsaKeyBits } from '../core/crypto.ts';
import { assertCreatable, createDataDir, openStore, type CreateDataDirOptions, type OpenStoreOptions, type Role, type Store } from './db.ts';
import { loadMasterKey } from './masterkey.ts';
import { prepareInnerKey } from './inner.ts';

export interface InitOptions extends Omit<OpenStoreOptions, 'create' | 'expectRole' | 'readonly'> {
  /** Inner only: RSA size of the inner's key pair (default 2048). */
  keyBits?: RsaKeyBits;
}

export interface InitResult {
  readonly store: Store;
  /** Where the master key comes from: the environment, an existing file, or a new DATA/master.key. */
  readonly masterKeySource: 'env' | 'file' | 'new';
  /** Inner only: hex key ID of the new key pair. */
  readonly keyId?: string;
}

export async function initStore(dataDir: string, role: Role, opts: InitOptions = {}): Promise<InitResult> {
  const env = opts.env ?? process.env;
  assertCreatable(dataDir, opts.force ?? false);
  const mk = loadMasterKey(dataDir, env, true);
  let keyId: string | undefined;
  let populate: CreateDataDirOptions['populate'];
  try {
    if (role === 'inner') {
      const key = await importMasterKey(new Uint8Array(mk.raw));
      const prepared = await prepareInnerKey(key, opts.keyBits ?? 2048, opts.actor ?? 'api');
      keyId = prepared.keyId;
      populate = prepared.populate;
    }
    createDataDir(dataDir, role, { force: opts.force ?? false, env, masterKeyRaw: mk.raw, masterKeySource: mk.source, populate, actor: opts.actor ?? 'api' });
  } finally {
    mk.raw.fill(0);
  }
  const store = openStore(dataDir, { ...opts, expectRole: role });
  return { store, masterKeySource: mk.source, ...(keyId !== undefined ? { keyId } : {}) };
}

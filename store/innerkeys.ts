/**
 * The inner's long-term key pairs over time (patent: private key 39; docs/CERTIFICATES.md
 * "Rotating the inner key"). Exactly one key is `current`: `sws inner key` prints it and
 * outers should use it. `sws inner key rotate` makes a new current key, endorsed by the old
 * one (endorsement.ts), and turns the old one `retiring` until `retire_at`: during that
 * overlap the inner still accepts exchanges that name it, so outers move over with no failed
 * request. After it (or `sws inner key retire`) the key is `retired`: exchanges naming it are
 * refused (SWS_ERR_UNKNOWN_KEY) and the sessions made with it end.
 *
 * Private halves are sealed under the master key with the AAD `inner-key:<key ID>` (the key
 * made by `inner init` before rotation existed keeps its original `inner-key`).
 */
import { generateRsaKeyPair, toPem, type RsaKeyBits } from '../core/crypto.ts';
import { sealAtRest } from '../core/atrest.ts';
import { internals, requireRole, type Store } from './db.ts';
import { NotFoundError, NotInitializedError, UsageError } from './errors.ts';
import { openSealedKey, publicKeyInfo } from './keys.ts';
import { endorseKey, parseEndorsement, type KeyEndorsement } from './endorsement.ts';

export type InnerKeyState = 'current' | 'retiring' | 'retired';

export interface InnerKeyRecord {
  readonly keyId: string;
  readonly bits: number;
  readonly publicKeyPem: string;
  readonly state: InnerKeyState;
  readonly createdAt: string;
  /** For a retiring key: when the overlap ends (ms since the epoch). */
  readonly retireAt?: number;
  /** For a key made by rotation: the previous key's signed statement. */
  readonly endorsement?: KeyEndorsement;
}

interface Row {
  key_id: string;
  bits: number;
  public_key_pem: string;
  private_key_sealed: Uint8Array;
  seal_context: string;
  state: InnerKeyState;
  created_at: string;
  retire_at: string | null;
  endorsement: string | null;
}

const toRecord = (r: Row): InnerKeyRecord => ({
  keyId: r.key_id,
  bits: r.bits,
  publicKeyPem: r.public_key_pem,
  state: r.state,
  createdAt: r.created_at,
  ...(r.retire_at !== null ? { retireAt: Date.parse(r.retire_at) } : {}),
  ...(r.endorsement !== null ? { endorsement: parseEndorsement(r.endorsement) } : {}),
});

export const innerKeyContext = (keyId: string) => `inner-key:${keyId}`;

/** Default overlap: long enough for every outer's operator to run `sws server update`. */
export const DEFAULT_OVERLAP_SECONDS = 7 * 86_400;

export interface RotateResult {
  readonly previous: InnerKeyRecord;
  readonly current: InnerKeyRecord;
  readonly endorsement: KeyEndorsement;
}

export interface InnerKeys {
  list(): InnerKeyRecord[];
  current(): InnerKeyRecord;
  /** Keys an exchange may name at `now`: the current one and those still in their overlap. */
  usable(now?: number): InnerKeyRecord[];
  /** PKCS #8 DER of a key, unsealed; the caller should zero it after import. */
  privateKeyPkcs8(keyId: string): Promise<Uint8Array>;
  rotate(opts?: { bits?: RsaKeyBits; overlapSeconds?: number; now?: Date }): Promise<RotateResult>;
  /** Ends the overlap of one retiring key (or all) now; returns how many were retired. */
  retire(keyId?: string): number;
}

export function innerKeys(store: Store): InnerKeys {
  requireRole(store, 'inner', 'the inner key pairs');
  const i = internals(store);
  const all = () => i.read(() => i.prepare("SELECT * FROM inner_keys ORDER BY created_at, key_id").all() as Row[]);
  const currentRow = (): Row => {
    const r = i.read(() => i.prepare("SELECT * FROM inner_keys WHERE state = 'current'").get() as Row | undefined);
    if (!r) throw new NotInitializedError(`the inner data dir ${store.dataDir} has no key pair: re-create it with \`sws inner init --force\``);
    return r;
  };
  const repo: InnerKeys = {
    list: () => all().map(toRecord),
    current: () => toRecord(currentRow()),
    usable(now = Date.now()) {
      return all()
        .filter((r) => r.state === 'current' || (r.state === 'retiring' && r.retire_at !== null && Date.parse(r.retire_at) > now))
        .map(toRecord);
    },
    async privateKeyPkcs8(keyId) {
      const r = i.read(() => i.prepare('SELECT * FROM inner_keys WHERE key_id = ?').get(keyId) as Row | undefined);
      if (!r) throw new NotFoundError(`no inner key ${keyId}`);
      return openSealedKey(await store.masterKey(), r.private_key_sealed, r.seal_context);
    },
    async rotate(opts = {}) {
      const overlap = opts.overlapSeconds ?? DEFAULT_OVERLAP_SECONDS;
      if (!Number.isInteger(overlap) || overlap < 0 || overlap > 366 * 86_400) throw new UsageError('the overlap must be 0 to 31622400 seconds', '--overlap');
      const now = opts.now ?? new Date();
      const prev = currentRow();
      const bits = (opts.bits ?? prev.bits) as RsaKeyBits;
      const mk = await store.masterKey();
      const kp = await generateRsaKeyPair(bits);
      const overlapUntil = new Date(now.getTime() + overlap * 1000);
      let generated: { keyId: string; publicKeyPem: string };
      let sealed: Uint8Array;
      let endorsement: KeyEndorsement;
      try {
        const info = await publicKeyInfo(toPem(kp.spki, 'PUBLIC KEY'));
        generated = { keyId: info.keyId, publicKeyPem: info.pem };
        sealed = await sealAtRest(mk, kp.pkcs8, innerKeyContext(info.keyId));
        const prevPkcs8 = await openSealedKey(mk, prev.private_key_sealed, prev.seal_context);
        try {
          endorsement = await endorseKey(prevPkcs8, info.pem, overlapUntil, now);
        } finally {
          prevPkcs8.fill(0);
        }
      } finally {
        kp.pkcs8.fill(0);
      }
      i.write(() => {
        const still = i.prepare("SELECT key_id FROM inner_keys WHERE state = 'current'").get() as { key_id: string } | undefined;
        if (still?.key_id !== prev.key_id) throw new UsageError('the inner key changed while rotating; run the command again', 'rotate');
        i.prepare("UPDATE inner_keys SET state = 'retiring', retire_at = ? WHERE key_id = ?").run(overlapUntil.toISOString(), prev.key_id);
        i.prepare(
          "INSERT INTO inner_keys (key_id, bits, public_key_pem, private_key_sealed, seal_context, state, created_at, endorsement) VALUES (?, ?, ?, ?, ?, 'current', ?, ?)",
        ).run(generated.keyId, bits, generated.publicKeyPem, sealed, innerKeyContext(generated.keyId), now.toISOString(), JSON.stringify(endorsement));
        i.audit('inner.key.rotate', 'inner', { previous: prev.key_id, current: generated.keyId, overlapUntil: overlapUntil.toISOString() });
      });
      const byId = (id: string) => toRecord(i.read(() => i.prepare('SELECT * FROM inner_keys WHERE key_id = ?').get(id) as Row));
      return { previous: byId(prev.key_id), current: byId(generated.keyId), endorsement };
    },
    retire(keyId) {
      return i.write(() => {
        const rows = (i.prepare("SELECT key_id FROM inner_keys WHERE state = 'retiring'").all() as { key_id: string }[]).filter((r) => keyId === undefined || r.key_id === keyId);
        if (keyId !== undefined && rows.length === 0) {
          const any = i.prepare('SELECT state FROM inner_keys WHERE key_id = ?').get(keyId) as { state: string } | undefined;
          throw any ? new UsageError(`key ${keyId} is ${any.state}, not retiring`, 'KEYID') : new NotFoundError(`no inner key ${keyId} (see \`sws inner key list\`)`);
        }
        const now = new Date().toISOString();
        for (const r of rows) i.prepare("UPDATE inner_keys SET state = 'retired', retire_at = ? WHERE key_id = ?").run(now, r.key_id);
        if (rows.length) i.audit('inner.key.retire', 'inner', { keys: rows.map((r) => r.key_id) });
        return rows.length;
      });
    },
  };
  return repo;
}

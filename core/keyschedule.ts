/**
 * Session key schedule (docs/PROTOCOL.md §4), HKDF-SHA-256 (RFC 5869) with TLS 1.3-style
 * labels (RFC 8446 §7.1):
 *
 *   PRK = HKDF-Extract(salt = Session ID, IKM = S)
 *   xch key/iv  = Expand-Label(PRK, "xch key"/"xch iv", TH0)   ExchangePayload (outer → inner)
 *   cfm key/iv  = Expand-Label(PRK, "cfm key"/"cfm iv", TH1)   EXCHANGE_CONFIRM (inner → outer)
 *   c2s key/iv  = Expand-Label(PRK, "c2s key"/"c2s iv", TH1)   REQUEST records
 *   s2c key/iv  = Expand-Label(PRK, "s2c key"/"s2c iv", TH1)   RESPONSE records
 *
 * TH0 covers the clear exchange header and wrapped secret; TH1 is the hash of the whole
 * EXCHANGE message, including the user's encrypted signature, so data keys are bound to
 * the user, the inner key, the protocol version and the session ID.
 */
import { webCryptoAead, type AeadBackend } from './aead.ts';
import { hkdfLabel, SUITE_V1 } from './crypto.ts';
import { webCryptoKdf, type KdfBackend } from './kdf.ts';
import { newDirectionState, type DirectionState } from './records.ts';
import type { SessionKeys } from './exchange.ts';

export interface RawKeyIv {
  readonly key: Uint8Array;
  readonly iv: Uint8Array;
}

export async function extractSessionPrk(sessionId: Uint8Array, secret: Uint8Array, kdf: KdfBackend = webCryptoKdf): Promise<Uint8Array> {
  return kdf.hkdfExtract(sessionId, secret);
}

export async function deriveKeyIv(prk: Uint8Array, name: 'xch' | 'cfm' | 'c2s' | 's2c', transcriptHash: Uint8Array, kdf: KdfBackend = webCryptoKdf): Promise<RawKeyIv> {
  const [key, iv] = await Promise.all([
    kdf.hkdfExpand(prk, hkdfLabel(SUITE_V1.aeadKeyBytes, `${name} key`, transcriptHash), SUITE_V1.aeadKeyBytes),
    kdf.hkdfExpand(prk, hkdfLabel(SUITE_V1.nonceBytes, `${name} iv`, transcriptHash), SUITE_V1.nonceBytes),
  ]);
  return { key, iv };
}

/** deriveKeyIv then directionFrom: one direction's state straight from the PRK. */
export async function deriveDirection(prk: Uint8Array, name: 'xch' | 'cfm' | 'c2s' | 's2c', transcriptHash: Uint8Array, aead: AeadBackend = webCryptoAead, kdf: KdfBackend = webCryptoKdf): Promise<DirectionState> {
  return directionFrom(await deriveKeyIv(prk, name, transcriptHash, kdf), aead);
}

/** Imports a derived key once and wipes the raw key octets. */
export async function directionFrom(raw: RawKeyIv, aead: AeadBackend = webCryptoAead): Promise<DirectionState> {
  const key = await aead.importKey(raw.key);
  raw.key.fill(0);
  return newDirectionState(key, raw.iv, aead);
}

/**
 * A session's ID and the IVs of its two data directions moved into one allocation, followed by
 * `tailBytes` zeroed octets for the caller (4-aligned). An idle session is what a server holds
 * most of (issue 7): three views of one buffer cost about two thirds of three small arrays
 * with a buffer each. Keys and usage counters carry over unchanged; the returned directions
 * replace the given ones, which must not be used afterwards (their counters would diverge).
 */
export function packSessionKeys(keys: SessionKeys, tailBytes = 0): { readonly keys: SessionKeys; readonly tail: Uint8Array } {
  const ivBytes = SUITE_V1.nonceBytes;
  const idBytes = keys.sessionId.length;
  const head = idBytes + 2 * ivBytes;
  const tailAt = head + ((4 - (head % 4)) % 4);
  const buffer = new ArrayBuffer(tailAt + tailBytes);
  const sessionId = new Uint8Array(buffer, 0, idBytes);
  sessionId.set(keys.sessionId);
  return {
    keys: { sessionId, c2s: withIv(keys.c2s, new Uint8Array(buffer, idBytes, ivBytes)), s2c: withIv(keys.s2c, new Uint8Array(buffer, idBytes + ivBytes, ivBytes)) },
    tail: new Uint8Array(buffer, tailAt, tailBytes),
  };
}

function withIv(dir: DirectionState, iv: Uint8Array): DirectionState {
  iv.set(dir.iv);
  const moved = newDirectionState(dir.key, iv, dir.aead);
  moved.records = dir.records;
  moved.bytes = dir.bytes;
  moved.failedOpens = dir.failedOpens;
  return moved;
}

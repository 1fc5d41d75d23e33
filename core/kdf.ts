/**
 * The hash and HKDF primitives of the exchange and key schedule (SHA-256, HKDF-SHA-256
 * Extract and Expand, RFC 5869), as a small replaceable interface beside the AeadBackend
 * (patent 0034: crypto modules replaceable on the two servers alone). The default is
 * WebCrypto, so the core runs unchanged in a browser, Deno or a Worker; a host can inject a
 * faster implementation of the same functions (the Node sidecars use node:crypto createHash /
 * createHmac: one exchange makes ~23 of these small calls, each of which costs WebCrypto a
 * thread-pool round trip). Outputs are identical octet for octet whatever the backend.
 *
 * RSA has its own injectable backend (RsaBackend in crypto.ts; node:crypto in the sidecars).
 */
import { own, timingSafeEqual } from './bytes.ts';
import { hkdfExpand, hkdfExtract, sha256 } from './crypto.ts';

export interface KdfBackend {
  readonly name: string;
  /** SHA-256 of `data`. */
  sha256(data: Uint8Array): Uint8Array | Promise<Uint8Array>;
  /** RFC 5869 §2.2 HKDF-Extract with HMAC-SHA-256; an empty salt means 32 zero octets. */
  hkdfExtract(salt: Uint8Array, ikm: Uint8Array): Uint8Array | Promise<Uint8Array>;
  /** RFC 5869 §2.3 HKDF-Expand with HMAC-SHA-256; `length` ≤ 255 × 32. */
  hkdfExpand(prk: Uint8Array, info: Uint8Array, length: number): Uint8Array | Promise<Uint8Array>;
}

/**
 * The key schedule expands one PRK eight times per side; WebCrypto needs the PRK imported as
 * an HMAC CryptoKey for each. Keep the import per PRK array (weakly: it goes with the array)
 * together with a copy of the octets it was made from, and reuse it only while the array still
 * holds those octets, so a zeroed or rewritten array is imported afresh.
 */
const prkKeys = new WeakMap<Uint8Array, { readonly octets: Uint8Array; readonly key: Promise<CryptoKey> }>();

function prkKey(prk: Uint8Array): Promise<CryptoKey> {
  const hit = prkKeys.get(prk);
  if (hit && timingSafeEqual(hit.octets, prk)) return hit.key;
  const octets = own(prk);
  const key = globalThis.crypto.subtle.importKey('raw', octets, { name: 'HMAC', hash: 'SHA-256' }, false, ['sign']);
  prkKeys.set(prk, { octets, key });
  return key;
}

async function webCryptoExpand(prk: Uint8Array, info: Uint8Array, length: number): Promise<Uint8Array> {
  // Longer outputs (several HMAC blocks), odd lengths and an empty PRK take the general path.
  if (!(Number.isInteger(length) && length >= 1 && length <= 32) || prk.length === 0) return hkdfExpand(prk, info, length);
  // T(1) = HMAC(PRK, info ‖ 0x01), truncated to `length` (RFC 5869 §2.3, N = 1).
  const block = new Uint8Array(info.length + 1);
  block.set(info);
  block[info.length] = 1;
  const t = new Uint8Array(await globalThis.crypto.subtle.sign('HMAC', await prkKey(prk), block));
  const out = t.slice(0, length);
  t.fill(0);
  return out;
}

export const webCryptoKdf: KdfBackend = {
  name: 'webcrypto-sha256-hkdf',
  sha256: (data) => sha256(data),
  hkdfExtract: (salt, ikm) => hkdfExtract(salt, ikm),
  hkdfExpand: webCryptoExpand,
};

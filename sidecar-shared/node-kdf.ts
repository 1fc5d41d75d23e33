/**
 * SHA-256 and HKDF-SHA-256 (RFC 5869) for the Node sidecars through node:crypto, injected
 * into the core as its KdfBackend (core/kdf.ts). Same functions and octets as the core's
 * WebCrypto default; synchronous OpenSSL calls of a few microseconds instead of one WebCrypto
 * thread-pool round trip each (an exchange makes ~23 of them across both sides).
 *
 * Extract and Expand are written out with createHmac rather than crypto.hkdfSync, which only
 * does both steps together: the key schedule extracts one PRK and expands it eight times.
 */
import { createHash, createHmac } from 'node:crypto';
import type { KdfBackend } from '../core/kdf.ts';

const HASH_LEN = 32;
/** RFC 5869 §2.2: an absent salt is HashLen zero octets (what core/crypto.ts passes WebCrypto too). */
const ZERO_SALT = new Uint8Array(HASH_LEN);

/** Copies a node Buffer into a plain Uint8Array (so results compare equal to the WebCrypto ones) and wipes the Buffer. */
function plain(buf: Buffer): Uint8Array {
  const out = new Uint8Array(buf.length);
  out.set(buf);
  buf.fill(0);
  return out;
}

export function nodeSha256(data: Uint8Array): Uint8Array {
  return plain(createHash('sha256').update(data).digest());
}

export function nodeHkdfExtract(salt: Uint8Array, ikm: Uint8Array): Uint8Array {
  return plain(createHmac('sha256', salt.length === 0 ? ZERO_SALT : salt).update(ikm).digest());
}

export function nodeHkdfExpand(prk: Uint8Array, info: Uint8Array, length: number): Uint8Array {
  if (!Number.isInteger(length) || length < 0 || length > 255 * HASH_LEN) throw new RangeError('HKDF-Expand length too large');
  const out = new Uint8Array(length);
  let prev: Buffer | null = null;
  for (let i = 1, off = 0; off < length; i++) {
    // T(i) = HMAC-Hash(PRK, T(i-1) ‖ info ‖ i), T(0) empty.
    const h = createHmac('sha256', prk);
    if (prev) h.update(prev);
    const t: Buffer = h.update(info).update(new Uint8Array([i])).digest();
    prev?.fill(0);
    out.set(t.subarray(0, Math.min(HASH_LEN, length - off)), off);
    off += HASH_LEN;
    prev = t;
  }
  prev?.fill(0);
  return out;
}

export const nodeKdf: KdfBackend = {
  name: 'node-crypto-sha256-hkdf',
  sha256: nodeSha256,
  hkdfExtract: nodeHkdfExtract,
  hkdfExpand: nodeHkdfExpand,
};

/**
 * The AEAD the record layer uses, as a small replaceable interface (patent 0034: crypto
 * modules replaceable on the two servers alone). The default is WebCrypto AES-GCM, so the core
 * runs unchanged in a browser, Deno or a Worker; a host can inject a faster implementation of
 * the same algorithm (the Node sidecars use node:crypto, which avoids WebCrypto's per-call
 * thread-pool dispatch). The octets on the wire are identical whatever the backend.
 */
import { aesGcmOpen, aesGcmSeal, importAesKey } from './crypto.ts';

/** An imported key, opaque to the core. */
export type AeadKey = object;

export interface AeadBackend {
  readonly name: string;
  /** Imports a 16- or 32-octet AES key; the caller zeroes `raw` afterwards. */
  importKey(raw: Uint8Array): AeadKey | Promise<AeadKey>;
  /** Returns ciphertext ‖ 16-octet tag. */
  seal(key: AeadKey, nonce: Uint8Array, aad: Uint8Array, plaintext: Uint8Array): Uint8Array | Promise<Uint8Array>;
  /** Returns the plaintext only if the tag verified; otherwise throws, releasing nothing. */
  open(key: AeadKey, nonce: Uint8Array, aad: Uint8Array, sealed: Uint8Array): Uint8Array | Promise<Uint8Array>;
  /**
   * Optional: seals the concatenation of `parts` (the same octets `seal` gives for it) into a
   * buffer that begins with `headroom` octets left for the caller (the record layer writes the
   * record's length there). Lets a backend that encrypts incrementally avoid joining the parts
   * and then the ciphertext and its prefix: one buffer per record instead of three.
   */
  sealParts?(key: AeadKey, nonce: Uint8Array, aad: Uint8Array, parts: readonly Uint8Array[], headroom: number): Uint8Array | Promise<Uint8Array>;
  /**
   * Optional: `open` for sealed octets given as parts (ciphertext ‖ tag split anywhere, as they
   * came off the network), returning the plaintext as parts. Same guarantee: nothing is
   * returned unless the tag verified. Lets a backend that decrypts incrementally skip joining a
   * record that arrived in two reads.
   */
  openParts?(key: AeadKey, nonce: Uint8Array, aad: Uint8Array, sealed: readonly Uint8Array[]): Uint8Array[] | Promise<Uint8Array[]>;
}

export const webCryptoAead: AeadBackend = {
  name: 'webcrypto-aes-gcm',
  importKey: (raw) => importAesKey(raw),
  seal: (key, nonce, aad, plaintext) => aesGcmSeal(key as CryptoKey, nonce, aad, plaintext),
  open: (key, nonce, aad, sealed) => aesGcmOpen(key as CryptoKey, nonce, aad, sealed),
};

/**
 * AES-GCM for the Node sidecars through node:crypto (OpenSSL, AES-NI), injected into the core
 * as its AeadBackend. Same algorithm and octets as the core's WebCrypto default; it skips
 * WebCrypto's per-call thread-pool dispatch, which dominated small requests in the profile.
 * Keys live in KeyObjects (native memory), imported once per session direction.
 */
import { createCipheriv, createDecipheriv, createSecretKey, type KeyObject } from 'node:crypto';
import type { AeadBackend } from '../core/aead.ts';
import { DecryptError } from '../core/errors.ts';

const TAG = 16;

function algorithm(key: KeyObject): 'aes-128-gcm' | 'aes-256-gcm' {
  return key.symmetricKeySize === 16 ? 'aes-128-gcm' : 'aes-256-gcm';
}

export const nodeAead: AeadBackend = {
  name: 'node-crypto-aes-gcm',
  importKey(raw) {
    if (raw.length !== 16 && raw.length !== 32) throw new RangeError('AES key must be 16 or 32 octets');
    return createSecretKey(raw);
  },
  seal(key, nonce, aad, plaintext) {
    const k = key as KeyObject;
    const c = createCipheriv(algorithm(k), k, nonce, { authTagLength: TAG });
    c.setAAD(aad);
    const body = c.update(plaintext);
    c.final();
    const out = new Uint8Array(body.length + TAG);
    out.set(body, 0);
    out.set(c.getAuthTag(), body.length);
    return out;
  },
  open(key, nonce, aad, sealed) {
    if (sealed.length < TAG) throw new DecryptError();
    const k = key as KeyObject;
    try {
      const d = createDecipheriv(algorithm(k), k, nonce, { authTagLength: TAG });
      d.setAAD(aad);
      d.setAuthTag(sealed.subarray(sealed.length - TAG));
      const plaintext = d.update(sealed.subarray(0, sealed.length - TAG));
      // final() verifies the tag: only then is the plaintext released.
      d.final();
      return plaintext;
    } catch (cause) {
      throw new DecryptError(undefined, { cause });
    }
  },
};

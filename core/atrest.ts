/**
 * Secrets at rest (private keys in the store): AES-256-GCM under a master key that lives
 * outside the database. Layout: version (1 octet = 0x01) ‖ nonce (12, random) ‖ ciphertext ‖ tag.
 * The AAD is a context string naming what the blob is and whose it is (e.g. "user-key:alice"),
 * so a wrapped key copied to another row fails to open. Random nonces are safe here: a master
 * key seals far fewer than 2^32 blobs (NIST SP 800-38D §8.3).
 */
import { concatBytes, utf8 } from './bytes.ts';
import { aesGcmOpen, aesGcmSeal, importAesKey, randomBytes, SUITE_V1 } from './crypto.ts';
import { MalformedError } from './errors.ts';

const AT_REST_VERSION = 1;
const MIN_LEN = 1 + SUITE_V1.nonceBytes + SUITE_V1.tagBytes;

/** Imports a 32-octet master key (non-extractable). */
export async function importMasterKey(raw: Uint8Array): Promise<CryptoKey> {
  if (raw.length !== 32) throw new MalformedError('the master key must be exactly 32 octets');
  return importAesKey(raw);
}

export async function sealAtRest(masterKey: CryptoKey, plaintext: Uint8Array, context: string): Promise<Uint8Array> {
  const nonce = randomBytes(SUITE_V1.nonceBytes);
  const ct = await aesGcmSeal(masterKey, nonce, utf8(`sws at-rest v1 ${context}`), plaintext);
  return concatBytes(new Uint8Array([AT_REST_VERSION]), nonce, ct);
}

/** Throws DecryptError when the master key is wrong or the blob was altered or moved. */
export async function openAtRest(masterKey: CryptoKey, sealed: Uint8Array, context: string): Promise<Uint8Array> {
  if (sealed.length < MIN_LEN || sealed[0] !== AT_REST_VERSION) throw new MalformedError('the sealed secret has an unknown format');
  const nonce = sealed.subarray(1, 1 + SUITE_V1.nonceBytes);
  return aesGcmOpen(masterKey, nonce, utf8(`sws at-rest v1 ${context}`), sealed.subarray(1 + SUITE_V1.nonceBytes));
}

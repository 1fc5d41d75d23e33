/**
 * The one thin wrapper around WebCrypto (`globalThis.crypto.subtle`). Every algorithm
 * parameter lives in SUITE_V1; keys are imported once (at start-up or exchange time) as
 * non-extractable CryptoKeys and never re-imported on the hot path.
 *
 * - RSA-OAEP with SHA-256 / MGF1-SHA-256 (RFC 8017 §7.1) wraps session secrets to the inner.
 * - RSASSA-PSS with SHA-256, salt 32 (RFC 8017 §8.1) signs exchanges and confirmations.
 * - AES-256-GCM (NIST SP 800-38D) seals records.
 * - HKDF-SHA-256 (RFC 5869) derives session keys.
 *
 * One RSA key pair per party serves both OAEP and PSS for the inner (as the patent's single
 * private key 39). Joint use of the same RSA modulus for OAEP and PSS is analysed as safe in
 * Coron–Joye–Naccache–Paillier, "Universal padding schemes for RSA" (CRYPTO 2002); the
 * labels and domain-separated signature contexts below keep every use apart.
 */
import { concatBytes, fromBase64, own, toBase64, toHex, utf8 } from './bytes.ts';
import { DecryptError, KeyFormatError, UnwrapError } from './errors.ts';

export const SUITE_V1 = {
  version: 1,
  name: 'RSA-OAEP-256+AES-256-GCM+RSA-PSS-SHA256+HKDF-SHA256',
  hash: 'SHA-256',
  pssSaltLength: 32,
  aeadKeyBytes: 32,
  nonceBytes: 12,
  tagBytes: 16,
  secretBytes: 32,
  publicExponent: new Uint8Array([1, 0, 1]),
} as const;

export const RSA_KEY_BITS = [2048, 3072, 4096] as const;
export type RsaKeyBits = (typeof RSA_KEY_BITS)[number];

const subtle = (): SubtleCrypto => {
  const s = globalThis.crypto?.subtle;
  if (!s) throw new Error('WebCrypto (globalThis.crypto.subtle) is not available in this runtime');
  return s;
};

const OAEP_IMPORT = { name: 'RSA-OAEP', hash: SUITE_V1.hash } as const;
const PSS_IMPORT = { name: 'RSA-PSS', hash: SUITE_V1.hash } as const;

export function randomBytes(n: number): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(n);
  // getRandomValues fills at most 65536 bytes per call.
  for (let off = 0; off < n; off += 65536) globalThis.crypto.getRandomValues(out.subarray(off, Math.min(n, off + 65536)));
  return out;
}

export async function sha256(data: Uint8Array): Promise<Uint8Array> {
  return new Uint8Array(await subtle().digest('SHA-256', own(data)));
}

// ---------------------------------------------------------------------------------------
// PEM (RFC 7468) and key material
// ---------------------------------------------------------------------------------------

export type PemLabel = 'PUBLIC KEY' | 'PRIVATE KEY' | 'CERTIFICATE' | 'CERTIFICATE REQUEST';

export function toPem(der: Uint8Array, label: PemLabel): string {
  const b64 = toBase64(der);
  const lines: string[] = [];
  for (let i = 0; i < b64.length; i += 64) lines.push(b64.slice(i, i + 64));
  return `-----BEGIN ${label}-----\n${lines.join('\n')}\n-----END ${label}-----\n`;
}

/** Strict RFC 7468 parse of the first block with `label`; anything else is a KeyFormatError. */
export function fromPem(pem: string, label: PemLabel): Uint8Array {
  const re = new RegExp(`-----BEGIN ${label}-----([\\s\\S]*?)-----END ${label}-----`);
  const m = re.exec(pem);
  if (!m) throw new KeyFormatError(`expected a PEM block "-----BEGIN ${label}-----"`);
  const body = m[1]!.replace(/\s+/g, '');
  if (body.length === 0 || !/^[A-Za-z0-9+/]+={0,2}$/.test(body)) throw new KeyFormatError(`the PEM "${label}" block is not valid base64`);
  try {
    return fromBase64(body);
  } catch (cause) {
    throw new KeyFormatError(`the PEM "${label}" block is not valid base64`, { cause });
  }
}

export interface RsaKeyPairMaterial {
  readonly bits: RsaKeyBits;
  /** SubjectPublicKeyInfo, DER. */
  readonly spki: Uint8Array;
  /** PKCS #8 PrivateKeyInfo, DER: secret, store only wrapped (see atrest.ts). */
  readonly pkcs8: Uint8Array;
}

export async function generateRsaKeyPair(bits: RsaKeyBits = 2048): Promise<RsaKeyPairMaterial> {
  if (!RSA_KEY_BITS.includes(bits)) throw new KeyFormatError(`RSA key size must be one of ${RSA_KEY_BITS.join(', ')}`);
  const pair = (await subtle().generateKey(
    { name: 'RSA-PSS', modulusLength: bits, publicExponent: own(SUITE_V1.publicExponent), hash: SUITE_V1.hash },
    true,
    ['sign', 'verify'],
  )) as CryptoKeyPair;
  const spki = new Uint8Array(await subtle().exportKey('spki', pair.publicKey));
  const pkcs8 = new Uint8Array(await subtle().exportKey('pkcs8', pair.privateKey));
  return { bits, spki, pkcs8 };
}

/** Key ID = SHA-256 of the DER SubjectPublicKeyInfo (as in RFC 7093 method 4 / SSH fingerprints). */
export async function keyIdOf(spki: Uint8Array): Promise<Uint8Array> {
  return sha256(spki);
}

/** Human-readable fingerprint of a key ID, e.g. `sha256:9f86d0…` (full 64 hex digits). */
export function fingerprint(keyId: Uint8Array): string {
  return `sha256:${toHex(keyId)}`;
}

function modulusBits(n: string): number {
  // JWK `n` is base64url, big-endian, no leading zero octets (RFC 7518 §6.3.1.1).
  const bytes = fromBase64(n.replace(/-/g, '+').replace(/_/g, '/') + '='.repeat((4 - (n.length % 4)) % 4));
  if (bytes.length === 0) return 0;
  return (bytes.length - 1) * 8 + (32 - Math.clz32(bytes[0]!));
}

function checkRsaParams(jwk: JsonWebKey): RsaKeyBits {
  if (jwk.kty !== 'RSA' || typeof jwk.n !== 'string' || typeof jwk.e !== 'string') throw new KeyFormatError('the key is not an RSA key');
  const bits = modulusBits(jwk.n);
  if (!(RSA_KEY_BITS as readonly number[]).includes(bits)) {
    throw new KeyFormatError(`RSA modulus is ${bits} bits; allowed sizes are ${RSA_KEY_BITS.join(', ')}`);
  }
  if (jwk.e !== 'AQAB') throw new KeyFormatError('RSA public exponent must be 65537');
  return bits as RsaKeyBits;
}

/** A peer's public key, imported once for every use sws makes of it. */
export interface PublicKeyHandle {
  readonly bits: RsaKeyBits;
  readonly spki: Uint8Array;
  readonly keyId: Uint8Array;
  /** RSA-OAEP encrypt (wrapping session secrets to an inner). */
  readonly encryptKey: CryptoKey;
  /** RSA-PSS verify. */
  readonly verifyKey: CryptoKey;
}

/** Imports an SPKI (DER bytes or a PEM "PUBLIC KEY" string). Throws KeyFormatError on anything else. */
export async function importPublicKey(input: Uint8Array | string): Promise<PublicKeyHandle> {
  const spki = typeof input === 'string' ? fromPem(input, 'PUBLIC KEY') : input;
  let probe: CryptoKey;
  try {
    probe = await subtle().importKey('spki', own(spki), PSS_IMPORT, true, ['verify']);
  } catch (cause) {
    throw new KeyFormatError('the public key is not a valid RSA SubjectPublicKeyInfo', { cause });
  }
  const bits = checkRsaParams(await subtle().exportKey('jwk', probe));
  const [encryptKey, verifyKey, keyId] = await Promise.all([
    subtle().importKey('spki', own(spki), OAEP_IMPORT, false, ['encrypt']),
    subtle().importKey('spki', own(spki), PSS_IMPORT, false, ['verify']),
    keyIdOf(spki),
  ]);
  return { bits, spki, keyId, encryptKey, verifyKey };
}

/** A party's own private key, imported once as non-extractable keys for each use. */
export interface PrivateKeyHandle {
  readonly bits: RsaKeyBits;
  readonly spki: Uint8Array;
  readonly keyId: Uint8Array;
  readonly decryptKey: CryptoKey;
  readonly signKey: CryptoKey;
  /** The matching public key (for self-verification and for telling peers). */
  readonly publicKey: PublicKeyHandle;
}

/**
 * Imports a PKCS #8 private key (DER or PEM "PRIVATE KEY"). The public half is derived here,
 * once, so callers never need to keep it in sync by hand.
 */
export async function importPrivateKey(input: Uint8Array | string): Promise<PrivateKeyHandle> {
  const pkcs8 = typeof input === 'string' ? fromPem(input, 'PRIVATE KEY') : input;
  let jwk: JsonWebKey;
  try {
    const probe = await subtle().importKey('pkcs8', own(pkcs8), PSS_IMPORT, true, ['sign']);
    jwk = await subtle().exportKey('jwk', probe);
  } catch (cause) {
    throw new KeyFormatError('the private key is not a valid RSA PKCS #8 key', { cause });
  }
  checkRsaParams(jwk);
  const pubJwk: JsonWebKey = { kty: 'RSA', n: jwk.n!, e: jwk.e!, ext: true };
  const pubProbe = await subtle().importKey('jwk', pubJwk, PSS_IMPORT, true, ['verify']);
  const spki = new Uint8Array(await subtle().exportKey('spki', pubProbe));
  // Scrub the private JWK fields we were handed before letting go of the object.
  for (const k of ['d', 'p', 'q', 'dp', 'dq', 'qi'] as const) delete jwk[k];
  const [publicKey, decryptKey, signKey] = await Promise.all([
    importPublicKey(spki),
    subtle().importKey('pkcs8', own(pkcs8), OAEP_IMPORT, false, ['decrypt']),
    subtle().importKey('pkcs8', own(pkcs8), PSS_IMPORT, false, ['sign']),
  ]);
  return { bits: publicKey.bits, spki, keyId: publicKey.keyId, decryptKey, signKey, publicKey };
}

// ---------------------------------------------------------------------------------------
// RSA operations
// ---------------------------------------------------------------------------------------

/** RSA-OAEP-SHA256 encrypt of a session secret, with the label binding it to its context. */
export async function oaepWrap(to: PublicKeyHandle, secret: Uint8Array, label: Uint8Array): Promise<Uint8Array> {
  return new Uint8Array(await subtle().encrypt({ name: 'RSA-OAEP', label: own(label) }, to.encryptKey, own(secret)));
}

export async function oaepUnwrap(key: PrivateKeyHandle, wrapped: Uint8Array, label: Uint8Array): Promise<Uint8Array> {
  try {
    return new Uint8Array(await subtle().decrypt({ name: 'RSA-OAEP', label: own(label) }, key.decryptKey, own(wrapped)));
  } catch (cause) {
    throw new UnwrapError(undefined, { cause });
  }
}

export async function pssSign(key: PrivateKeyHandle, data: Uint8Array): Promise<Uint8Array> {
  return new Uint8Array(await subtle().sign({ name: 'RSA-PSS', saltLength: SUITE_V1.pssSaltLength }, key.signKey, own(data)));
}

export async function pssVerify(key: PublicKeyHandle, signature: Uint8Array, data: Uint8Array): Promise<boolean> {
  try {
    return await subtle().verify({ name: 'RSA-PSS', saltLength: SUITE_V1.pssSaltLength }, key.verifyKey, own(signature), own(data));
  } catch {
    return false;
  }
}

/**
 * The four RSA operations of an exchange as a small replaceable interface, beside AeadBackend
 * and KdfBackend (patent 0034: crypto modules replaceable on the two servers alone). The
 * default is the WebCrypto functions above, so the core runs unchanged in a browser; the Node
 * sidecars inject node:crypto (sidecar-shared/node-rsa.ts). A backend takes the handles
 * imported once at start-up or exchange time and keeps whatever native form of their keys it
 * needs (the node one converts each CryptoKey to a KeyObject once): no operation imports or
 * parses a key. The encodings are the same whatever the backend (OAEP seeds and PSS salts are
 * random, so each side accepts what the other makes).
 */
export interface RsaBackend {
  readonly name: string;
  /** RSA-OAEP with SHA-256 and MGF1-SHA-256 (RFC 8017 §7.1.1), `label` as the OAEP label L. */
  oaepWrap(to: PublicKeyHandle, secret: Uint8Array, label: Uint8Array): Uint8Array | Promise<Uint8Array>;
  /** RFC 8017 §7.1.2; any failure (wrong key, wrong label, tampering) is an UnwrapError. */
  oaepUnwrap(key: PrivateKeyHandle, wrapped: Uint8Array, label: Uint8Array): Uint8Array | Promise<Uint8Array>;
  /** RSASSA-PSS with SHA-256, MGF1-SHA-256 and a SUITE_V1.pssSaltLength-octet salt (RFC 8017 §8.1.1). */
  pssSign(key: PrivateKeyHandle, data: Uint8Array): Uint8Array | Promise<Uint8Array>;
  /** RFC 8017 §8.1.2 with the suite's salt length; false (never a throw) for any bad signature. */
  pssVerify(key: PublicKeyHandle, signature: Uint8Array, data: Uint8Array): boolean | Promise<boolean>;
}

export const webCryptoRsa: RsaBackend = { name: 'webcrypto-rsa-oaep-pss', oaepWrap, oaepUnwrap, pssSign, pssVerify };

/** Domain-separated signature input: "sws/1 <context>" ‖ 0x00 ‖ parts (as TLS 1.3 §4.4.3 does). */
export function signatureInput(context: string, ...parts: Uint8Array[]): Uint8Array {
  return concatBytes(utf8(`sws/${SUITE_V1.version} ${context}`), new Uint8Array([0]), ...parts);
}

// ---------------------------------------------------------------------------------------
// HKDF (RFC 5869) over HMAC-SHA-256
// ---------------------------------------------------------------------------------------

async function hmacSha256(key: Uint8Array, data: Uint8Array): Promise<Uint8Array> {
  const k = await subtle().importKey('raw', own(key.length === 0 ? new Uint8Array(32) : key), { name: 'HMAC', hash: 'SHA-256' }, false, ['sign']);
  return new Uint8Array(await subtle().sign('HMAC', k, own(data)));
}

/** RFC 5869 §2.2. An empty salt means HashLen zero octets. */
export async function hkdfExtract(salt: Uint8Array, ikm: Uint8Array): Promise<Uint8Array> {
  return hmacSha256(salt, ikm);
}

/** RFC 5869 §2.3. */
export async function hkdfExpand(prk: Uint8Array, info: Uint8Array, length: number): Promise<Uint8Array> {
  if (length > 255 * 32) throw new RangeError('HKDF-Expand length too large');
  const key = await subtle().importKey('raw', own(prk), { name: 'HMAC', hash: 'SHA-256' }, false, ['sign']);
  const out = new Uint8Array(length);
  let prev = new Uint8Array(0);
  for (let i = 1, off = 0; off < length; i++) {
    prev = new Uint8Array(await subtle().sign('HMAC', key, own(concatBytes(prev, info, new Uint8Array([i])))));
    out.set(prev.subarray(0, Math.min(32, length - off)), off);
    off += 32;
  }
  return out;
}

/**
 * TLS 1.3-style labelled expansion (RFC 8446 §7.1): HkdfLabel = uint16 length ‖
 * opaque label<7..255> = "sws/1 " + label ‖ opaque context<0..255>.
 */
export function hkdfLabel(length: number, label: string, context: Uint8Array): Uint8Array {
  const fullLabel = utf8(`sws/${SUITE_V1.version} ${label}`);
  if (fullLabel.length > 255 || context.length > 255) throw new RangeError('HKDF label or context too long');
  return concatBytes(new Uint8Array([length >> 8, length & 0xff, fullLabel.length]), fullLabel, new Uint8Array([context.length]), context);
}

export async function hkdfExpandLabel(prk: Uint8Array, label: string, context: Uint8Array, length: number): Promise<Uint8Array> {
  return hkdfExpand(prk, hkdfLabel(length, label, context), length);
}

// ---------------------------------------------------------------------------------------
// AES-256-GCM
// ---------------------------------------------------------------------------------------

/** Imports a raw AES-GCM key once; the caller should drop (and may zero) the raw bytes. */
export async function importAesKey(raw: Uint8Array): Promise<CryptoKey> {
  if (raw.length !== 16 && raw.length !== 32) throw new KeyFormatError('AES key must be 16 or 32 octets');
  return subtle().importKey('raw', own(raw), { name: 'AES-GCM' }, false, ['encrypt', 'decrypt']);
}

/** Returns ciphertext ‖ 16-octet tag. */
export async function aesGcmSeal(key: CryptoKey, nonce: Uint8Array, aad: Uint8Array, plaintext: Uint8Array): Promise<Uint8Array> {
  return new Uint8Array(
    await subtle().encrypt({ name: 'AES-GCM', iv: nonce as Uint8Array<ArrayBuffer>, additionalData: aad as Uint8Array<ArrayBuffer>, tagLength: 128 }, key, plaintext as Uint8Array<ArrayBuffer>),
  );
}

/** Opens ciphertext ‖ tag; any failure is a DecryptError and no plaintext is released. */
export async function aesGcmOpen(key: CryptoKey, nonce: Uint8Array, aad: Uint8Array, sealed: Uint8Array): Promise<Uint8Array> {
  try {
    return new Uint8Array(
      await subtle().decrypt({ name: 'AES-GCM', iv: nonce as Uint8Array<ArrayBuffer>, additionalData: aad as Uint8Array<ArrayBuffer>, tagLength: 128 }, key, sealed as Uint8Array<ArrayBuffer>),
    );
  } catch (cause) {
    throw new DecryptError(undefined, { cause });
  }
}

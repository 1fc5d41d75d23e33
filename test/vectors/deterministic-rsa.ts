/**
 * TEST-ONLY: RSA-OAEP-SHA256 and RSA-PSS-SHA256 with caller-chosen seed and salt, so the
 * vector generator makes the same octets on every run. Production code never imports
 * this: WebCrypto draws OAEP seeds and PSS salts itself, as it must.
 *
 * The encodings follow RFC 8017 §7.1.1 (EME-OAEP) and §9.1.1 (EMSA-PSS) exactly; the raw
 * RSA operation is node:crypto with RSA_NO_PADDING. Their output is checked by WebCrypto
 * (decrypt / verify) in core/vectors.test.ts, so a mistake here fails the tests.
 *
 * `withFixedRandomness` replaces `crypto.subtle.encrypt` (RSA-OAEP) and `crypto.subtle.sign`
 * (RSA-PSS) for the CryptoKeys it is given, and only while `run` is running; every other
 * call goes to WebCrypto unchanged.
 */
import { constants, createHash, privateDecrypt, publicEncrypt, type KeyObject } from 'node:crypto';

const H_LEN = 32;

function sha256(...parts: Uint8Array[]): Uint8Array {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return new Uint8Array(h.digest());
}

/** MGF1 with SHA-256 (RFC 8017 §B.2.1). */
export function mgf1(seed: Uint8Array, length: number): Uint8Array {
  const out = new Uint8Array(length);
  for (let counter = 0, off = 0; off < length; counter++, off += H_LEN) {
    const c = new Uint8Array([counter >>> 24, (counter >>> 16) & 0xff, (counter >>> 8) & 0xff, counter & 0xff]);
    out.set(sha256(seed, c).subarray(0, Math.min(H_LEN, length - off)), off);
  }
  return out;
}

function xorInto(a: Uint8Array, b: Uint8Array): void {
  for (let i = 0; i < a.length; i++) a[i]! ^= b[i]!;
}

function modulusBits(key: KeyObject): number {
  const bits = key.asymmetricKeyDetails?.modulusLength;
  if (!bits) throw new Error('not an RSA key');
  return bits;
}

/** RSAES-OAEP-ENCRYPT with SHA-256/MGF1-SHA-256 and the given 32-octet seed. */
export function oaepEncryptWithSeed(publicKey: KeyObject, message: Uint8Array, label: Uint8Array, seed: Uint8Array): Uint8Array {
  const k = Math.ceil(modulusBits(publicKey) / 8);
  if (seed.length !== H_LEN) throw new RangeError('OAEP seed must be 32 octets');
  if (message.length > k - 2 * H_LEN - 2) throw new RangeError('message too long');
  const db = new Uint8Array(k - H_LEN - 1);
  db.set(sha256(label), 0);
  db[db.length - message.length - 1] = 0x01;
  db.set(message, db.length - message.length);
  xorInto(db, mgf1(seed, db.length));
  const maskedSeed = seed.slice();
  xorInto(maskedSeed, mgf1(db, H_LEN));
  const em = new Uint8Array(k);
  em.set(maskedSeed, 1);
  em.set(db, 1 + H_LEN);
  return new Uint8Array(publicEncrypt({ key: publicKey, padding: constants.RSA_NO_PADDING }, em));
}

/** RSASSA-PSS-SIGN with SHA-256/MGF1-SHA-256 and the given salt. */
export function pssSignWithSalt(privateKey: KeyObject, message: Uint8Array, salt: Uint8Array): Uint8Array {
  const modBits = modulusBits(privateKey);
  const k = Math.ceil(modBits / 8);
  const emBits = modBits - 1;
  const emLen = Math.ceil(emBits / 8);
  if (emLen < H_LEN + salt.length + 2) throw new RangeError('key too small for this salt');
  const h = sha256(new Uint8Array(8), sha256(message), salt);
  const db = new Uint8Array(emLen - H_LEN - 1);
  db[db.length - salt.length - 1] = 0x01;
  db.set(salt, db.length - salt.length);
  xorInto(db, mgf1(h, db.length));
  db[0]! &= 0xff >>> (8 * emLen - emBits);
  const em = new Uint8Array(k);
  em.set(db, k - emLen);
  em.set(h, k - emLen + db.length);
  em[k - 1] = 0xbc;
  // s = EM^d mod n: a raw private-key operation on an input below the modulus.
  return new Uint8Array(privateDecrypt({ key: privateKey, padding: constants.RSA_NO_PADDING }, em));
}

/** A counter-mode SHA-256 stream: block i = SHA-256(label ‖ 0x00 ‖ uint32 i). Deterministic by design. */
export class FixedRandom {
  readonly #label: Uint8Array;
  #counter = 0;
  /** Every draw, in order, for the vector file. */
  readonly draws: { purpose: string; bytes: Uint8Array }[] = [];
  constructor(label: string) {
    this.#label = new TextEncoder().encode(label);
  }
  next(n: number, purpose: string): Uint8Array {
    const out = new Uint8Array(n);
    for (let off = 0; off < n; off += H_LEN) {
      const i = this.#counter++;
      const block = sha256(this.#label, new Uint8Array([0, i >>> 24, (i >>> 16) & 0xff, (i >>> 8) & 0xff, i & 0xff]));
      out.set(block.subarray(0, Math.min(H_LEN, n - off)), off);
    }
    this.draws.push({ purpose, bytes: out });
    return out;
  }
}

export interface FixedKey {
  /** The CryptoKey core will pass to subtle.encrypt (OAEP) or subtle.sign (PSS). */
  readonly cryptoKey: CryptoKey;
  /** The same key as a node:crypto KeyObject (public for OAEP, private for PSS). */
  readonly keyObject: KeyObject;
  /** Names the draw in the vector file, e.g. "user PSS salt". */
  readonly purpose: string;
}

function bytesOf(src: BufferSource | undefined): Uint8Array {
  if (src === undefined) return new Uint8Array(0);
  if (src instanceof ArrayBuffer) return new Uint8Array(src);
  return new Uint8Array(src.buffer, src.byteOffset, src.byteLength);
}

/** Runs `run` with OAEP seeds and PSS salts for `keys` drawn from `random`; restores WebCrypto after. */
export async function withFixedRandomness<T>(random: FixedRandom, keys: readonly FixedKey[], run: () => Promise<T>): Promise<T> {
  const subtle = globalThis.crypto.subtle;
  const byKey = new Map(keys.map((k) => [k.cryptoKey, k]));
  const origEncrypt = subtle.encrypt;
  const origSign = subtle.sign;
  const ownBefore = { encrypt: Object.getOwnPropertyDescriptor(subtle, 'encrypt'), sign: Object.getOwnPropertyDescriptor(subtle, 'sign') };
  type Alg = { name?: string; label?: BufferSource; saltLength?: number };
  subtle.encrypt = async function (this: SubtleCrypto, alg: unknown, key: CryptoKey, data: BufferSource) {
    const fixed = byKey.get(key);
    const a = alg as Alg;
    if (fixed && a.name === 'RSA-OAEP') return oaepEncryptWithSeed(fixed.keyObject, bytesOf(data), bytesOf(a.label), random.next(H_LEN, fixed.purpose)).buffer as ArrayBuffer;
    return origEncrypt.call(this, alg as AlgorithmIdentifier, key, data);
  } as SubtleCrypto['encrypt'];
  subtle.sign = async function (this: SubtleCrypto, alg: unknown, key: CryptoKey, data: BufferSource) {
    const fixed = byKey.get(key);
    const a = alg as Alg;
    if (fixed && a.name === 'RSA-PSS') return pssSignWithSalt(fixed.keyObject, bytesOf(data), random.next(a.saltLength ?? H_LEN, fixed.purpose)).buffer as ArrayBuffer;
    return origSign.call(this, alg as AlgorithmIdentifier, key, data);
  } as SubtleCrypto['sign'];
  try {
    return await run();
  } finally {
    // The prototype methods come back once the own properties are gone.
    for (const name of ['encrypt', 'sign'] as const) {
      const before = ownBefore[name];
      if (before) Object.defineProperty(subtle, name, before);
      else delete (subtle as { encrypt?: unknown; sign?: unknown })[name];
    }
  }
}

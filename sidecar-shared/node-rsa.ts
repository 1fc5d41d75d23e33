/**
 * RSA-OAEP-SHA256 and RSASSA-PSS-SHA256 (RFC 8017 §7.1, §8.1) for the Node sidecars through
 * node:crypto, injected into the core as its RsaBackend (core/crypto.ts). Same algorithms,
 * parameters (SUITE_V1) and encodings as the core's WebCrypto default, without WebCrypto's
 * per-call argument normalisation: on 2 cores a sync private op ran ~20 % faster than the
 * WebCrypto one and the public ops 2.3–2.7× faster (npm run bench:core).
 *
 * Keys: the core's handles hold CryptoKeys imported once at start-up or exchange time; each is
 * turned into its node KeyObject once (KeyObject.from, no copy of the key material) and kept
 * beside it in a WeakMap, so no operation imports or parses a key.
 *
 * PSS signing runs on the libuv pool (the callback form of crypto.sign), so a sidecar's event
 * loop keeps serving other requests, and decrypting the next exchange, while a signature is
 * made. Measured on 2 cores: +27 % exchanges/s at an inner with 8 in flight, +20 % in-process
 * with 4 in flight, −10 to −13 % for one exchange at a time (the pool hop costs ~35 µs of main
 * thread plus a wake-up). Verification and OAEP encryption (~25 µs each) run inline: a pool
 * hop costs them more than it saves. OAEP decryption, the inner's other private operation, has
 * no asynchronous node:crypto form, so it is the core's WebCrypto one, a job on the same pool:
 * ~60–120 µs more CPU and latency per decryption than node's inline privateDecrypt, but ~0.3 ms
 * less on the event loop. Through the chain with the `request` policy that gave +5 % requests/s
 * at 16 connections and +7 % at 64 (docs/PERFORMANCE.md, "OAEP decryption on the pool").
 */
import { constants, KeyObject, publicEncrypt, sign, verify, type RsaPrivateKey, type SignKeyObjectInput } from 'node:crypto';
import { oaepUnwrap as webCryptoOaepUnwrap, SUITE_V1, type RsaBackend } from '../core/crypto.ts';

/** SUITE_V1.hash in OpenSSL's spelling; OpenSSL uses it for MGF1 too, as the suite requires. */
const HASH = 'sha256';

const keyObjects = new WeakMap<CryptoKey, KeyObject>();

function keyObject(key: CryptoKey): KeyObject {
  let native = keyObjects.get(key);
  if (!native) {
    native = KeyObject.from(key);
    keyObjects.set(key, native);
  }
  return native;
}

function pss(key: CryptoKey): SignKeyObjectInput {
  return { key: keyObject(key), padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: SUITE_V1.pssSaltLength };
}

function oaep(key: CryptoKey, label: Uint8Array): RsaPrivateKey {
  return { key: keyObject(key), padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: HASH, oaepLabel: label };
}

export const nodeRsa: RsaBackend = {
  name: 'node-crypto-rsa-oaep-pss',
  oaepWrap(to, secret, label) {
    return new Uint8Array(publicEncrypt(oaep(to.encryptKey, label), secret));
  },
  // Off the event loop, on the libuv pool; its failures are UnwrapErrors already.
  oaepUnwrap: webCryptoOaepUnwrap,
  pssSign(key, data) {
    return new Promise((resolve, reject) => {
      sign(HASH, data, pss(key.signKey), (error, signature) => (error ? reject(error) : resolve(new Uint8Array(signature))));
    });
  },
  pssVerify(key, signature, data) {
    try {
      return verify(HASH, data, pss(key.verifyKey), signature);
    } catch {
      return false;
    }
  },
};

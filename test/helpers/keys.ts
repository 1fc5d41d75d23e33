/** Test fixtures: RSA key pairs generated once per test process (never checked in). */
import { generateRsaKeyPair, importPrivateKey, importPublicKey, type PrivateKeyHandle, type PublicKeyHandle, type RsaKeyBits } from '../../core/index.ts';

export interface TestParty {
  readonly priv: PrivateKeyHandle;
  readonly pub: PublicKeyHandle;
  readonly pkcs8: Uint8Array;
  readonly spki: Uint8Array;
}

const cache = new Map<string, Promise<TestParty>>();

/** A key pair named `name`, generated on first use and shared within the process. */
export function party(name: string, bits: RsaKeyBits = 2048): Promise<TestParty> {
  const key = `${name}/${bits}`;
  let p = cache.get(key);
  if (!p) {
    p = (async () => {
      const m = await generateRsaKeyPair(bits);
      return { priv: await importPrivateKey(m.pkcs8), pub: await importPublicKey(m.spki), pkcs8: m.pkcs8, spki: m.spki };
    })();
    cache.set(key, p);
  }
  return p;
}

/**
 * A key endorsement: the inner's old key vouching for its successor, so an outer can move to
 * a rotated inner key without a second trusted channel (the same idea as a TLS certificate's
 * issuer signature, or TUF's root rotation: each key signs the next).
 *
 *   statement = JSON { type, version, previousKeyId, newKeyId, newPublicKey, issuedAt, overlapUntil }
 *   signature = RSASSA-PSS-SHA256 by the previous key over
 *               "sws/1 inner key endorsement" ‖ 0x00 ‖ UTF-8(JSON of the fields, in that order)
 *
 * The domain-separated signature context (core/crypto.ts signatureInput) keeps it apart from
 * every protocol signature the same key makes.
 */
import { fromBase64, toBase64, utf8 } from '../core/bytes.ts';
import { importPrivateKey, importPublicKey, pssSign, pssVerify, signatureInput } from '../core/crypto.ts';
import { toHex } from '../core/bytes.ts';
import { KeyFormatError } from '../core/errors.ts';
import { lazySchema, type Z } from './zod.ts';
import { SwsError } from './errors.ts';

export const ENDORSEMENT_TYPE = 'sws-inner-key-endorsement';
const CONTEXT = 'inner key endorsement';

// Built on first use: an inner loads zod only once its key has been rotated.
const endorsementSchema = lazySchema((z) => {
  const hex64 = z.string().regex(/^[0-9a-f]{64}$/);
  return z.object({
    type: z.literal(ENDORSEMENT_TYPE),
    version: z.literal(1),
    previousKeyId: hex64,
    newKeyId: hex64,
    newPublicKey: z.string().min(1).max(4096),
    issuedAt: z.string().min(1).max(64),
    overlapUntil: z.string().min(1).max(64),
    signature: z.string().regex(/^[A-Za-z0-9+/]+={0,2}$/).max(1024),
  });
});

export type KeyEndorsement = Z.infer<ReturnType<typeof endorsementSchema>>;

export class EndorsementError extends SwsError {
  constructor(message: string) {
    super('SWS_ERR_ENDORSEMENT', message);
  }
}

function signedBytes(e: Omit<KeyEndorsement, 'signature'>): Uint8Array {
  const fields = [e.type, e.version, e.previousKeyId, e.newKeyId, e.newPublicKey, e.issuedAt, e.overlapUntil] as const;
  const json = JSON.stringify({
    type: fields[0],
    version: fields[1],
    previousKeyId: fields[2],
    newKeyId: fields[3],
    newPublicKey: fields[4],
    issuedAt: fields[5],
    overlapUntil: fields[6],
  });
  return signatureInput(CONTEXT, utf8(json));
}

/** Signs the endorsement of `newPublicKeyPem` with the previous key (PKCS #8 DER). */
export async function endorseKey(previousPkcs8: Uint8Array, newPublicKeyPem: string, overlapUntil: Date, now = new Date()): Promise<KeyEndorsement> {
  const prev = await importPrivateKey(previousPkcs8);
  const next = await importPublicKey(newPublicKeyPem);
  const body = {
    type: ENDORSEMENT_TYPE,
    version: 1 as const,
    previousKeyId: toHex(prev.keyId),
    newKeyId: toHex(next.keyId),
    newPublicKey: newPublicKeyPem,
    issuedAt: now.toISOString(),
    overlapUntil: overlapUntil.toISOString(),
  } as const;
  const signature = await pssSign(prev, signedBytes(body));
  return { ...body, signature: toBase64(signature) };
}

/** Parses a statement (JSON text or object); throws EndorsementError naming what is wrong. */
export function parseEndorsement(input: string | unknown): KeyEndorsement {
  let value: unknown = input;
  if (typeof input === 'string') {
    try {
      value = JSON.parse(input);
    } catch {
      throw new EndorsementError('the key statement is not JSON (expected the output of `sws inner key --statement`)');
    }
  }
  const r = endorsementSchema().safeParse(value);
  if (!r.success) throw new EndorsementError(`the key statement is not an sws inner key endorsement (${r.error.issues[0]?.path.join('.') || 'shape'})`);
  return r.data;
}

/**
 * Verifies that `statement` was signed by the key `previousPublicKeyPem` and endorses the key
 * it carries; returns the endorsed key's PEM and ID.
 */
export async function verifyEndorsement(statement: KeyEndorsement, previousPublicKeyPem: string): Promise<{ publicKeyPem: string; keyId: string }> {
  const prev = await importPublicKey(previousPublicKeyPem);
  if (toHex(prev.keyId) !== statement.previousKeyId) throw new EndorsementError('the key statement was made by another key than the one this outer holds for the server');
  let next;
  try {
    next = await importPublicKey(statement.newPublicKey);
  } catch (e) {
    if (e instanceof KeyFormatError) throw new EndorsementError('the key statement carries an unusable public key');
    throw e;
  }
  if (toHex(next.keyId) !== statement.newKeyId) throw new EndorsementError('the key statement names a key ID that does not match its public key');
  const { signature, ...body } = statement;
  let sig: Uint8Array;
  try {
    sig = fromBase64(signature);
  } catch {
    throw new EndorsementError('the key statement signature is not base64');
  }
  if (!(await pssVerify(prev, sig, signedBytes(body)))) throw new EndorsementError('the key statement signature does not verify with the previous key');
  return { publicKeyPem: statement.newPublicKey, keyId: statement.newKeyId };
}

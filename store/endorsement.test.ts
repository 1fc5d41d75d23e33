/**
 * Inner key rotation: the old key's endorsement of the new one verifies only against the old
 * key, and any change to the statement (the key it carries, the IDs, the dates) is refused.
 */
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { toHex } from '../core/bytes.ts';
import { generateRsaKeyPair, keyIdOf, toPem } from '../core/crypto.ts';
import { endorseKey, parseEndorsement, verifyEndorsement, type KeyEndorsement } from './endorsement.ts';

let oldPkcs8: Uint8Array;
let oldPem: string;
let newPem: string;
let strangerPem: string;
let statement: KeyEndorsement;

before(async () => {
  const [a, b, c] = await Promise.all([generateRsaKeyPair(2048), generateRsaKeyPair(2048), generateRsaKeyPair(2048)]);
  oldPkcs8 = a.pkcs8;
  oldPem = toPem(a.spki, 'PUBLIC KEY');
  newPem = toPem(b.spki, 'PUBLIC KEY');
  strangerPem = toPem(c.spki, 'PUBLIC KEY');
  statement = await endorseKey(oldPkcs8, newPem, new Date(Date.now() + 3600_000));
  assert.equal(statement.newKeyId, toHex(await keyIdOf(b.spki)));
});

test('a statement signed by the old key verifies against it and yields the new key', async () => {
  const r = await verifyEndorsement(parseEndorsement(JSON.stringify(statement)), oldPem);
  assert.equal(r.publicKeyPem, newPem);
  assert.equal(r.keyId, statement.newKeyId);
});

test('refused: checked against another key, or with any field changed', async () => {
  await assert.rejects(verifyEndorsement(statement, strangerPem), { code: 'SWS_ERR_ENDORSEMENT' });
  const changed: Partial<KeyEndorsement>[] = [
    { newPublicKey: strangerPem },
    { overlapUntil: new Date(Date.now() + 10 * 3600_000).toISOString() },
    { issuedAt: new Date(0).toISOString() },
    { newKeyId: statement.previousKeyId },
  ];
  for (const c of changed) await assert.rejects(verifyEndorsement({ ...statement, ...c }, oldPem), { code: 'SWS_ERR_ENDORSEMENT' }, JSON.stringify(Object.keys(c)));
});

test('parse: not JSON, or not an endorsement, is SWS_ERR_ENDORSEMENT', () => {
  assert.throws(() => parseEndorsement('-----BEGIN PUBLIC KEY-----'), { code: 'SWS_ERR_ENDORSEMENT' });
  assert.throws(() => parseEndorsement(JSON.stringify({ ...statement, type: 'x' })), { code: 'SWS_ERR_ENDORSEMENT' });
});

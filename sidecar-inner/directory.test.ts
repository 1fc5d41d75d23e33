/**
 * Claim 3 at the inner: who may exchange keys. A registered key is accepted as it is; a
 * registered certificate is judged at every exchange (the clock, the revocation list and the
 * trusted CAs as they are then), and sessions already running are re-judged synchronously
 * after each store change.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { generateKeyPairSync } from 'node:crypto';
import { clients, initStore, type Store } from '../store/index.ts';
import { certificateAuthority } from '../store/ca.ts';
import { tempDir } from '../store/testdata/helpers.ts';
import { ClientKeyDirectory } from './directory.ts';

const tmp = tempDir('sws-directory-');
let store: Store;
const DAY = 86_400_000;

function publicKey(): { pem: string } {
  return { pem: generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey.export({ type: 'spki', format: 'pem' }).toString() };
}

before(async () => {
  store = (await initStore(join(tmp.dir, 'in'), 'inner', { env: {} })).store;
  await certificateAuthority(store).init({ bits: 2048 });
});
after(() => {
  store.close();
  tmp.cleanup();
});

test('a user registered by key: looked up by name and key ID; another key ID is unknown', async () => {
  const c = await clients(store).add({ user: 'kate', publicKeyPem: publicKey().pem });
  const dir = new ClientKeyDirectory(store);
  assert.ok(await dir.lookup('kate', c.keyId));
  assert.equal(await dir.lookup('kate', '00'.repeat(32)), undefined);
  assert.equal(await dir.lookup('nobody', c.keyId), undefined);
  assert.equal(dir.accepts('kate', c.keyId), true);
});

test('a user registered by certificate: accepted while valid; the exchange clock decides expiry', async () => {
  const ca = certificateAuthority(store);
  const notBefore = new Date(Math.floor(Date.now() / 1000) * 1000 - 1000);
  const issued = await ca.sign({ publicKeyPem: publicKey().pem, user: 'carl', notBefore, days: 1 });
  await clients(store).add({ user: 'carl', certPem: issued.certPem });
  let clock = Date.now();
  const dir = new ClientKeyDirectory(store, { now: () => clock });
  assert.ok(await dir.lookup('carl', issued.keyId));
  assert.equal(dir.accepts('carl', issued.keyId), true);
  clock = notBefore.getTime() + DAY + 1000;
  await assert.rejects(dir.lookup('carl', issued.keyId), { code: 'SWS_ERR_CERT_EXPIRED' });
  assert.equal(dir.accepts('carl', issued.keyId), false, 'a running session ends at the next store change');
  clock = notBefore.getTime() - 1000;
  await assert.rejects(dir.lookup('carl', issued.keyId), { code: 'SWS_ERR_CERT_NOT_YET_VALID' });
});

test('revocation and trust changes apply to the next exchange and to running sessions after invalidate()', async () => {
  const ca = certificateAuthority(store);
  const issued = await ca.sign({ publicKeyPem: publicKey().pem, user: 'rita' });
  const reg = await clients(store).add({ user: 'rita', certPem: issued.certPem });
  assert.equal(reg.certificate?.refused, undefined);
  const dir = new ClientKeyDirectory(store);
  assert.ok(await dir.lookup('rita', issued.keyId));
  await ca.revoke({ serial: issued.serial, reason: 'keyCompromise' });
  assert.equal(dir.accepts('rita', issued.keyId), true, 'nothing changes before the store watcher says so');
  dir.invalidate();
  assert.equal(dir.accepts('rita', issued.keyId), false);
  await assert.rejects(dir.lookup('rita', issued.keyId), { code: 'SWS_ERR_CERT_REVOKED' });
  const again = await clients(store).add({ user: 'rita', certPem: issued.certPem }, { replace: true });
  assert.equal(again.certificate?.refused?.code, 'SWS_ERR_CERT_REVOKED', 'registration reports the verdict of the moment');
});

test('registration refuses what can never become valid: another CN, or a certificate without client authentication', async () => {
  const ca = certificateAuthority(store);
  const issued = await ca.sign({ publicKeyPem: publicKey().pem, user: 'otto' });
  await assert.rejects(clients(store).add({ user: 'nototto', certPem: issued.certPem }), (e: Error & { code: string }) => e.code === 'SWS_ERR_USAGE' && /CN=otto/.test(e.message));
  await assert.rejects(clients(store).add({ user: 'otto', certPem: ca.certificatePem() }), { code: 'SWS_ERR_USAGE' });
});

/**
 * Rotating the inner key without downtime: after `rotate` both keys answer exchanges during
 * the overlap, the new key is endorsed by the old one, and when the overlap ends (by the
 * clock or by `retire`) the old key stops answering and its sessions are ended.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { initStore, openStore } from '../store/index.ts';
import { innerKeys } from '../store/innerkeys.ts';
import { parseEndorsement, verifyEndorsement } from '../store/endorsement.ts';
import { tempDir } from '../store/testdata/helpers.ts';
import { RotatingKeyRing } from './keyring.ts';

const tmp = tempDir('sws-keyring-');
after(tmp.cleanup);

test('rotate: both keys answer during the overlap; the new one is current and endorsed by the old; the clock ends the overlap', async () => {
  const { store } = await initStore(join(tmp.dir, 'a'), 'inner', { env: {} });
  let clock = Date.now();
  const ring = await RotatingKeyRing.load(store, { now: () => clock });
  const retired: string[][] = [];
  const loaded: string[] = [];
  ring.watch({ onRetired: (ids) => retired.push([...ids]), onLoaded: (_ids, current) => loaded.push(current) });
  const first = innerKeys(store).current().keyId;
  assert.equal(ring.currentKeyId, first);

  const r = await innerKeys(store).rotate({ overlapSeconds: 60, now: new Date(clock) });
  assert.equal(r.previous.keyId, first);
  assert.equal(r.previous.state, 'retiring');
  // The statement verifies with the old public key and names the new key.
  const endorsed = await verifyEndorsement(parseEndorsement(JSON.stringify(r.endorsement)), r.previous.publicKeyPem);
  assert.equal(endorsed.keyId, r.current.keyId);

  ring.refresh();
  await waitFor(() => loaded.includes(r.current.keyId));
  assert.equal(ring.currentKeyId, r.current.keyId);
  assert.ok(ring.get(first), 'the old key still answers during the overlap');
  assert.ok(ring.get(r.current.keyId));

  clock += 61_000;
  assert.equal(ring.get(first), undefined, 'the old key stops answering when the overlap ends');
  assert.deepEqual(retired, [[first]]);
  assert.ok(ring.get(r.current.keyId));
  ring.close();
  store.close();
});

test('retire: ends the overlap at once, seen by a running ring through a store change made by another connection', async () => {
  const dir = join(tmp.dir, 'b');
  const { store } = await initStore(dir, 'inner', { env: {} });
  const ring = await RotatingKeyRing.load(store);
  const retired: string[] = [];
  ring.watch({ onRetired: (ids) => retired.push(...ids) });
  const admin = openStore(dir, { expectRole: 'inner', env: {} });
  const r = await innerKeys(admin).rotate({ overlapSeconds: 3600 });
  ring.refresh();
  await waitFor(() => ring.currentKeyId === r.current.keyId);
  assert.ok(ring.accepts(r.previous.keyId));
  assert.equal(innerKeys(admin).retire(), 1);
  ring.refresh();
  assert.deepEqual(retired, [r.previous.keyId], 'retired synchronously on refresh');
  assert.equal(ring.get(r.previous.keyId), undefined);
  assert.deepEqual(
    innerKeys(admin).list().map((k) => k.state),
    ['retired', 'current'],
  );
  ring.close();
  admin.close();
  store.close();
});

async function waitFor(cond: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 5));
  }
}

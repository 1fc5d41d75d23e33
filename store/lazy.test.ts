/**
 * What the sidecars load at start-up: the certificate modules the inner imports (ca.ts,
 * certcheck.ts) leave @peculiar/x509 unloaded until a certificate is parsed, so an inner
 * without certificate users never pays its ~10-15 MiB; the CRL reason codes written without
 * it are x509's own.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

// x509.ts evaluates reflect-metadata first, which defines Reflect.getMetadata.
const SCRIPT = `
const loaded = () => typeof Reflect.getMetadata === 'function';
await import('./store/ca.ts');
const { trustAnchor } = await import('./store/certcheck.ts');
await import('./sidecar-inner/directory.ts');
const before = loaded();
await trustAnchor('not a certificate').catch(() => undefined);
console.log(JSON.stringify({ before, after: loaded() }));
`;

test('importing the certificate modules does not load @peculiar/x509; the first certificate does', () => {
  const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', SCRIPT], { cwd: ROOT, encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual(JSON.parse(r.stdout), { before: false, after: true });
});

test('REVOCATION_REASONS are the RFC 5280 CRLReason codes of x509.X509CrlReason', async () => {
  const { REVOCATION_REASONS } = await import('./ca.ts');
  const { x509 } = await import('./x509.ts');
  assert.deepEqual(REVOCATION_REASONS, {
    unspecified: x509.X509CrlReason.unspecified,
    keyCompromise: x509.X509CrlReason.keyCompromise,
    caCompromise: x509.X509CrlReason.cACompromise,
    affiliationChanged: x509.X509CrlReason.affiliationChanged,
    superseded: x509.X509CrlReason.superseded,
    cessationOfOperation: x509.X509CrlReason.cessationOfOperation,
    privilegeWithdrawn: x509.X509CrlReason.privilegeWithdrawn,
  });
});

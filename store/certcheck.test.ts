/**
 * Claim 3, accepting a user by certificate: from one valid baseline, change one thing and
 * assert the stable code (expired, not yet valid, wrong CA, revoked, usage, name), through an
 * intermediate CA too.
 */
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { analyzeCertificate, certificateVerdict, CertErrorCodes, trustAnchor, type TrustAnchor } from './certcheck.ts';
import { certificatePem, cnName, normalizeSerial, randomSerial, sha256Hex, spkiOf, X509_SIGNING, x509 } from './x509.ts';

const DAY = 86_400_000;
const NOW = Date.UTC(2026, 0, 15);

interface Issuer {
  readonly cert: x509.X509Certificate;
  readonly keys: CryptoKeyPair;
}

async function keyPair(): Promise<CryptoKeyPair> {
  return (await crypto.subtle.generateKey({ ...X509_SIGNING, modulusLength: 2048, publicExponent: new Uint8Array([1, 0, 1]) }, true, ['sign', 'verify'])) as CryptoKeyPair;
}

async function makeCa(name: string, parent?: Issuer): Promise<Issuer> {
  const keys = await keyPair();
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: randomSerial(),
    subject: cnName(name),
    issuer: parent ? parent.cert.subjectName : cnName(name),
    notBefore: new Date(NOW - 365 * DAY),
    notAfter: new Date(NOW + 365 * DAY),
    publicKey: keys.publicKey,
    signingKey: parent ? parent.keys.privateKey : keys.privateKey,
    signingAlgorithm: X509_SIGNING,
    extensions: [new x509.BasicConstraintsExtension(true, undefined, true), new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true)],
  });
  return { cert, keys };
}

let userKeys: CryptoKeyPair;

async function makeUser(issuer: Issuer, over: { cn?: string; notBefore?: number; notAfter?: number; extensions?: x509.Extension[] } = {}): Promise<x509.X509Certificate> {
  return x509.X509CertificateGenerator.create({
    serialNumber: randomSerial(),
    subject: cnName(over.cn ?? 'alice'),
    issuer: issuer.cert.subjectName,
    notBefore: new Date(over.notBefore ?? NOW - DAY),
    notAfter: new Date(over.notAfter ?? NOW + 30 * DAY),
    publicKey: userKeys.publicKey,
    signingKey: issuer.keys.privateKey,
    signingAlgorithm: X509_SIGNING,
    extensions: over.extensions ?? [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.clientAuth]),
    ],
  });
}

let root: Issuer;
let other: Issuer;
let anchors: TrustAnchor[];
const noneRevoked = () => false;

before(async () => {
  userKeys = await keyPair();
  [root, other] = await Promise.all([makeCa('root CA'), makeCa('other CA')]);
  anchors = [await trustAnchor(certificatePem(root.cert))];
});

async function verdictOf(pem: string, ctx: { user?: string; now?: number; isRevoked?: (i: string, s: string) => boolean } = {}): Promise<string> {
  const a = await analyzeCertificate(pem, anchors);
  try {
    certificateVerdict(a, { user: ctx.user ?? 'alice', now: ctx.now ?? NOW, isRevoked: ctx.isRevoked ?? noneRevoked });
    return 'accepted';
  } catch (e) {
    return (e as { code: string }).code;
  }
}

test('baseline: a certificate of a trusted CA, valid now, for CN=alice with digitalSignature + clientAuth is accepted; its key ID is the SPKI hash', async () => {
  const cert = await makeUser(root);
  assert.equal(await verdictOf(certificatePem(cert)), 'accepted');
  const a = await analyzeCertificate(certificatePem(cert), anchors);
  assert.equal(a.keyId, await sha256Hex(spkiOf(cert)));
  assert.equal(a.commonName, 'alice');
});

test('expired, not yet valid, wrong CA, revoked: each refused with its own code', async () => {
  assert.equal(await verdictOf(certificatePem(await makeUser(root, { notBefore: NOW - 60 * DAY, notAfter: NOW - DAY }))), CertErrorCodes.EXPIRED);
  assert.equal(await verdictOf(certificatePem(await makeUser(root, { notBefore: NOW + DAY, notAfter: NOW + 60 * DAY }))), CertErrorCodes.NOT_YET_VALID);
  assert.equal(await verdictOf(certificatePem(await makeUser(other))), CertErrorCodes.UNTRUSTED);
  const cert = await makeUser(root);
  const rootId = await sha256Hex(spkiOf(root.cert));
  const serial = normalizeSerial(cert.serialNumber);
  assert.equal(await verdictOf(certificatePem(cert), { isRevoked: (i, s) => i === rootId && s === serial }), CertErrorCodes.REVOKED);
});

test('the validity period is checked against the clock of each exchange (same certificate, three instants)', async () => {
  const pem = certificatePem(await makeUser(root, { notBefore: NOW, notAfter: NOW + DAY }));
  assert.equal(await verdictOf(pem, { now: NOW - 1000 }), CertErrorCodes.NOT_YET_VALID);
  assert.equal(await verdictOf(pem, { now: NOW + 1000 }), 'accepted');
  assert.equal(await verdictOf(pem, { now: NOW + DAY + 1000 }), CertErrorCodes.EXPIRED);
});

test('usage: a CA certificate, no digitalSignature, or serverAuth only are refused as SWS_ERR_CERT_USAGE', async () => {
  const ca = [new x509.BasicConstraintsExtension(true, undefined, true)];
  const noSig = [new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyEncipherment, true)];
  const server = [new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth])];
  for (const extensions of [ca, noSig, server]) assert.equal(await verdictOf(certificatePem(await makeUser(root, { extensions }))), CertErrorCodes.USAGE);
  // No usage extensions at all: unrestricted (RFC 5280 §4.2.1.3, §4.2.1.12).
  assert.equal(await verdictOf(certificatePem(await makeUser(root, { extensions: [] }))), 'accepted');
});

test('name: the subject CN must be the user name the exchange claims', async () => {
  const pem = certificatePem(await makeUser(root, { cn: 'mallory' }));
  assert.equal(await verdictOf(pem, { user: 'alice' }), CertErrorCodes.NAME);
  assert.equal(await verdictOf(pem, { user: 'mallory' }), 'accepted');
});

test('intermediates: a chain through an intermediate CA is accepted; a revoked or expired intermediate refuses it', async () => {
  const mid = await makeCa('intermediate CA', root);
  const leaf = await makeUser(mid);
  const chain = certificatePem(leaf) + certificatePem(mid.cert);
  assert.equal(await verdictOf(chain), 'accepted');
  assert.equal(await verdictOf(certificatePem(leaf)), CertErrorCodes.UNTRUSTED, 'without the intermediate there is no path');
  const midSerial = normalizeSerial(mid.cert.serialNumber);
  assert.equal(await verdictOf(chain, { isRevoked: (_i, s) => s === midSerial }), CertErrorCodes.REVOKED);
  assert.equal(await verdictOf(chain, { now: NOW + 400 * DAY }), CertErrorCodes.EXPIRED);
});

test('a forged certificate that names a trusted CA as issuer but is signed by another key is refused as untrusted', async () => {
  const forged = await x509.X509CertificateGenerator.create({
    serialNumber: randomSerial(),
    subject: cnName('alice'),
    issuer: root.cert.subjectName,
    notBefore: new Date(NOW - DAY),
    notAfter: new Date(NOW + DAY),
    publicKey: userKeys.publicKey,
    signingKey: other.keys.privateKey,
    signingAlgorithm: X509_SIGNING,
  });
  assert.equal(await verdictOf(certificatePem(forged)), CertErrorCodes.UNTRUSTED);
});

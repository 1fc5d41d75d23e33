/**
 * X.509 (RFC 5280) and PKCS #10 (RFC 2986) through @peculiar/x509, on WebCrypto: the one
 * place sws builds or reads certificates, requests and CRLs. No hand-written ASN.1.
 *
 * Every signature sws makes here is RSASSA-PKCS1-v1_5 with SHA-256 (`sha256WithRSAEncryption`),
 * the algorithm every TLS stack and `openssl verify` accept. RSA-PSS and ECDSA signatures
 * made by other tools (openssl) are verified as well.
 */
// @peculiar/x509 resolves its algorithm providers through tsyringe, which needs the Reflect
// metadata API: the polyfill must be evaluated first (ES modules evaluate in import order).
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { toHex } from '../core/bytes.ts';
import { fromPem } from '../core/crypto.ts';
import { KeyFormatError } from '../core/errors.ts';
import { isIP } from 'node:net';
import { UsageError } from './errors.ts';

x509.cryptoProvider.set(globalThis.crypto);

export { x509 };

/** The algorithm of every key and signature sws makes for X.509. */
export const X509_SIGNING = { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' } as const;

const subtle = () => globalThis.crypto.subtle;

/** Serial numbers as sws stores and compares them: lower-case hex, no leading zeros. */
export function normalizeSerial(hex: string): string {
  const h = hex.trim().toLowerCase().replace(/^0x/, '').replace(/:/g, '');
  if (!/^[0-9a-f]+$/.test(h)) throw new KeyFormatError('a certificate serial number is hexadecimal (e.g. 1f03a9…)');
  return h.replace(/^0+/, '') || '0';
}

/** Every "CERTIFICATE" block of a PEM text, in order. */
export function pemCertificates(pem: string): string[] {
  return pem.match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g) ?? [];
}

export function parseCertificate(pem: string): x509.X509Certificate {
  const der = fromPem(pem, 'CERTIFICATE');
  try {
    return new x509.X509Certificate(new Uint8Array(der));
  } catch (cause) {
    throw new KeyFormatError('the certificate is not a valid X.509 certificate in PEM form', { cause });
  }
}

export function parseCsr(pem: string): x509.Pkcs10CertificateRequest {
  const der = fromPem(pem, 'CERTIFICATE REQUEST');
  try {
    return new x509.Pkcs10CertificateRequest(new Uint8Array(der));
  } catch (cause) {
    throw new KeyFormatError('the certificate request is not a valid PKCS #10 request in PEM form', { cause });
  }
}

/** PEM (RFC 7468) of a certificate, request or CRL. */
export function certificatePem(item: x509.X509Certificate | x509.Pkcs10CertificateRequest | x509.X509Crl): string {
  const label = item instanceof x509.X509Certificate ? 'CERTIFICATE' : item instanceof x509.X509Crl ? 'X509 CRL' : 'CERTIFICATE REQUEST';
  const b64 = Buffer.from(item.rawData).toString('base64');
  const lines: string[] = [];
  for (let i = 0; i < b64.length; i += 64) lines.push(b64.slice(i, i + 64));
  return `-----BEGIN ${label}-----\n${lines.join('\n')}\n-----END ${label}-----\n`;
}

/** SubjectPublicKeyInfo DER of a certificate or request. */
export function spkiOf(item: x509.X509Certificate | x509.Pkcs10CertificateRequest): Uint8Array {
  return new Uint8Array(item.publicKey.rawData);
}

/** Hex SHA-256 of DER bytes (certificate fingerprints, SPKI key IDs). */
export async function sha256Hex(der: Uint8Array | ArrayBuffer): Promise<string> {
  return toHex(new Uint8Array(await subtle().digest('SHA-256', der instanceof Uint8Array ? new Uint8Array(der) : der)));
}

/** The subject's common name (the first CN), or undefined. */
export function commonName(name: x509.Name | string): string | undefined {
  const n = typeof name === 'string' ? new x509.Name(name) : name;
  return n.getField('CN')[0];
}

/** Builds a distinguished name with one CN, escaping what RFC 4514 requires. */
export function cnName(cn: string): x509.Name {
  return new x509.Name([{ CN: [cn] }]);
}

/** Imports an RSA PKCS #8 private key for X.509 signing (non-extractable). */
export async function importX509SigningKey(pkcs8: Uint8Array): Promise<CryptoKey> {
  try {
    return await subtle().importKey('pkcs8', new Uint8Array(pkcs8), X509_SIGNING, false, ['sign']);
  } catch (cause) {
    throw new KeyFormatError('the private key is not an RSA PKCS #8 key', { cause });
  }
}

/** Imports an RSA SPKI for X.509 use (the public half placed in certificates and requests). */
export async function importX509PublicKey(spki: Uint8Array): Promise<CryptoKey> {
  try {
    return await subtle().importKey('spki', new Uint8Array(spki), X509_SIGNING, true, ['verify']);
  } catch (cause) {
    throw new KeyFormatError('the public key is not an RSA SubjectPublicKeyInfo', { cause });
  }
}

/** A random, positive 128-bit serial (RFC 5280 §4.1.2.2: at most 20 octets, positive). */
export function randomSerial(): string {
  const b = globalThis.crypto.getRandomValues(new Uint8Array(16));
  b[0] = (b[0]! & 0x7f) | 0x01;
  return toHex(b);
}

/**
 * The names of a TLS server certificate (`sws ca sign --server`): DNS names (RFC 1035
 * labels, a leading `*.` allowed) and IP addresses (v4 or v6), at most 32, each once.
 * Returns them as subjectAltName entries; throws a UsageError naming `flag` otherwise.
 */
export function serverNames(list: readonly string[], flag = '--server'): { type: 'dns' | 'ip'; value: string }[] {
  const out: { type: 'dns' | 'ip'; value: string }[] = [];
  const seen = new Set<string>();
  for (const raw of list) {
    const name = raw.trim().toLowerCase();
    if (name === '') continue;
    let entry: { type: 'dns' | 'ip'; value: string };
    if (isIP(name) !== 0) entry = { type: 'ip', value: name };
    else if (name.length <= 253 && /^(\*\.)?([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/.test(name)) entry = { type: 'dns', value: name };
    else throw new UsageError(`"${raw}" is neither a DNS name nor an IP address`, flag);
    if (seen.has(name)) continue;
    seen.add(name);
    out.push(entry);
  }
  if (out.length === 0) throw new UsageError('give at least one DNS name or IP address, comma-separated', flag);
  if (out.length > 32) throw new UsageError('at most 32 names', flag);
  return out;
}

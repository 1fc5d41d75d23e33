/**
 * Certificates made by the real `openssl` binary, for tests that prove sws interoperates with
 * other tools' PKI (claims 3, 6, 7). Everything is generated in a temp dir by the test; no
 * checked-in keys.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface Pem {
  readonly certPath: string;
  readonly keyPath: string;
  readonly cert: string;
  readonly key: string;
}

export function openssl(args: readonly string[], input?: string): string {
  return execFileSync('openssl', args, { encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'], ...(input !== undefined ? { input } : {}) });
}

/** `openssl verify ARGS` output, also when it fails (it exits non-zero; the reason is in its output). */
export function opensslVerify(args: readonly string[]): string {
  try {
    return openssl(['verify', ...args]);
  } catch (e) {
    const x = e as { stdout?: string; stderr?: string };
    return `${x.stdout ?? ''}${x.stderr ?? ''}`;
  }
}

function newKey(path: string): void {
  openssl(['genpkey', '-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048', '-out', path]);
}

/** A self-signed CA (basicConstraints CA:true, keyCertSign + cRLSign). */
export function opensslCa(dir: string, name: string): Pem {
  const keyPath = join(dir, `${name}.key`);
  const certPath = join(dir, `${name}.pem`);
  newKey(keyPath);
  openssl([
    'req', '-x509', '-new', '-key', keyPath, '-subj', `/CN=${name}`, '-days', '30', '-sha256', '-out', certPath,
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign',
  ]);
  return { certPath, keyPath, cert: readFileSync(certPath, 'utf8'), key: readFileSync(keyPath, 'utf8') };
}

/** Signs `csrPath` with `ca`, adding `ext` (openssl extension lines); returns the certificate path. */
export function opensslSign(dir: string, ca: Pem, csrPath: string, out: string, ext: string[], days = 30): string {
  const extPath = join(dir, `${out}.ext`);
  writeFileSync(extPath, ext.join('\n') + '\n');
  const certPath = join(dir, `${out}.pem`);
  openssl(['x509', '-req', '-in', csrPath, '-CA', ca.certPath, '-CAkey', ca.keyPath, '-CAcreateserial', '-days', String(days), '-sha256', '-extfile', extPath, '-out', certPath]);
  return certPath;
}

/** A key pair and certificate signed by `ca` for a TLS server at `sans` (e.g. IP:127.0.0.1) or a client. */
export function opensslLeaf(dir: string, ca: Pem, name: string, usage: 'server' | 'client', sans: string[] = []): Pem {
  const keyPath = join(dir, `${name}.key`);
  const csrPath = join(dir, `${name}.csr`);
  newKey(keyPath);
  openssl(['req', '-new', '-key', keyPath, '-subj', `/CN=${name}`, '-out', csrPath]);
  const ext = [
    'basicConstraints=critical,CA:FALSE',
    `keyUsage=critical,digitalSignature${usage === 'server' ? ',keyEncipherment' : ''}`,
    `extendedKeyUsage=${usage === 'server' ? 'serverAuth' : 'clientAuth'}`,
    ...(sans.length ? [`subjectAltName=${sans.join(',')}`] : []),
  ];
  const certPath = opensslSign(dir, ca, csrPath, name, ext);
  return { certPath, keyPath, cert: readFileSync(certPath, 'utf8'), key: readFileSync(keyPath, 'utf8') };
}

/** The extension lines of a user certificate as `sws ca sign` makes them. */
export const CLIENT_EXT = ['basicConstraints=critical,CA:FALSE', 'keyUsage=critical,digitalSignature', 'extendedKeyUsage=clientAuth'];

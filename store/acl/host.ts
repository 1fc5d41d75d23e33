/**
 * Host keys: how `sws acl grant --host`, `sws inner site add`, `sws server add --hosts` and the
 * sidecars' Host/authority values are compared. One function, so routing (site, inner server)
 * and authorization (ACL) always agree on which site a request is for.
 *
 * Rules: ASCII only (IDNs in their xn-- form), compared lower-case, one trailing dot removed,
 * IPv6 literals in brackets, and a port is part of the key except the default ports 80 and
 * 443, which are dropped whatever the scheme (`Example.com:443` → `example.com`,
 * `example.com:8080` stays). Dropping both is safe because the host only selects a configured
 * site; the site, not the request, decides where and how the inner connects.
 *
 * Pure: no Node imports.
 */
import { HostError } from '../errors.ts';

const LABEL = /^[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?$/;
const IPV6 = /^\[([0-9a-f:.]+)\]$/;

/** Returns the canonical host key, or throws HostError naming what is wrong. */
export function normalizeHost(input: string): string {
  if (typeof input !== 'string' || input.length === 0) throw new HostError('the host is empty');
  if (input.length > 262) throw new HostError('the host is too long');
  let s = input.toLowerCase();
  let port = '';
  const colon = s.lastIndexOf(':');
  const bracket = s.lastIndexOf(']');
  if (colon !== -1 && colon > bracket) {
    port = s.slice(colon + 1);
    s = s.slice(0, colon);
    if (!/^[0-9]{1,5}$/.test(port)) throw new HostError('the port must be a number from 1 to 65535');
    const n = Number(port);
    if (n < 1 || n > 65535) throw new HostError('the port must be a number from 1 to 65535');
    port = n === 80 || n === 443 ? '' : String(n);
  }
  if (s.startsWith('[')) {
    const m = IPV6.exec(s);
    if (!m || !m[1]!.includes(':')) throw new HostError('an IPv6 host must look like [2001:db8::1]');
  } else {
    if (s.endsWith('.')) s = s.slice(0, -1);
    if (s.length === 0 || s.length > 253) throw new HostError('the host name must be 1 to 253 characters');
    for (const label of s.split('.')) {
      if (!LABEL.test(label)) {
        throw new HostError('the host may contain only letters, digits, "-", "_" and dots (write international names in their xn-- form)');
      }
    }
  }
  return port ? `${s}:${port}` : s;
}

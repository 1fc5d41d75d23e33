/**
 * One canonical form of the user's request, made once after decryption and used by the
 * ACL, the cache and the forwarder alike (the bypasses in Pomerium, Envoy and oauth2-proxy
 * came from two parsers disagreeing). Identity and path-override headers a client sent
 * itself are removed here.
 */
import type { FieldLine, RequestHead } from '../core/bhttp.ts';
import { SwsError } from '../core/errors.ts';
import { normalizeTarget, type NormalizedPath } from '../store/index.ts';

/** Headers that let a client pretend to be someone, or to have asked for another path. */
const SPOOFABLE = ['x-original-url', 'x-rewrite-url', 'x-forwarded-uri'];

export interface CanonicalRequest {
  readonly method: string;
  readonly scheme: 'http' | 'https';
  /** Lowercase host, without a default port. */
  readonly host: string;
  /** host[:port] as the client addressed it (lowercase), sent upstream as Host. */
  readonly authority: string;
  readonly target: NormalizedPath;
  readonly headers: FieldLine[];
}

function normalizeName(n: string): string {
  return n.toLowerCase().replace(/_/g, '-');
}

export function canonicalize(head: RequestHead, forwardedUserHeader: string): CanonicalRequest {
  const scheme = head.scheme === 'https' ? 'https' : head.scheme === 'http' ? 'http' : undefined;
  if (!scheme) throw new SwsError('SWS_ERR_BAD_REQUEST', 'only http and https requests can be forwarded');
  const m = /^([a-z0-9.-]+|\[[0-9a-f:.]+\])(?::(\d{1,5}))?$/i.exec(head.authority);
  if (!m) throw new SwsError('SWS_ERR_BAD_REQUEST', 'the request has an invalid host');
  const hostname = m[1]!.toLowerCase();
  const port = m[2] !== undefined ? Number(m[2]) : undefined;
  if (port !== undefined && (port < 1 || port > 65535)) throw new SwsError('SWS_ERR_BAD_REQUEST', 'the request has an invalid port');
  const defaultPort = scheme === 'https' ? 443 : 80;
  const host = port === undefined || port === defaultPort ? hostname : `${hostname}:${port}`;
  const target = normalizeTarget(head.path);
  const identity = normalizeName(forwardedUserHeader);
  const headers = head.headers.filter(([n]) => {
    const k = normalizeName(n);
    return k !== identity && !SPOOFABLE.includes(k) && k !== 'host';
  });
  return { method: head.method, scheme, host, authority: host, target, headers };
}

/**
 * One canonical form of the user's request, made once after decryption and used by the
 * ACL, the cache and the forwarder alike (the bypasses in Pomerium, Envoy and oauth2-proxy
 * came from two parsers disagreeing). Identity and path-override headers a client sent
 * itself, and hop-by-hop fields, are removed here.
 */
import type { FieldLine, RequestHead } from '../core/bhttp.ts';
import { SwsError } from '../core/errors.ts';
import { normalizeTarget, type NormalizedPath } from '../store/index.ts';
import { hopByHopNames } from '../sidecar-shared/headers.ts';

/** Headers that let a client pretend to be someone, or to have asked for another path. */
const SPOOFABLE = ['x-original-url', 'x-rewrite-url', 'x-forwarded-uri'];

/**
 * Fields that describe the hop the request arrived on, never the request itself (RFC 9110
 * §7.6.1). The outer strips them already; the inner strips them again after decryption so
 * that no outer (or a modified one) can make undici refuse the request with a misleading 502.
 * `expect`: the inner holds the whole body stream, so 100-continue has nothing left to gate.
 */
const NOT_FORWARDED = ['expect', 'host'];

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
  const hop = hopByHopNames(head.headers.filter(([n]) => n.toLowerCase() === 'connection').map(([, v]) => v));
  const headers = head.headers.filter(([n]) => {
    const k = normalizeName(n);
    const lower = n.toLowerCase();
    return k !== identity && !SPOOFABLE.includes(k) && !NOT_FORWARDED.includes(k) && !hop.has(lower) && !hop.has(k) && !k.startsWith('proxy-');
  });
  return { method: head.method, scheme, host, authority: host, target, headers };
}

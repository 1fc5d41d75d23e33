/**
 * The client's request target in forward-proxy mode (RFC 9112 §3.2.2 absolute-form), parsed
 * strictly: http only, no userinfo, a valid host and port. Anything else is a 400 that
 * names the problem; nothing is ever sent in clear to the named host.
 */
import { SwsError } from '../core/errors.ts';

export interface ProxyTarget {
  readonly scheme: 'http';
  /** Lowercase host name (brackets kept for IPv6). */
  readonly hostname: string;
  readonly port: number;
  /** host[:port] with the default port omitted: the key of the inner-server list. */
  readonly host: string;
  /** scheme://host[:port]: the destination compared by S102. */
  readonly origin: string;
  /** Path and query as the client sent them (the inner normalizes; one parser decides). */
  readonly pathAndQuery: string;
}

export class BadTargetError extends SwsError {
  constructor(message: string) {
    super('SWS_ERR_BAD_TARGET', message);
  }
}

const ABSOLUTE = /^([a-zA-Z][a-zA-Z0-9+.-]*):\/\/([^/?#]*)([^#]*)$/;

export function parseProxyTarget(raw: string): ProxyTarget {
  const m = ABSOLUTE.exec(raw);
  if (!m) throw new BadTargetError('this is a proxy: requests must use an absolute http:// URL');
  const scheme = m[1]!.toLowerCase();
  if (scheme !== 'http') throw new BadTargetError('only http:// URLs can be requested through sws (the inner may reach the web server over https)');
  const authority = m[2]!;
  if (authority.includes('@')) throw new BadTargetError('URLs with user information (user@host) are not accepted');
  const hm = /^([a-zA-Z0-9.-]+|\[[0-9a-fA-F:.]+\])(?::(\d{1,5}))?$/.exec(authority);
  if (!hm) throw new BadTargetError('the URL has an invalid host');
  const hostname = hm[1]!.toLowerCase();
  const port = hm[2] !== undefined ? Number(hm[2]) : 80;
  if (!(port >= 1 && port <= 65535)) throw new BadTargetError('the URL has an invalid port');
  let pathAndQuery = m[3]!;
  if (pathAndQuery === '') pathAndQuery = '/';
  if (pathAndQuery.startsWith('?')) pathAndQuery = `/${pathAndQuery}`;
  if (!pathAndQuery.startsWith('/') || /[\s\x00-\x1f\x7f]/.test(pathAndQuery)) throw new BadTargetError('the URL path is invalid');
  const host = port === 80 ? hostname : `${hostname}:${port}`;
  return { scheme: 'http', hostname, port, host, origin: `http://${host}`, pathAndQuery };
}

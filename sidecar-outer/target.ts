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
  /** The path alone, without the query (what the access line shows). */
  readonly path: string;
  /** origin + pathAndQuery: the URL a cache keys on. */
  readonly url: string;
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
  const origin = `http://${host}`;
  const q = pathAndQuery.indexOf('?');
  return { scheme: 'http', hostname, port, host, origin, pathAndQuery, path: q < 0 ? pathAndQuery : pathAndQuery.slice(0, q), url: origin + pathAndQuery };
}

/** Targets remembered by a TargetCache before it starts over. */
const MAX_TARGETS = 1024;
/** The longest URL a per-URL memo keeps (longer ones are rare and would make the memo large). */
export const MAX_REMEMBERED_URL = 2048;

/**
 * Remembers the targets parsed last: clients ask for the same URLs again and again (cache hits
 * above all), and a target is immutable. Bounded; malformed ones are never kept (they throw).
 */
export class TargetCache {
  readonly #byRaw = new Map<string, ProxyTarget>();

  parse(raw: string): ProxyTarget {
    let t = this.#byRaw.get(raw);
    if (t === undefined) {
      t = parseProxyTarget(raw);
      if (raw.length > MAX_REMEMBERED_URL) return t;
      if (this.#byRaw.size >= MAX_TARGETS) this.#byRaw.clear();
      this.#byRaw.set(raw, t);
    }
    return t;
  }
}

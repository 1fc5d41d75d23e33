/**
 * The strict request-path normalizer (patent ACL 30 is only as good as the path it is asked
 * about). The inner matches the ACL against `path` and forwards `forwardPath`: both come from
 * the same parse, so what was allowed is exactly what the WWW server receives.
 *
 * Percent-decoding (RFC 3986 §2.1), dot-segment removal (§5.2.4) and merging of duplicate
 * slashes are applied; anything that different servers could read differently is rejected
 * instead of guessed (PathAmbiguousError → exit 2 in the CLI, 400 in the sidecar):
 * - encoded `/` or `\` (%2F, %5C), any raw `\` (IIS, Windows), `#` (a fragment is never sent);
 * - NUL and other control characters, raw or encoded; raw space or non-ASCII octets;
 * - invalid percent-escapes, invalid or overlong UTF-8 after decoding (`%C0%AE`);
 * - double encoding (`%252e`: a `%XX` left after one decoding, which some servers decode again);
 * - `..` above the root; dot segments carrying path parameters (`..;x`, `.;` — Tomcat/Spring
 *   read them as dot segments) and dot-and-space segments Windows trims to `.`/`..` (`...`, `.. `);
 * - characters that "best-fit" mappings turn into `/`, `\` or `.` (U+2215, U+FF0F, U+FF3C, …).
 * These are the bypass classes of CVE-2021-29492 (Envoy %2F), CVE-2020-5410 (Spring Cloud
 * Config %252F), GHSA-4cf4-6qmv-crpj / Pomerium path normalization, oauth2-proxy's
 * trailing-slash and `;` issues, and Orange Tsai's "Breaking Parser Logic" (`..;/`).
 *
 * Pure: no Node imports (TextDecoder/TextEncoder are Web APIs), so it can move to core/.
 */
import { PathAmbiguousError } from '../errors.ts';

declare const normalizedBrand: unique symbol;

/** A request target as the normalizer built it; only `normalizeTarget` makes one. */
export interface NormalizedPath {
  /** Decoded, normalized path used for ACL matching, e.g. `/docs/a b`. */
  readonly path: string;
  /** The same path re-encoded in canonical form, sent upstream, e.g. `/docs/a%20b`. */
  readonly forwardPath: string;
  /** The raw query including the leading `?`, or `''`. Forwarded as received; never matched. */
  readonly query: string;
  /** `path.slice(1).split('/')`, precomputed for the matcher (`/` → `['']`, `/a/` → `['a', '']`). */
  readonly segments: readonly string[];
  readonly [normalizedBrand]: true;
}

/** Longest request target accepted (path + query); longer ones are rejected, not truncated. */
export const MAX_TARGET_LENGTH = 16 * 1024;

const decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
const encoder = new TextEncoder();

/** Code points some servers map onto `/`, `\` or `.` ("best fit" / NFKC) — never allowed in a path. */
const CONFUSABLE = /[\u2024\u2044\u2215\u2216\u29F5\u29F8\u29F9\uFE52\uFE68\uFF0E\uFF0F\uFF3C]/;
/** Controls (C0, DEL, C1) are never part of a name a person meant. */
const CONTROL = /[\u0000-\u001F\u007F-\u009F]/;
const DOUBLE_ENCODED = /%[0-9A-Fa-f]{2}/;

/** Characters kept raw in `forwardPath`: RFC 3986 pchar minus pct-encoded (unreserved, sub-delims, `:`, `@`). */
const KEEP = new Uint8Array(128);
for (const c of "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~!$&'()*+,;=:@") KEEP[c.charCodeAt(0)] = 1;

const HEX = '0123456789ABCDEF';

function fail(message: string): never {
  throw new PathAmbiguousError(message);
}

function hexVal(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x41 && c <= 0x46) return c - 0x37;
  if (c >= 0x61 && c <= 0x66) return c - 0x57;
  return -1;
}

/** Checks the raw characters of the path part; returns whether a `%` occurs. */
function scanRawPath(s: string): boolean {
  let pct = false;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c <= 0x20 || c === 0x7f) fail('the path contains a space or control character');
    if (c > 0x7e) fail('the path contains raw non-ASCII characters (they must be percent-encoded)');
    if (c === 0x5c) fail('the path contains "\\", which servers disagree on');
    if (c === 0x23) fail('the path contains "#" (a fragment is never part of a request)');
    if (c === 0x25) pct = true;
  }
  return pct;
}

function scanQuery(s: string): void {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c <= 0x20 || c === 0x7f) fail('the query contains a space or control character');
    if (c > 0x7e) fail('the query contains raw non-ASCII characters');
    if (c === 0x23) fail('the query contains "#" (a fragment is never part of a request)');
  }
}

/**
 * Percent-decodes one path segment strictly. Exported for the pattern parser, which applies
 * the same rules to ACL patterns.
 */
export function decodeSegment(raw: string): string {
  if (raw.indexOf('%') === -1) return raw;
  const bytes = new Uint8Array(raw.length);
  let n = 0;
  for (let i = 0; i < raw.length; i++) {
    const c = raw.charCodeAt(i);
    if (c !== 0x25) {
      bytes[n++] = c;
      continue;
    }
    const hi = i + 2 < raw.length ? hexVal(raw.charCodeAt(i + 1)) : -1;
    const lo = hi >= 0 ? hexVal(raw.charCodeAt(i + 2)) : -1;
    if (hi < 0 || lo < 0) fail('the path contains an invalid percent-escape ("%" must be followed by two hex digits)');
    const b = (hi << 4) | lo;
    if (b === 0x2f) fail('the path contains an encoded "/" (%2F), which servers disagree on');
    if (b === 0x5c) fail('the path contains an encoded "\\" (%5C), which servers disagree on');
    if (b < 0x20 || b === 0x7f) fail(b === 0 ? 'the path contains an encoded NUL (%00)' : 'the path contains an encoded control character');
    bytes[n++] = b;
    i += 2;
  }
  let s: string;
  try {
    s = decoder.decode(bytes.subarray(0, n));
  } catch {
    fail('the path is not valid UTF-8 after percent-decoding');
  }
  if (DOUBLE_ENCODED.test(s)) fail('the path is percent-encoded twice (e.g. %252e), which some servers decode again');
  if (CONTROL.test(s)) fail('the path contains a control character');
  if (CONFUSABLE.test(s)) fail('the path contains a character that some servers read as "/", "\\" or "."');
  return s;
}

/** Dot segments in disguise: `..;x`, `.;`, `...`, `.. ` — what remains after Tomcat's `;` or Windows' trimming. */
export function isDisguisedDotSegment(seg: string): boolean {
  const semi = seg.indexOf(';');
  const base = semi === -1 ? seg : seg.slice(0, semi);
  if (base.length === 0 || !/^[. ]+$/.test(base)) return false;
  return seg !== '.' && seg !== '..';
}

/** Re-encodes a decoded segment canonically (RFC 3986 pchar kept raw, everything else %XX, upper-case). */
export function encodeSegment(seg: string): string {
  let plain = true;
  for (let i = 0; i < seg.length; i++) {
    const c = seg.charCodeAt(i);
    if (c >= 128 || KEEP[c] === 0) {
      plain = false;
      break;
    }
  }
  if (plain) return seg;
  let out = '';
  for (const b of encoder.encode(seg)) {
    if (b < 128 && KEEP[b] === 1) out += String.fromCharCode(b);
    else out += '%' + HEX[b >> 4]! + HEX[b & 15]!;
  }
  return out;
}

/**
 * Normalizes an origin-form request target (`/path?query`). Throws PathAmbiguousError with a
 * message a person can act on; never returns a path that means two things.
 */
export function normalizeTarget(raw: string): NormalizedPath {
  if (typeof raw !== 'string' || raw.length === 0 || raw.charCodeAt(0) !== 0x2f) fail('the path must be absolute (start with "/")');
  if (raw.length > MAX_TARGET_LENGTH) fail(`the request target is longer than ${MAX_TARGET_LENGTH} characters`);
  const q = raw.indexOf('?');
  const rawPath = q === -1 ? raw : raw.slice(0, q);
  const query = q === -1 ? '' : raw.slice(q);
  if (query) scanQuery(query);
  const hasPct = scanRawPath(rawPath);

  const rawSegs = rawPath.slice(1).split('/');
  const out: string[] = [];
  let trailing = false;
  const last = rawSegs.length - 1;
  for (let i = 0; i <= last; i++) {
    const seg = hasPct ? decodeSegment(rawSegs[i]!) : rawSegs[i]!;
    const isLast = i === last;
    if (seg === '' || seg === '.') {
      if (isLast) trailing = true;
      continue;
    }
    if (seg === '..') {
      if (out.length === 0) fail('the path uses ".." to climb above the root');
      out.pop();
      if (isLast) trailing = true;
      continue;
    }
    if (isDisguisedDotSegment(seg)) fail('the path has a segment that some servers read as "." or ".." (e.g. "..;", "...")');
    out.push(seg);
  }
  const segments = out.length === 0 ? [''] : trailing ? [...out, ''] : out;
  const path = '/' + segments.join('/');
  let forwardPath = path;
  for (const s of segments) {
    if (encodeSegment(s) !== s) {
      forwardPath = '/' + segments.map(encodeSegment).join('/');
      break;
    }
  }
  return { path, forwardPath, query, segments } as unknown as NormalizedPath;
}

/** A request URL split for the ACL: the sidecar (absolute-form) and `sws acl check` use it. */
export interface ParsedRequestUrl {
  readonly scheme: 'http' | 'https';
  /** The raw authority (host[:port]); normalize it with `normalizeHost`. */
  readonly authority: string;
  readonly target: NormalizedPath;
}

/**
 * Splits `http(s)://authority/path?query#fragment` without the WHATWG URL parser (which
 * rewrites `\` and dot segments silently). A fragment is dropped, as a client would; userinfo
 * is rejected.
 */
export function parseRequestUrl(url: string): ParsedRequestUrl {
  const m = /^([A-Za-z][A-Za-z0-9+.-]*):\/\/([^/?#]*)([^#]*)(#.*)?$/.exec(url);
  if (!m) fail('the URL must look like http://HOST/PATH or https://HOST/PATH');
  const scheme = m[1]!.toLowerCase();
  if (scheme !== 'http' && scheme !== 'https') fail('the URL scheme must be http or https');
  const authority = m[2]!;
  if (authority.length === 0) fail('the URL has no host');
  if (authority.includes('@')) fail('the URL must not contain user information ("user@")');
  let rest = m[3]!;
  if (rest === '' || rest.charCodeAt(0) === 0x3f) rest = '/' + rest;
  return { scheme, authority, target: normalizeTarget(rest) };
}

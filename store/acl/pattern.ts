/**
 * ACL path patterns (contract `sws acl grant USER PATTERN`): an absolute path where `*`
 * matches within one segment (any characters, possibly none) and `**` as a whole segment
 * matches any number of whole segments, zero included (`/docs/**` matches `/docs`, `/docs/`
 * and everything beneath). Patterns go through the same strict decoding as request paths, so
 * `/caf%C3%A9/**` and `/café/**` are the same rule; they are stored in the canonical
 * re-encoded form the normalizer forwards (`/caf%C3%A9/**`), which parses back to itself.
 *
 * Pure: no Node imports.
 */
import { UsageError } from '../errors.ts';
import { decodeSegment, encodeSegment, isDisguisedDotSegment } from './normalize.ts';

export type PatternSegment =
  | { readonly kind: 'literal'; readonly value: string }
  | { readonly kind: 'star' }
  | { readonly kind: 'glob'; readonly source: string; readonly re: RegExp }
  | { readonly kind: 'globstar' };

export interface ParsedPattern {
  /** Canonical text, e.g. `/docs/**` (re-encoded like NormalizedPath.forwardPath). */
  readonly canonical: string;
  readonly segments: readonly PatternSegment[];
}

export const MAX_PATTERN_LENGTH = 4096;

function bad(message: string, field: string): never {
  throw new UsageError(message, field);
}

function globRegExp(seg: string): RegExp {
  const body = seg
    .split('*')
    .map((part) => part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'))
    .join('[^/]*');
  return new RegExp(`^${body}$`);
}

/** Parses and validates a pattern; `field` names the CLI argument in error messages. */
export function parsePattern(raw: string, field = 'PATTERN'): ParsedPattern {
  if (typeof raw !== 'string' || raw.length === 0) bad('the pattern is empty; write an absolute path such as /docs/**', field);
  if (raw.length > MAX_PATTERN_LENGTH) bad(`the pattern is longer than ${MAX_PATTERN_LENGTH} characters`, field);
  if (raw[0] !== '/') bad('the pattern must be an absolute path starting with "/" (e.g. /docs/**)', field);
  if (/[?#]/.test(raw)) bad('the pattern must not contain "?" or "#" (queries are not matched)', field);
  if (raw.includes('\\')) bad('the pattern must not contain "\\"', field);
  if (/[\u0000-\u0020\u007f]/.test(raw)) bad('the pattern must not contain spaces or control characters (percent-encode a space as %20)', field);

  const rawSegs = raw.slice(1).split('/');
  const segs: PatternSegment[] = [];
  const canon: string[] = [];
  for (let i = 0; i < rawSegs.length; i++) {
    let r = rawSegs[i]!;
    try {
      // Raw non-ASCII (e.g. /café/**) is accepted in patterns and means its UTF-8 encoding.
      r = r.replace(/[^\u0000-\u007f]+/g, (s) => encodeURIComponent(s));
    } catch {
      bad('the pattern is not valid Unicode', field);
    }
    const isLast = i === rawSegs.length - 1;
    if (r.includes('%') && /%2a/i.test(r)) bad('"*" is always a wildcard; an encoded "*" (%2A) is not supported', field);
    let seg: string;
    try {
      seg = decodeSegment(r);
    } catch (e) {
      bad(e instanceof Error ? e.message.replace(/^the path/, 'the pattern') : 'the pattern is not valid', field);
    }
    if (seg === '' && !isLast) bad('the pattern has an empty segment ("//")', field);
    if (seg === '.' || seg === '..' || isDisguisedDotSegment(seg)) bad('the pattern must not contain "." or ".." segments', field);
    if (seg === '**') {
      // `/**/**` means the same as `/**`.
      if (segs.length > 0 && segs[segs.length - 1]!.kind === 'globstar') continue;
      segs.push({ kind: 'globstar' });
      canon.push('**');
      continue;
    }
    if (seg.includes('**')) bad('"**" must be a whole segment (e.g. /docs/** or /a/**/b)', field);
    if (seg === '*') segs.push({ kind: 'star' });
    else if (seg.includes('*')) segs.push({ kind: 'glob', source: seg, re: globRegExp(seg) });
    else segs.push({ kind: 'literal', value: seg });
    canon.push(encodeSegment(seg));
  }
  return { canonical: '/' + canon.join('/'), segments: segs };
}

/**
 * Fast path for patterns read back from the database, which parsePattern wrote in canonical
 * form: split and classify without re-validating (the engine compiles 100k rules this way).
 * Anything that is not canonical falls back to the full parser.
 */
export function parseCanonicalPattern(canonical: string): ParsedPattern {
  if (canonical.length === 0 || canonical.charCodeAt(0) !== 0x2f) return parsePattern(canonical);
  const raw = canonical.slice(1).split('/');
  const segs: PatternSegment[] = new Array(raw.length);
  for (let i = 0; i < raw.length; i++) {
    let seg = raw[i]!;
    if (seg.indexOf('%') !== -1) {
      try {
        seg = decodeURIComponent(seg);
      } catch {
        return parsePattern(canonical);
      }
    }
    if (seg === '**') segs[i] = GLOBSTAR;
    else if (seg === '*') segs[i] = STAR;
    else if (seg.indexOf('*') !== -1) segs[i] = { kind: 'glob', source: seg, re: globRegExp(seg) };
    else segs[i] = { kind: 'literal', value: seg };
  }
  return { canonical, segments: segs };
}

const GLOBSTAR: PatternSegment = { kind: 'globstar' };
const STAR: PatternSegment = { kind: 'star' };

/** Does one pattern segment accept one path segment? */
export function segmentMatches(p: PatternSegment, s: string): boolean {
  switch (p.kind) {
    case 'literal':
      return p.value === s;
    case 'star':
      return true;
    case 'glob':
      return p.re.test(s);
    case 'globstar':
      return true;
  }
}

/**
 * Reference matcher for one pattern (used by `explain` and by tests as the oracle for the
 * trie). Returns -1 on a match, else the index of the deepest path segment reached.
 */
export function matchPattern(p: ParsedPattern, path: readonly string[]): number {
  let deepest = 0;
  const go = (pi: number, si: number): boolean => {
    if (si > deepest) deepest = si;
    if (pi === p.segments.length) return si === path.length;
    const seg = p.segments[pi]!;
    if (seg.kind === 'globstar') {
      for (let j = si; j <= path.length; j++) if (go(pi + 1, j)) return true;
      return false;
    }
    if (si === path.length) return false;
    return segmentMatches(seg, path[si]!) && go(pi + 1, si + 1);
  };
  return go(0, 0) ? -1 : deepest;
}

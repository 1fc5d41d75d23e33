/**
 * The normalizer accepts only targets with one meaning and returns the same path for matching
 * and forwarding. Table tests; each rejected row is a known bypass class (see normalize.ts).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { normalizeTarget, parseRequestUrl, MAX_TARGET_LENGTH } from './normalize.ts';

const ok: [raw: string, path: string, forwardPath: string, query: string][] = [
  ['/', '/', '/', ''],
  ['/docs', '/docs', '/docs', ''],
  ['/docs/', '/docs/', '/docs/', ''],
  ['/docs/a/b?x=1&y=%2F', '/docs/a/b', '/docs/a/b', '?x=1&y=%2F'],
  ['/docs//a///b', '/docs/a/b', '/docs/a/b', ''], // duplicate slashes merge
  ['//docs', '/docs', '/docs', ''], // never a network-path reference upstream
  ['/a/./b/.', '/a/b/', '/a/b/', ''],
  ['/a/b/../c', '/a/c', '/a/c', ''],
  ['/a/b/..', '/a/', '/a/', ''],
  ['/a/..', '/', '/', ''],
  ['/a/%2e%2E/b', '/b', '/b', ''], // encoded dot segments are dot segments
  ['/a/%2e/b', '/a/b', '/a/b', ''],
  ['/%64ocs/a', '/docs/a', '/docs/a', ''], // unreserved escapes decode
  ['/caf%c3%a9', '/café', '/caf%C3%A9', ''], // escape case is canonicalized
  ['/a%20b', '/a b', '/a%20b', ''],
  ['/a%3Bb', '/a;b', '/a;b', ''],
  ['/a;jsessionid=1/b', '/a;jsessionid=1/b', '/a;jsessionid=1/b', ''], // params are part of the segment
  ['/x%25y', '/x%y', '/x%25y', ''],
  ['/q?', '/q', '/q', '?'],
  ['/a%3Fb', '/a?b', '/a%3Fb', ''], // an encoded "?" stays in the path, encoded
  ['/a%23b', '/a#b', '/a%23b', ''],
  ['/%7Buser%7D', '/{user}', '/%7Buser%7D', ''],
  ['/{raw}|x', '/{raw}|x', '/%7Braw%7D%7Cx', ''],
  ['/%EF%BB%BFa', '/\uFEFFa', '/%EF%BB%BFa', ''], // a BOM is kept, not silently dropped
  ['/*', '/*', '/*', ''],
  ['/a.', '/a.', '/a.', ''],
  ['/.well-known/x', '/.well-known/x', '/.well-known/x', ''],
];

for (const [raw, path, forwardPath, query] of ok) {
  test(`normalizes ${JSON.stringify(raw)} to ${path}`, () => {
    const n = normalizeTarget(raw);
    assert.equal(n.path, path);
    assert.equal(n.forwardPath, forwardPath);
    assert.equal(n.query, query);
    assert.deepEqual(n.segments, path.slice(1).split('/'));
    // Forwarding the canonical form and normalizing it again changes nothing (idempotent).
    const again = normalizeTarget(n.forwardPath + n.query);
    assert.equal(again.path, n.path);
    assert.equal(again.forwardPath, n.forwardPath);
  });
}

const rejected: [raw: string, why: string][] = [
  ['', 'not absolute'],
  ['docs/a', 'not absolute'],
  ['*', 'asterisk-form'],
  ['http://x/a', 'absolute-form belongs to parseRequestUrl'],
  ['/a%2Fb', 'encoded slash (Envoy CVE-2021-29492)'],
  ['/a%2fb', 'encoded slash, lower case'],
  ['/a%5Cb', 'encoded backslash'],
  ['/a\\b', 'raw backslash (IIS)'],
  ['/a\\..\\b', 'backslash traversal'],
  ['/a%00b', 'encoded NUL'],
  ['/a\u0000b', 'raw NUL'],
  ['/a%0Ab', 'encoded LF'],
  ['/a%0d%0aSet-Cookie:x', 'CRLF injection'],
  ['/a%7Fb', 'encoded DEL'],
  ['/a%C2%85b', 'C1 control NEL'],
  ['/a b', 'raw space'],
  ['/a\tb', 'raw tab'],
  ['/café', 'raw non-ASCII'],
  ['/a#frag', 'fragment'],
  ['/a?b#frag', 'fragment in query'],
  ['/a%', 'truncated escape'],
  ['/a%2', 'truncated escape'],
  ['/a%zz', 'invalid escape'],
  ['/a%%32%65', 'escape of escape'],
  ['/a%252e%252e/b', 'double encoding (%252e)'],
  ['/a%252Fb', 'double-encoded slash (Spring CVE-2020-5410)'],
  ['/a/%25%32%65%25%32%65/b', 'double encoding spelled out'],
  ['/..', 'climbs above root'],
  ['/a/../..', 'climbs above root'],
  ['/%2e%2e/etc/passwd', 'encoded climb above root'],
  ['/a/..;/admin', 'Tomcat ..; (Orange Tsai)'],
  ['/a/..;x=1/admin', 'Tomcat ..;params'],
  ['/a/.;/admin', 'Tomcat .;'],
  ['/a/%2e%2e;/admin', 'encoded ..;'],
  ['/a/%2e%2e%3b/admin', 'fully encoded ..;'],
  ['/a/.../b', 'three dots (Windows trims to ..)'],
  ['/a/..%20/b', 'dot-dot-space (Windows trims)'],
  ['/a/%C0%AE%C0%AE/b', 'overlong UTF-8 dots'],
  ['/a/%C0%AFb', 'overlong UTF-8 slash'],
  ['/a%ED%A0%80', 'UTF-16 surrogate in UTF-8'],
  ['/a%FF', 'invalid UTF-8'],
  ['/a%EF%BC%8F..', 'fullwidth solidus (best-fit mapping)'],
  ['/a%EF%BC%BCb', 'fullwidth reverse solidus'],
  ['/a%E2%88%95b', 'division slash'],
  ['/a%EF%BC%8E%EF%BC%8E/b', 'fullwidth full stops'],
  ['/a?b c', 'space in query'],
  ['/a?b\u0000', 'NUL in query'],
  ['/' + 'a'.repeat(MAX_TARGET_LENGTH), 'too long'],
];

for (const [raw, why] of rejected) {
  test(`rejects ${JSON.stringify(raw.length > 40 ? raw.slice(0, 40) + '…' : raw)} (${why})`, () => {
    assert.throws(() => normalizeTarget(raw), { code: 'SWS_ERR_PATH_AMBIGUOUS' });
  });
}

test('parseRequestUrl splits absolute URLs without WHATWG rewriting', () => {
  const u = parseRequestUrl('HTTP://Intranet.Example:80/docs/%2e%2e/x?q=1#frag');
  assert.equal(u.scheme, 'http');
  assert.equal(u.authority, 'Intranet.Example:80');
  assert.equal(u.target.path, '/x');
  assert.equal(u.target.query, '?q=1');
  assert.equal(parseRequestUrl('https://h').target.path, '/');
  assert.equal(parseRequestUrl('https://h?x').target.query, '?x');
  // WHATWG would turn "\" into "/" and accept it; the normalizer refuses.
  assert.throws(() => parseRequestUrl('http://h/a\\..\\b'), { code: 'SWS_ERR_PATH_AMBIGUOUS' });
  assert.throws(() => parseRequestUrl('http://user@h/'), { code: 'SWS_ERR_PATH_AMBIGUOUS' });
  assert.throws(() => parseRequestUrl('ftp://h/'), { code: 'SWS_ERR_PATH_AMBIGUOUS' });
  assert.throws(() => parseRequestUrl('/just/a/path'), { code: 'SWS_ERR_PATH_AMBIGUOUS' });
});

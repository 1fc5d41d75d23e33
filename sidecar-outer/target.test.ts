/**
 * The forward-proxy request target (RFC 9112 §3.2.2 absolute-form): parsed strictly, and
 * remembered by TargetCache only as the parser would have returned it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BadTargetError, parseProxyTarget, TargetCache } from './target.ts';

test('absolute-form http URLs: host, port, origin, path (no query) and the URL a cache keys on', () => {
  assert.deepEqual(parseProxyTarget('http://Intranet.Example:8080/a/b?x=1&y'), {
    scheme: 'http',
    hostname: 'intranet.example',
    port: 8080,
    host: 'intranet.example:8080',
    origin: 'http://intranet.example:8080',
    pathAndQuery: '/a/b?x=1&y',
    path: '/a/b',
    url: 'http://intranet.example:8080/a/b?x=1&y',
  });
  const bare = parseProxyTarget('http://intranet.example');
  assert.equal(bare.pathAndQuery, '/');
  assert.equal(bare.url, 'http://intranet.example/');
  assert.equal(parseProxyTarget('http://intranet.example:80?q').pathAndQuery, '/?q');
  assert.equal(parseProxyTarget('http://intranet.example:80?q').path, '/');
});

test('anything but a plain http URL is refused with SWS_ERR_BAD_TARGET', () => {
  for (const bad of ['/relative', 'https://a.example/', 'http://user@a.example/', 'http://a.example:0/', 'http://a.example:99999/', 'http://a b/', 'http://a.example/\x01']) {
    assert.throws(() => parseProxyTarget(bad), (e: unknown) => e instanceof BadTargetError && e.code === 'SWS_ERR_BAD_TARGET', bad);
  }
});

test('TargetCache: the same target as the parser, the same object when asked again; bad targets are refused every time', () => {
  const targets = new TargetCache();
  const raw = 'http://intranet.example/page?x=1';
  const first = targets.parse(raw);
  assert.deepEqual(first, parseProxyTarget(raw));
  assert.equal(targets.parse(raw), first, 'remembered');
  for (let i = 0; i < 2; i++) assert.throws(() => targets.parse('http://user@a.example/'), BadTargetError);
  const long = `http://intranet.example/${'a'.repeat(3000)}`;
  assert.deepEqual(targets.parse(long), parseProxyTarget(long));
  assert.notEqual(targets.parse(long), targets.parse(long), 'a very long URL is parsed each time, not kept');
  for (let i = 0; i < 2000; i++) targets.parse(`http://intranet.example/p${i}`);
  assert.deepEqual(targets.parse(raw), first, 'still right after starting over');
});

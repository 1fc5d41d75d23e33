/**
 * Patterns, hosts and the compiled matcher: `*` within one segment, `**` any whole segments,
 * method lists, host scoping, default deny; and the trie agrees with the reference matcher.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compileRules, explainRule, type AclRule } from './trie.ts';
import { matchPattern, parseCanonicalPattern, parsePattern } from './pattern.ts';
import { normalizeHost } from './host.ts';
import { normalizeTarget } from './normalize.ts';

let nextId = 1;
const rule = (pattern: string, opts: { host?: string; methods?: string[] } = {}): AclRule => ({
  id: nextId++,
  user: 'alice',
  host: opts.host ?? null,
  pattern: parsePattern(pattern).canonical,
  methods: opts.methods ?? null,
  createdAt: '2026-01-01T00:00:00Z',
});
const segs = (p: string) => normalizeTarget(p).segments;
const allows = (rules: AclRule[], path: string, method = 'GET', host = 'intranet.example') => compileRules(rules).match(method, host, segs(path)) !== undefined;

const table: [pattern: string, yes: string[], no: string[]][] = [
  ['/docs/**', ['/docs', '/docs/', '/docs/a', '/docs/a/b/c', '/docs/a/'], ['/', '/doc', '/docsx', '/docs-old/a', '/x/docs']],
  ['/docs/*', ['/docs/a', '/docs/', '/docs/a.txt'], ['/docs', '/docs/a/b', '/docs/a/']],
  ['/docs/*.pdf', ['/docs/x.pdf', '/docs/.pdf'], ['/docs/x.pdf/y', '/docs/x.PDF', '/docs/xpdf']],
  ['/a/**/b', ['/a/b', '/a/x/b', '/a/x/y/b'], ['/a', '/a/b/c', '/a/x/bb']],
  ['/**', ['/', '/a', '/a/b/'], []],
  ['/*', ['/', '/a'], ['/a/b', '/a/']],
  ['/', ['/'], ['/a']],
  ['/docs', ['/docs'], ['/docs/', '/docs/a']],
  ['/docs/', ['/docs/'], ['/docs', '/docs/a']],
  ['/u/*/inbox/**', ['/u/alice/inbox', '/u/bob/inbox/1'], ['/u/inbox', '/u/a/b/inbox']],
  ['/caf%C3%A9/**', ['/caf%C3%A9/x', '/caf%c3%a9'], ['/cafe']],
  ['/café/*', ['/caf%C3%A9/x'], ['/cafe/x']], // raw non-ASCII in a pattern is accepted and encoded
  ['/a b/*', ['/a%20b/c'], ['/a+b/c']],
  ['/Docs/**', ['/Docs/x'], ['/docs/x']], // paths are case-sensitive
];

for (const [pattern, yes, no] of table) {
  test(`pattern ${pattern} matches ${yes.join(' ')} and not ${no.join(' ') || '(nothing)'}`, () => {
    const p = parsePattern(pattern.replace(' ', '%20'));
    for (const path of yes) {
      assert.equal(allows([rule(pattern.replace(' ', '%20'))], path), true, `${pattern} should match ${path}`);
      assert.equal(matchPattern(p, segs(path)), -1, `reference matcher: ${pattern} ~ ${path}`);
    }
    for (const path of no) {
      assert.equal(allows([rule(pattern.replace(' ', '%20'))], path), false, `${pattern} must not match ${path}`);
      assert.notEqual(matchPattern(p, segs(path)), -1);
    }
  });
}

test('default deny: no rules, or rules of other shapes, allow nothing', () => {
  assert.equal(allows([], '/'), false);
  assert.equal(allows([rule('/a/**')], '/b'), false);
});

test('methods: a list restricts; no list allows all; HEAD is not implied by GET', () => {
  const r = [rule('/docs/**', { methods: ['GET'] })];
  assert.equal(allows(r, '/docs/a', 'GET'), true);
  assert.equal(allows(r, '/docs/a', 'HEAD'), false);
  assert.equal(allows(r, '/docs/a', 'get'), false); // methods are case-sensitive on the wire
  assert.equal(allows([rule('/docs/**')], '/docs/a', 'PROPFIND'), true);
  // a narrower rule that fails on method does not hide a wider one that allows
  assert.equal(allows([rule('/docs/a', { methods: ['POST'] }), rule('/docs/**', { methods: ['GET'] })], '/docs/a', 'GET'), true);
});

test('hosts: a host rule applies only to that host; an any-host rule to all', () => {
  const r = [rule('/wiki/**', { host: 'wiki.example' }), rule('/pub/**')];
  assert.equal(allows(r, '/wiki/a', 'GET', 'wiki.example'), true);
  assert.equal(allows(r, '/wiki/a', 'GET', 'intranet.example'), false);
  assert.equal(allows(r, '/pub/a', 'GET', 'wiki.example'), true);
  assert.equal(allows(r, '/pub/a', 'GET', 'anything.example'), true);
});

test('the most specific rule decides: literal before glob before * before **', () => {
  const wide = rule('/**');
  const glob = rule('/docs/*.txt');
  const lit = rule('/docs/a.txt');
  const c = compileRules([wide, glob, lit]);
  assert.equal(c.match('GET', 'h', segs('/docs/a.txt'))?.id, lit.id);
  assert.equal(c.match('GET', 'h', segs('/docs/b.txt'))?.id, glob.id);
  assert.equal(c.match('GET', 'h', segs('/other'))?.id, wide.id);
});

test('the trie agrees with the reference matcher on random patterns and paths', () => {
  let seed = 7;
  const rnd = (n: number) => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) % n);
  const parts = ['a', 'b', 'c', '*', '**', 'a*', '*b'];
  const words = ['a', 'b', 'c', 'ab', 'cb', ''];
  for (let round = 0; round < 300; round++) {
    const pattern = '/' + Array.from({ length: 1 + rnd(4) }, () => parts[rnd(parts.length)]!).join('/');
    let p;
    try {
      p = parsePattern(pattern);
    } catch {
      continue;
    }
    const r = rule(pattern);
    for (let k = 0; k < 10; k++) {
      const n = 1 + rnd(4);
      // empty segments only last (a trailing slash); the normalizer merges the others
      const path = '/' + Array.from({ length: n }, (_, i) => (i === n - 1 ? words[rnd(words.length)]! : words[rnd(words.length - 1)]!)).join('/');
      const s = segs(path);
      assert.equal(compileRules([r]).match('GET', 'h', s) !== undefined, matchPattern(p, s) === -1, `${pattern} vs ${path}`);
    }
  }
});

test('invalid patterns are refused with a message naming the field', () => {
  for (const bad of ['', 'docs/**', '/docs/**?x', '/a#b', '/a\\b', '/a//b', '/a/../b', '/a/./b', '/a/**b', '/a/***', '/a%2Fb', '/a%2A', '/a b', '/a/..;/b', '/a%00']) {
    assert.throws(() => parsePattern(bad, 'PATTERN'), (e: Error & { code?: string }) => e.code === 'SWS_ERR_USAGE' && e.message.startsWith('PATTERN:'), bad);
  }
  assert.equal(parsePattern('/a/**/**/b').canonical, '/a/**/b');
  assert.equal(parsePattern('/caf%c3%a9/').canonical, '/caf%C3%A9/');
});

test('explainRule says why a rule did not match', () => {
  const s = segs('/docs/a');
  assert.match(explainRule(rule('/docs/**', { host: 'w.example' }), 'GET', 'x.example', s).reason ?? '', /host w\.example/);
  assert.match(explainRule(rule('/docs/**', { methods: ['POST'] }), 'GET', 'x', s).reason ?? '', /only POST/);
  assert.match(explainRule(rule('/docs/b'), 'GET', 'x', s).reason ?? '', /segment 2 \("a"\)/);
  assert.equal(explainRule(rule('/docs/*'), 'GET', 'x', s).matched, true);
});

test('host keys: case-insensitive, default ports dropped, other ports kept', () => {
  assert.equal(normalizeHost('Intranet.Example'), 'intranet.example');
  assert.equal(normalizeHost('intranet.example:80'), 'intranet.example');
  assert.equal(normalizeHost('intranet.example:443'), 'intranet.example');
  assert.equal(normalizeHost('intranet.example.'), 'intranet.example');
  assert.equal(normalizeHost('intranet.example:8080'), 'intranet.example:8080');
  assert.equal(normalizeHost('[2001:DB8::1]:443'), '[2001:db8::1]');
  assert.equal(normalizeHost('127.0.0.1:8443'), '127.0.0.1:8443');
  for (const bad of ['', 'a b', 'a/b', 'a:0', 'a:65536', 'a:x', 'café.example', '[::1', '-a.example', 'a..b', 'user@h', '2001:db8::1']) {
    assert.throws(() => normalizeHost(bad), { code: 'SWS_ERR_HOST' }, bad);
  }
});

test('the fast canonical parser (used to compile stored rules) agrees with the full parser', () => {
  const shape = (p: ReturnType<typeof parsePattern>) => p.segments.map((s) => (s.kind === 'literal' ? `L:${s.value}` : s.kind === 'glob' ? `G:${s.source}` : s.kind));
  for (const raw of ['/', '/docs/**', '/a/*/b*c/**/d', '/caf%C3%A9/*.pdf', '/a%20b/', '/x%25y/*', '/semi;colon/**', '/**']) {
    const full = parsePattern(raw);
    assert.deepEqual(shape(parseCanonicalPattern(full.canonical)), shape(full), raw);
  }
});

/** The design card: core/ is pure WebCrypto and runs unchanged in a browser, Deno or a Worker. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';

const dir = new URL('./', import.meta.url);
const sources = readdirSync(dir).filter((f) => f.endsWith('.ts') && !f.endsWith('.test.ts'));

test('no core module imports node: builtins, npm packages or project code outside core/', () => {
  assert.ok(sources.length > 10);
  for (const f of sources) {
    const text = readFileSync(new URL(f, dir), 'utf8');
    for (const m of text.matchAll(/\bfrom\s+['"]([^'"]+)['"]|\bimport\s*\(\s*['"]([^'"]+)['"]|\brequire\s*\(/g)) {
      const spec = m[1] ?? m[2] ?? 'require(';
      assert.ok(spec.startsWith('./') && !spec.includes('..'), `${f} imports ${spec}`);
    }
  }
});

test('no core module touches Node globals', () => {
  for (const f of sources) {
    const code = readFileSync(new URL(f, dir), 'utf8').replace(/\/\*[\s\S]*?\*\/|\/\/.*$/gm, '').replace(/'(?:[^'\\\n]|\\.)*'|`(?:[^`\\]|\\.)*`/g, "''");
    for (const g of ['Buffer', 'process', '__dirname', 'setImmediate', 'global.']) {
      assert.ok(!new RegExp(`\\b${g.replace('.', '\\.')}`).test(code), `${f} uses ${g}`);
    }
  }
});

test('core/tsconfig.json compiles with no Node types', () => {
  const cfg = JSON.parse(readFileSync(new URL('tsconfig.json', dir), 'utf8'));
  assert.deepEqual(cfg.compilerOptions.types, []);
  assert.ok(!cfg.compilerOptions.lib.some((l: string) => /node/i.test(l)));
});

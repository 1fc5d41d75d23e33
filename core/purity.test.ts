/** The design card: core/ is pure WebCrypto and runs unchanged in a browser, Deno or a Worker. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';

const dir = new URL('./', import.meta.url);
const sources = readdirSync(dir).filter((f) => f.endsWith('.ts') && !f.endsWith('.test.ts'));

/** Source text with comments removed (string contents kept: module specifiers live in strings). */
function stripComments(text: string): string {
  return text.replace(/\/\*[\s\S]*?\*\/|(^|[^:'"`\\])\/\/.*$/gm, '$1');
}

/**
 * Every module reference in `text`, as written: static `import … from`, `export … from`,
 * side-effect `import 'x'`, dynamic `import(…)` (a non-literal argument is reported as
 * written, so it can never pass), `require(…)` and `import x = require(…)`.
 */
function moduleReferences(text: string): string[] {
  const code = stripComments(text);
  const found: string[] = [];
  const patterns = [
    /\b(?:import|export)\b[^'"`;]*?\bfrom\s*(['"`])([^'"`]*)\1/g, // import x from 'm'; export * from 'm'
    /\bimport\s*(['"`])([^'"`]*)\1/g, // import 'm';
    /\bimport\s*\(\s*(?:(['"`])([^'"`]*)\1\s*\)|([^)]*)\))/g, // import('m') or import(expr)
    /\brequire\s*\(\s*(?:(['"`])([^'"`]*)\1\s*\)|([^)]*)\))/g, // require('m') or require(expr)
  ];
  for (const re of patterns) {
    for (const m of code.matchAll(re)) found.push(m[2] ?? `<expression: ${(m[3] ?? '').trim()}>`);
  }
  // Anything named require at all is a CommonJS escape hatch.
  if (/\brequire\b/.test(code)) found.push('<require>');
  return found;
}

function isAllowed(spec: string): boolean {
  return spec.startsWith('./') && !spec.includes('..');
}

test('the import scanner catches every way of loading a module', () => {
  const bad: [string, string][] = [
    ["import 'node:fs';", 'node:fs'],
    ['import "node:fs"', 'node:fs'],
    ["import fs from 'node:fs';", 'node:fs'],
    ["import * as fs from 'fs';", 'fs'],
    ["import {\n  readFileSync,\n  writeFileSync,\n} from 'node:fs';", 'node:fs'],
    ["import type { Stats } from 'node:fs';", 'node:fs'],
    ["export * from 'node:fs';", 'node:fs'],
    ["export { readFileSync } from 'node:fs';", 'node:fs'],
    ["const fs = await import('node:fs');", 'node:fs'],
    ['const fs = await import(`node:fs`);', 'node:fs'],
    ["const m = 'node:fs'; await import(m);", '<expression: m>'],
    ["const fs = require('node:fs');", 'node:fs'],
    ["import fs = require('fs');", 'fs'],
    ['const r = require; r("fs");', '<require>'],
    ["import x from '../store/db.ts';", '../store/db.ts'],
    ["import { a } from './../bin/x.ts';", './../bin/x.ts'],
  ];
  for (const [src, spec] of bad) {
    const refs = moduleReferences(src);
    assert.ok(refs.includes(spec), `${JSON.stringify(src)} gave ${JSON.stringify(refs)}`);
    assert.ok(refs.some((r) => !isAllowed(r)), `${JSON.stringify(src)} would pass`);
  }
  const good = ["import { a } from './a.ts';", "export * from './b.ts';", "// import 'node:fs' in a comment\nimport './c.ts';", "/* require('fs') */ const x = 1;", 'const u = new URL("x", import.meta.url);'];
  for (const src of good) assert.ok(moduleReferences(src).every(isAllowed), `${JSON.stringify(src)} gave ${JSON.stringify(moduleReferences(src))}`);
});

test('no core module imports node: builtins, npm packages or project code outside core/', () => {
  assert.ok(sources.length > 10);
  for (const f of sources) {
    const refs = moduleReferences(readFileSync(new URL(f, dir), 'utf8'));
    for (const spec of refs) assert.ok(isAllowed(spec), `${f} imports ${spec}`);
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

#!/usr/bin/env node
// Runs every *.test.ts under the project through node:test with tsx.
// Node 20's `node --test` takes no glob patterns, so the files are listed here.
// Usage: node test/run.mjs [substring-filter ...]
import { readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
// Dot directories are never the project's tests (.git, .sws data dirs, a scratch checkout of another commit).
const skipDirs = new Set(['node_modules', 'bench']);
function walk(dir, out) {
  for (const name of readdirSync(dir)) {
    if (skipDirs.has(name) || name.startsWith('.')) continue;
    const path = join(dir, name);
    if (statSync(path).isDirectory()) walk(path, out);
    else if (name.endsWith('.test.ts')) out.push(relative(root, path));
  }
  return out;
}
const filters = process.argv.slice(2);
const files = walk(root, []).sort().filter((f) => filters.length === 0 || filters.some((s) => f.includes(s)));
if (files.length === 0) {
  console.error('no test files matched');
  process.exit(1);
}
const concurrency = process.env.SWS_TEST_CONCURRENCY ?? '2';
// A test that waits forever (a stream that never ends, a gate never opened) fails after this
// instead of stalling the run; the slowest test takes ~20 s here.
const timeoutMs = process.env.SWS_TEST_TIMEOUT_MS ?? '300000';
const child = spawn(process.execPath, ['--import', 'tsx', '--test', `--test-concurrency=${concurrency}`, `--test-timeout=${timeoutMs}`, ...files], {
  cwd: root,
  stdio: 'inherit',
});
child.on('exit', (code, signal) => process.exit(signal ? 1 : (code ?? 1)));

/**
 * The precompiled build runs only while it matches the sources (bin/built.js): any edit,
 * removal or missing manifest sends bin/sws.js back to the TypeScript sources through tsx, and
 * `SWS_BUILD=require` (the container image) refuses to start instead.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { builtEntry, fileHash, MANIFEST_FORMAT } from './built.js';

function fixture(): { dir: string; root: URL; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'sws-built-'));
  mkdirSync(join(dir, 'dist', 'b1'), { recursive: true });
  mkdirSync(join(dir, 'src'));
  writeFileSync(join(dir, 'src', 'a.ts'), 'export const a = 1;\n');
  writeFileSync(join(dir, 'src', 'b.ts'), 'export const b = 2;\n');
  writeFileSync(join(dir, 'dist', 'b1', 'cli.mjs'), 'export const main = () => 0;\n');
  const inputs = { 'src/a.ts': fileHash(join(dir, 'src', 'a.ts')), 'src/b.ts': fileHash(join(dir, 'src', 'b.ts')) };
  writeFileSync(join(dir, 'dist', 'manifest.json'), JSON.stringify({ format: MANIFEST_FORMAT, id: 'b1', entries: { sws: { output: 'dist/b1/cli.mjs', inputs } } }));
  return { dir, root: pathToFileURL(`${dir}/`), cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

test('a build made from the sources present runs; touching a file without changing it keeps it', () => {
  const f = fixture();
  try {
    assert.equal(builtEntry(f.root, 'sws').url, new URL('dist/b1/cli.mjs', f.root).href);
    utimesSync(join(f.dir, 'src', 'a.ts'), new Date(), new Date(Date.now() + 60_000));
    assert.equal(builtEntry(f.root, 'sws').why, 'fresh build');
  } finally {
    f.cleanup();
  }
});

test('an edited source file, even of the same size and time, makes the build stale', () => {
  const f = fixture();
  try {
    const file = join(f.dir, 'src', 'b.ts');
    writeFileSync(file, 'export const b = 3;\n');
    utimesSync(file, new Date(0), new Date(0));
    const r = builtEntry(f.root, 'sws');
    assert.equal(r.url, undefined);
    assert.match(r.why, /older than src\/b\.ts/);
  } finally {
    f.cleanup();
  }
});

test('a removed source file, a missing manifest, another format or another entry: no build', () => {
  const f = fixture();
  try {
    assert.equal(builtEntry(f.root, 'forwarder').url, undefined);
    rmSync(join(f.dir, 'src', 'a.ts'));
    assert.equal(builtEntry(f.root, 'sws').url, undefined);
    writeFileSync(join(f.dir, 'dist', 'manifest.json'), JSON.stringify({ format: MANIFEST_FORMAT + 1, entries: {} }));
    assert.equal(builtEntry(f.root, 'sws').url, undefined);
    rmSync(join(f.dir, 'dist', 'manifest.json'));
    assert.match(builtEntry(f.root, 'sws').why, /no build/);
  } finally {
    f.cleanup();
  }
});

test('bin/sws.js runs the fresh build, else the sources; SWS_BUILD=never and =require; a bad value is exit 2', () => {
  // A copy of bin/sws.js whose "program" says which one ran: the build or the source.
  const f = fixture();
  try {
    mkdirSync(join(f.dir, 'bin'));
    for (const name of ['sws.js', 'built.js']) copyFileSync(new URL(`./${name}`, import.meta.url), join(f.dir, 'bin', name));
    symlinkSync(fileURLToPath(new URL('../node_modules', import.meta.url)), join(f.dir, 'node_modules'));
    writeFileSync(join(f.dir, 'package.json'), '{"type":"module"}\n');
    writeFileSync(join(f.dir, 'tsconfig.json'), '{}\n');
    writeFileSync(join(f.dir, 'bin', 'cli.ts'), "export async function main(argv: string[]): Promise<number> { console.log('source', argv.join(' ')); return 0; }\n");
    writeFileSync(join(f.dir, 'dist', 'b1', 'cli.mjs'), "export async function main(argv) { console.log('build', argv.join(' ')); return 0; }\n");
    const run = (mode?: string) =>
      spawnSync(process.execPath, [join(f.dir, 'bin', 'sws.js'), 'x'], { env: { ...process.env, SWS_BUILD: mode ?? '' }, encoding: 'utf8' });
    assert.equal(run().stdout, 'build x\n');
    assert.equal(run('require').stdout, 'build x\n');
    assert.equal(run('never').stdout, 'source x\n');
    writeFileSync(join(f.dir, 'src', 'a.ts'), 'export const a = 10;\n');
    assert.equal(run().stdout, 'source x\n');
    const req = run('require');
    assert.equal(req.status, 1);
    assert.match(req.stderr, /SWS_BUILD=require but the build is older than src\/a\.ts: run `npm run build`/);
    const bad = run('sometimes');
    assert.equal(bad.status, 2);
    assert.match(bad.stderr, /SWS_BUILD must be auto, never or require/);
  } finally {
    f.cleanup();
  }
});

#!/usr/bin/env node
// `npm run build` (also run by `npm ci` / `npm install` through "prepare"): compiles the `sws`
// program to plain JavaScript with esbuild, so the sidecars run without tsx, whose loader
// costs each process ~35 MiB of RSS and a compile on every first import. Also compiles the
// benchmark's Node forwarder the same way, so the two are compared on equal terms.
//
// Output: dist/ID/cli.mjs (+ lazily imported chunks, one per command module), forwarder.mjs,
// and dist/manifest.json with the SHA-256 of every source file each entry was built from;
// bin/sws.js runs the build only while those hashes match (bin/built.js). ID is a hash of the
// output, so a rebuild never rewrites files a running sidecar may still import lazily; build
// dirs other than the current one are removed after a day.
//
//   node scripts/build.mjs [--quiet] [--if-possible]
//
// --if-possible ("prepare"): a failure is a warning, not an error, so an install never fails
// for it; `sws` then runs the sources.
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { fileHash, MANIFEST, MANIFEST_FORMAT } from '../bin/built.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const DIST = join(ROOT, 'dist');
const KEEP_OLD_MS = 24 * 3600 * 1000;
const quiet = process.argv.includes('--quiet');
const ifPossible = process.argv.includes('--if-possible');

/** Entries: the program, and (in a checkout with bench/) the forwarder. */
const ENTRIES = [
  { name: 'sws', source: 'bin/cli.ts', splitting: true },
  { name: 'forwarder', source: 'bench/forwarder.ts', splitting: false },
].filter((e) => existsSync(join(ROOT, e.source)));

/** Files that change the output without being bundled. */
const ALSO_HASHED = ['scripts/build.mjs', 'tsconfig.json'];

const posix = (p) => p.split(sep).join('/');

// A bundled module's import.meta.url is its output file's: give each source its own URL back
// (bin/cli.ts reads ../package.json relative to it). Outputs sit two levels below the root.
const sourceUrls = {
  name: 'source-import-meta-url',
  setup(build) {
    build.onLoad({ filter: /\.ts$/ }, (args) => {
      const text = readFileSync(args.path, 'utf8');
      if (!text.includes('import.meta.url')) return undefined;
      const rel = posix(relative(ROOT, args.path));
      return { contents: text.replaceAll('import.meta.url', `new URL(${JSON.stringify(rel)}, new URL('../../', import.meta.url)).href`), loader: 'ts' };
    });
  },
};

/**
 * Fails the build if esbuild renamed a class of ours (`Foo` → `Foo2`, to avoid a clash in a
 * chunk): its `name`, and so an error's name and stack, would change.
 */
function assertNoRenamedClass(inputs, outputFiles) {
  const names = new Set();
  for (const file of inputs) {
    if (!file.endsWith('.ts')) continue;
    for (const m of readFileSync(join(ROOT, file), 'utf8').matchAll(/\bclass\s+([A-Za-z_$][\w$]*)/g)) names.add(m[1]);
  }
  for (const out of outputFiles) {
    if (!out.path.endsWith('.mjs')) continue;
    // esbuild writes a class as `var Foo = class …` (or keeps `class Foo`); a renamed one gets a numeric suffix.
    for (const m of out.text.matchAll(/(?:\b(?:var|let|const)\s+([A-Za-z_$][\w$]*?)(\d+)\s*=\s*class\b|\bclass\s+([A-Za-z_$][\w$]*?)(\d+)\b)/g)) {
      const [base, suffix] = m[1] !== undefined ? [m[1], m[2]] : [m[3], m[4]];
      if (names.has(base)) throw new Error(`esbuild renamed class ${base} to ${base}${suffix} in ${relative(ROOT, out.path)} (two bundled classes share the name): rename one of them`);
    }
  }
}

async function main() {
  const esbuild = await import('esbuild');
  const outputs = [];
  const entries = {};
  for (const e of ENTRIES) {
    const r = await esbuild.build({
      absWorkingDir: ROOT,
      entryPoints: { [e.name === 'sws' ? 'cli' : e.name]: e.source },
      bundle: true,
      splitting: e.splitting,
      format: 'esm',
      platform: 'node',
      target: 'node20',
      packages: 'external',
      // No keepNames: it wraps every named closure in a runtime __name() call, per request on
      // the hot paths (docs/PERFORMANCE.md "Build without keepNames"). Without minifying, names
      // only change where esbuild renames a binding to avoid a clash, which assertNoRenamedClass
      // refuses for classes (Error subclasses take their name from the class, core/errors.ts).
      keepNames: false,
      sourcemap: 'linked',
      sourcesContent: false,
      outdir: 'dist/_',
      outExtension: { '.js': '.mjs' },
      entryNames: '[name]',
      chunkNames: 'chunk-[hash]',
      tsconfig: 'tsconfig.json',
      legalComments: 'none',
      logLevel: 'warning',
      metafile: true,
      write: false,
      plugins: [sourceUrls],
    });
    assertNoRenamedClass(Object.keys(r.metafile.inputs), r.outputFiles);
    const inputs = {};
    for (const file of [...Object.keys(r.metafile.inputs), ...ALSO_HASHED].sort()) inputs[posix(file)] = fileHash(join(ROOT, file));
    const output = Object.entries(r.metafile.outputs).find(([, o]) => o.entryPoint === e.source)[0];
    entries[e.name] = { output: posix(relative('dist/_', output)), inputs };
    outputs.push(...r.outputFiles);
  }
  const id = createHash('sha256');
  for (const f of [...outputs].sort((a, b) => a.path.localeCompare(b.path))) id.update(f.path).update(f.contents);
  const buildId = id.digest('hex').slice(0, 12);
  const dir = join(DIST, buildId);
  for (const f of outputs) {
    const to = join(dir, relative(join(DIST, '_'), f.path));
    mkdirSync(dirname(to), { recursive: true });
    writeFileSync(to, f.contents);
  }
  for (const e of Object.values(entries)) e.output = `dist/${buildId}/${e.output}`;
  // The manifest last, atomically: until it names the new dir, the old build (or tsx) runs.
  const tmp = join(ROOT, `${MANIFEST}.${process.pid}.tmp`);
  writeFileSync(tmp, `${JSON.stringify({ format: MANIFEST_FORMAT, id: buildId, entries }, null, 1)}\n`);
  renameSync(tmp, join(ROOT, MANIFEST));
  for (const name of readdirSync(DIST)) {
    const p = join(DIST, name);
    if (name === buildId || name === 'manifest.json' || !statSync(p).isDirectory()) continue;
    if (name === '_' || Date.now() - statSync(p).mtimeMs > KEEP_OLD_MS) rmSync(p, { recursive: true, force: true });
  }
  if (!quiet) console.log(`sws build: dist/${buildId} (${Object.keys(entries).join(', ')}; ${outputs.filter((f) => f.path.endsWith('.mjs')).length} files)`);
}

try {
  await main();
} catch (e) {
  console.error(`sws build: ${ifPossible ? 'warning: ' : ''}${e instanceof Error ? e.message : e}`);
  if (ifPossible) console.error('sws build: `sws` will run the TypeScript sources through tsx; `npm run build` to retry');
  else process.exitCode = 1;
}

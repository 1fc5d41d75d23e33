#!/usr/bin/env node
// The `sws` executable. Runs the precompiled build (`npm run build`, dist/) when it was made
// from exactly the sources present (bin/built.js compares their SHA-256), else registers tsx
// (with this package's tsconfig, whatever the cwd) and runs the TypeScript sources: an edited
// .ts file is never served from an old build. $SWS_BUILD: `auto` (default), `never` (always
// the sources), `require` (exit 1 unless the build is fresh: the container image sets it).
// Works through the node_modules/.bin symlink because Node resolves the main module's real path.
import { fileURLToPath } from 'node:url';
import { builtEntry } from './built.js';

const mode = process.env.SWS_BUILD || 'auto';
if (mode !== 'auto' && mode !== 'never' && mode !== 'require') {
  process.stderr.write(`error: $SWS_BUILD must be auto, never or require, not "${mode}"\n`);
  process.exit(2);
}
const build = mode === 'never' ? { url: undefined, why: 'SWS_BUILD=never' } : builtEntry(new URL('..', import.meta.url), 'sws');
if (build.url === undefined && mode === 'require') {
  process.stderr.write(`error: SWS_BUILD=require but ${build.why}: run \`npm run build\`\n`);
  process.exit(1);
}
let main;
if (build.url !== undefined) {
  ({ main } = await import(build.url));
} else {
  const { register } = await import('tsx/esm/api');
  register({ tsconfig: fileURLToPath(new URL('../tsconfig.json', import.meta.url)) });
  ({ main } = await import('./cli.ts'));
}
process.exitCode = await main(process.argv.slice(2));

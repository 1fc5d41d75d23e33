#!/usr/bin/env node
// The `sws` executable: registers tsx (with this package's tsconfig, whatever the cwd) so the
// TypeScript sources run directly, then hands argv to bin/cli.ts. Works through the
// node_modules/.bin symlink because Node resolves the main module's real path.
import { fileURLToPath } from 'node:url';
import { register } from 'tsx/esm/api';

register({ tsconfig: fileURLToPath(new URL('../tsconfig.json', import.meta.url)) });
const { main } = await import('./cli.ts');
process.exitCode = await main(process.argv.slice(2));

/**
 * zod, loaded through `require`. Under the tsx ESM loader hooks that bin/sws.js registers,
 * importing zod's ESM build (~80 files, each through the hooks) costs ~200 ms per CLI call;
 * its CommonJS build loads in ~70 ms. Same package, same API, types from the ESM entry.
 */
import { createRequire } from 'node:module';
import type { z as Z } from 'zod';

export const z: typeof Z = (createRequire(import.meta.url)('zod') as { z: typeof Z }).z;
export type { Z };

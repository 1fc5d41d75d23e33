/** Test helpers for store/ tests: temp data dirs and cheap-but-real scrypt parameters. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ScryptParams } from '../password.ts';

/** 2^10: tests exercise the real code path without the production cost. */
export const TEST_SCRYPT: ScryptParams = { log2N: 10, r: 8, p: 1 };

/** A fresh temp dir, removed by the returned cleanup (call it in `after`). */
export function tempDir(prefix = 'sws-store-'): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** A master key for tests, passed through the env option (never process.env). */
export const TEST_ENV: NodeJS.ProcessEnv = {};

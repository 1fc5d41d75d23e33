// Which precompiled build (dist/, made by scripts/build.mjs) may run: dist/manifest.json
// names each entry's output and the SHA-256 of every source file bundled into it; an entry
// is fresh only while every one of those files still has that hash. Content, not mtimes: a
// checkout, copy or edit that changes nothing keeps the build, any change discards it.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';

export const MANIFEST = 'dist/manifest.json';
export const MANIFEST_FORMAT = 1;

/** SHA-256 (hex) of a file's octets. */
export function fileHash(path) {
  return createHash('sha256').update(readFileSync(path)).digest('hex');
}

/**
 * The URL of entry `name`'s output when it was built from the sources now under `root` (a
 * file: URL of the package directory, ending in '/'), else undefined; `why` says which.
 */
export function builtEntry(root, name) {
  let manifest;
  try {
    manifest = JSON.parse(readFileSync(new URL(MANIFEST, root), 'utf8'));
  } catch {
    return { url: undefined, why: `no build (${MANIFEST})` };
  }
  const entry = manifest?.format === MANIFEST_FORMAT ? manifest.entries?.[name] : undefined;
  if (!entry) return { url: undefined, why: `${MANIFEST} has no entry "${name}"` };
  for (const [file, hash] of Object.entries(entry.inputs)) {
    let now;
    try {
      now = fileHash(new URL(file, root));
    } catch {
      now = 'missing';
    }
    if (now !== hash) return { url: undefined, why: `the build is older than ${file}` };
  }
  return { url: new URL(entry.output, root).href, why: 'fresh build' };
}

/**
 * zod, loaded on first use through `require`. Lazily, because it adds ~6 MiB of RSS to every
 * process that loads it and the sidecars check no input with it after start-up (their flags
 * and environment go through plain checks: store/validate.ts checkInt, sidecar-shared/listen.ts
 * parseListen); `sws apply`, the webhook and the write commands load it when they build their
 * first schema. Through
 * `require`, because under the tsx ESM loader hooks importing zod's ESM build (~80 files, each
 * through the hooks) cost ~200 ms per CLI call against ~70 ms for its CommonJS build. Same
 * package, same API, types from the ESM entry.
 */
import { createRequire } from 'node:module';
import type { z as Z } from 'zod';

export type { Z };

let loaded: typeof Z | undefined;

/** The zod namespace, required on the first call. */
export function zod(): typeof Z {
  loaded ??= (createRequire(import.meta.url)('zod') as { z: typeof Z }).z;
  return loaded;
}

/** A schema built (and zod loaded) on its first use, then reused. */
export type LazySchema<S extends Z.ZodType> = () => S;

export function lazySchema<S extends Z.ZodType>(build: (z: typeof Z) => S): LazySchema<S> {
  let schema: S | undefined;
  return () => {
    schema ??= build(zod());
    return schema;
  };
}

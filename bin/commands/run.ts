/**
 * Shared by `sws inner start` and `sws outer start`: parse numeric flags, run a sidecar
 * until SIGTERM/SIGINT, then stop it gracefully (stop accepting, finish in-flight requests
 * within the grace period, close the database).
 */
import { setFlagsFromString } from 'node:v8';
import { schemas } from '../../store/index.ts';
import { youngGc } from '../../sidecar-shared/young-gc.ts';

/** A decimal integer flag from `min` to `max` (store/validate.ts); the error names `flag`. */
export function intFlag(value: string | undefined, flag: string, min: number, max: number): number | undefined {
  if (value === undefined) return undefined;
  return schemas.checkInt(value, min, max, flag);
}

/**
 * V8 grows the old generation by a factor it picks from GC and mutator speed, up to ×4; under a
 * sustained stream of small requests that let each sidecar's RSS creep ~55 MiB above what it
 * holds live (old space 16 → 67–72 MiB committed, 20–30 used). A fixed ×2 keeps the peak ~35 MiB
 * lower at the same CPU per request and MB/s (docs/PERFORMANCE.md, "Heap growth").
 */
export const DEFAULT_HEAP_GROWING_PERCENT = 100;
const HEAP_GROWING_ENV = 'SWS_HEAP_GROWING_PERCENT';

/**
 * The V8 flag a sidecar start sets, or undefined: none when node was started with its own
 * `--heap-growing-percent` (the operator's choice wins) or `$SWS_HEAP_GROWING_PERCENT` is 0
 * (V8's own factor); else that variable (1–1000) or the default. Bad values are a usage error.
 */
export function heapGrowingFlag(env: NodeJS.ProcessEnv, execArgv: readonly string[]): string | undefined {
  const raw = env[HEAP_GROWING_ENV];
  const percent = raw === undefined || raw === '' ? DEFAULT_HEAP_GROWING_PERCENT : schemas.checkInt(raw, 0, 1000, `$${HEAP_GROWING_ENV}`);
  if (execArgv.some((a) => /^--heap[-_]growing[-_]percent(=|$)/.test(a))) return undefined;
  return percent === 0 ? undefined : `--heap-growing-percent=${percent}`;
}

/** MiB of record octets between two young collections a sidecar asks for (sidecar-shared/young-gc.ts). */
export const DEFAULT_YOUNG_GC_MIB = 2;
const YOUNG_GC_ENV = 'SWS_YOUNG_GC_MIB';

/** Octets between requested young collections: `$SWS_YOUNG_GC_MIB` (0–1024, 0 = off) or the default. Bad values are a usage error. */
export function youngGcBytes(env: NodeJS.ProcessEnv): number {
  const raw = env[YOUNG_GC_ENV];
  const mib = raw === undefined || raw === '' ? DEFAULT_YOUNG_GC_MIB : schemas.checkInt(raw, 0, 1024, `$${YOUNG_GC_ENV}`);
  return mib * 1024 * 1024;
}

const WASM_ENV = 'SWS_WASM_LIFTOFF_ONLY';
/** V8 flags (normalized: `-` for `_`, without a `no`/`no-` prefix) that choose how WebAssembly tiers. */
const WASM_TIERING_FLAGS = new Set(['liftoff', 'liftoff-only', 'wasm-tier-up', 'wasm-dynamic-tiering', 'wasm-tiering-budget']);

/** A node/V8 command-line flag's name as V8 matches it: `_` and `-` alike, a `no`/`no-` prefix dropped. */
function v8FlagName(arg: string): string | undefined {
  if (!arg.startsWith('--')) return undefined;
  const name = arg.slice(2).split('=')[0]!.replaceAll('_', '-');
  return name.startsWith('no-') ? name.slice(3) : name.startsWith('no') ? name.slice(2) : name;
}

/**
 * undici parses HTTP/1.1 with llhttp compiled to WebAssembly. V8 first runs it as Liftoff
 * (baseline) code and, once it is hot, recompiles it with TurboFan on a helper thread: for
 * llhttp's one large state-machine function that compile held ~30 MiB for a few hundred ms,
 * soon after a sidecar's first requests (the highest point of its RSS, freed right after).
 * Liftoff code is slower, but the parser reads only heads and counts body octets: paired
 * benchmarks found no difference (docs/PERFORMANCE.md, "WebAssembly tier-up"). The flag, or
 * none: `$SWS_WASM_LIFTOFF_ONLY=0` keeps V8's tiering, and a tiering flag given to node itself
 * (WASM_TIERING_FLAGS, in any spelling V8 accepts) is the operator's choice and wins.
 */
export function wasmTierFlag(env: NodeJS.ProcessEnv, execArgv: readonly string[]): string | undefined {
  const raw = env[WASM_ENV];
  const on = raw === undefined || raw === '' ? 1 : schemas.checkInt(raw, 0, 1, `$${WASM_ENV}`);
  if (execArgv.some((a) => WASM_TIERING_FLAGS.has(v8FlagName(a) ?? ''))) return undefined;
  return on === 1 ? '--liftoff-only' : undefined;
}

/**
 * Applies heapGrowingFlag (V8 reads it at each full GC, so setting it at start suffices) and
 * wasmTierFlag (read when a module is compiled, so before undici's first connection) to this
 * process, and paces young collections by record octets. Every setting is read before any is
 * applied, so a bad value changes nothing.
 */
export function tuneHeapForSidecar(env: NodeJS.ProcessEnv): void {
  const flag = heapGrowingFlag(env, process.execArgv);
  const wasm = wasmTierFlag(env, process.execArgv);
  const youngEvery = youngGcBytes(env);
  if (flag !== undefined) setFlagsFromString(flag);
  // Before undici compiles its parser (on the first request): V8 reads it per compile.
  if (wasm !== undefined) setFlagsFromString(wasm);
  if (!youngGc.configure(youngEvery) && youngEvery > 0) {
    process.emitWarning('V8 offers no collector entry point here: young collections are not paced ($SWS_YOUNG_GC_MIB)', { code: 'SWS_YOUNG_GC_UNAVAILABLE' });
  }
}

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

export interface Stoppable {
  stop(graceMs?: number): Promise<void>;
}

/** Resolves when the sidecar stopped after a termination signal. */
export function runUntilSignal(sidecar: Stoppable): Promise<void> {
  return new Promise((resolve, reject) => {
    let stopping = false;
    const onSignal = () => {
      if (stopping) return;
      stopping = true;
      process.off('SIGTERM', onSignal);
      process.off('SIGINT', onSignal);
      sidecar.stop().then(resolve, reject);
    };
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
  });
}

/**
 * The V8 settings a sidecar start applies (docs/OPERATIONS.md, "Heap growth" and "WebAssembly
 * tier-up"): the defaults, the environment overrides, the operator's own node flags winning,
 * and bad values.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DEFAULT_HEAP_GROWING_PERCENT, DEFAULT_YOUNG_GC_MIB, heapGrowingFlag, wasmTierFlag, youngGcBytes } from './run.ts';
import { UsageError } from '../../store/index.ts';

test('sidecars cap V8 heap growth by default; $SWS_HEAP_GROWING_PERCENT overrides it, 0 leaves V8 its own factor', () => {
  assert.equal(heapGrowingFlag({}, []), `--heap-growing-percent=${DEFAULT_HEAP_GROWING_PERCENT}`);
  assert.equal(heapGrowingFlag({ SWS_HEAP_GROWING_PERCENT: '' }, []), `--heap-growing-percent=${DEFAULT_HEAP_GROWING_PERCENT}`);
  assert.equal(heapGrowingFlag({ SWS_HEAP_GROWING_PERCENT: '50' }, []), '--heap-growing-percent=50');
  assert.equal(heapGrowingFlag({ SWS_HEAP_GROWING_PERCENT: '0' }, []), undefined);
});

test('a --heap-growing-percent given to node itself wins, in any spelling node accepts', () => {
  for (const arg of ['--heap-growing-percent=30', '--heap_growing_percent=30', '--heap-growing-percent']) {
    assert.equal(heapGrowingFlag({ SWS_HEAP_GROWING_PERCENT: '50' }, ['--max-semi-space-size=4', arg]), undefined, arg);
  }
  assert.equal(heapGrowingFlag({}, ['--heap-growing-percentage=3']), `--heap-growing-percent=${DEFAULT_HEAP_GROWING_PERCENT}`);
});

test('a bad $SWS_HEAP_GROWING_PERCENT is a usage error naming the variable, even when node has the flag', () => {
  for (const v of ['lots', '-1', '1001', '2.5', '1e2']) {
    for (const argv of [[], ['--heap-growing-percent=30']]) {
      assert.throws(() => heapGrowingFlag({ SWS_HEAP_GROWING_PERCENT: v }, argv), (e: unknown) => e instanceof UsageError && /\$SWS_HEAP_GROWING_PERCENT/.test(e.message), v);
    }
  }
});

test('sidecars ask for a young collection every 2 MiB of records by default; $SWS_YOUNG_GC_MIB overrides it, 0 turns it off', () => {
  assert.equal(youngGcBytes({}), DEFAULT_YOUNG_GC_MIB * 1048576);
  assert.equal(DEFAULT_YOUNG_GC_MIB, 2);
  assert.equal(youngGcBytes({ SWS_YOUNG_GC_MIB: '' }), DEFAULT_YOUNG_GC_MIB * 1048576);
  assert.equal(youngGcBytes({ SWS_YOUNG_GC_MIB: '8' }), 8 * 1048576);
  assert.equal(youngGcBytes({ SWS_YOUNG_GC_MIB: '0' }), 0);
  for (const v of ['lots', '-1', '1025', '0.5', '1e1']) {
    assert.throws(() => youngGcBytes({ SWS_YOUNG_GC_MIB: v }), (e: unknown) => e instanceof UsageError && /\$SWS_YOUNG_GC_MIB/.test(e.message), v);
  }
});

test('sidecars keep undici\'s WebAssembly parser in Liftoff by default; $SWS_WASM_LIFTOFF_ONLY=0 keeps V8\'s tier-up', () => {
  assert.equal(wasmTierFlag({}, []), '--liftoff-only');
  assert.equal(wasmTierFlag({ SWS_WASM_LIFTOFF_ONLY: '' }, []), '--liftoff-only');
  assert.equal(wasmTierFlag({ SWS_WASM_LIFTOFF_ONLY: '1' }, ['--max-semi-space-size=4']), '--liftoff-only');
  assert.equal(wasmTierFlag({ SWS_WASM_LIFTOFF_ONLY: '0' }, []), undefined);
});

test('a Liftoff or wasm tiering flag given to node itself wins, in any spelling node accepts', () => {
  const spellings = ['--liftoff-only', '--liftoff_only', '--no-liftoff-only', '--no_liftoff_only', '--noliftoff-only', '--liftoff', '--no-liftoff', '--noliftoff'];
  const tiering = ['--wasm-tier-up', '--no_wasm_tier_up', '--no-wasm-dynamic-tiering', '--wasm-tiering-budget=1000', '--wasm_tiering_budget=1000'];
  for (const arg of [...spellings, ...tiering]) {
    assert.equal(wasmTierFlag({}, ['--max-semi-space-size=4', arg]), undefined, arg);
  }
  // Not tiering flags (other WebAssembly settings included): the default still applies.
  for (const arg of ['--liftoffs', '--wasm-max-mem-pages=100', '--no-wasm-bounds-checks', '--wasm-lazy-compilation', '--experimental-wasm-stringref', '--max-old-space-size=200']) {
    assert.equal(wasmTierFlag({}, [arg]), '--liftoff-only', arg);
  }
});

test('a bad $SWS_WASM_LIFTOFF_ONLY is a usage error naming the variable', () => {
  for (const v of ['yes', '2', '-1', 'true', '0.5']) {
    assert.throws(() => wasmTierFlag({ SWS_WASM_LIFTOFF_ONLY: v }, []), (e: unknown) => e instanceof UsageError && /\$SWS_WASM_LIFTOFF_ONLY/.test(e.message), v);
  }
});

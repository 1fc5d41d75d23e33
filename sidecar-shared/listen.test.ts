/**
 * The one HOST:PORT parser of every listening command (inner, outer, webhook): what it accepts,
 * and that a bad value is a usage error (exit 2) naming the flag.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseListen } from './listen.ts';

test('parseListen parses HOST:PORT, [v6]:PORT and :PORT', () => {
  assert.deepEqual(parseListen('127.0.0.1:8080', '--listen'), { host: '127.0.0.1', port: 8080 });
  assert.deepEqual(parseListen('[::1]:0', '--listen'), { host: '::1', port: 0 });
  assert.deepEqual(parseListen(':8480', '--listen'), { host: '0.0.0.0', port: 8480 });
  assert.deepEqual(parseListen('inner.example:65535', '--listen'), { host: 'inner.example', port: 65535 });
});

test('parseListen refuses what is not HOST:PORT, and ports above 65535', () => {
  for (const bad of ['8080', '127.0.0.1', '127.0.0.1:', 'a:b', '[::1]8080', '::1:8080', 'a b:80', ' :80']) {
    assert.throws(() => parseListen(bad, '--listen'), { code: 'SWS_ERR_USAGE', message: /--listen.*must be HOST:PORT/ }, String(bad));
  }
  assert.throws(() => parseListen('127.0.0.1:65536', '--listen'), { message: /the port must be 0 to 65535, got 65536/ });
});

/**
 * The inner's canonical request (RFC 9110 §7.6.1): after decryption, hop-by-hop fields, the
 * fields named in Connection, Proxy-* fields and Expect are dropped by the inner itself, so
 * an outer that forwards them cannot turn a request into undici's refusal (a misleading 502).
 * End-to-end fields stay, in order, repeats kept.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { FieldLine, RequestHead } from '../core/bhttp.ts';
import { canonicalize } from './request.ts';

function head(headers: FieldLine[]): RequestHead {
  return { method: 'POST', scheme: 'http', authority: 'intranet.example', path: '/a?b=c', headers };
}

const END_TO_END: FieldLine[] = [
  ['accept', 'text/html'],
  ['content-type', 'text/plain'],
  ['content-length', '5'],
  ['cookie', 'a=1'],
  ['cookie', 'b=2'],
  ['authorization', 'Bearer t'],
];

test('baseline: end-to-end fields pass through in order, repeats kept', () => {
  assert.deepEqual(canonicalize(head(END_TO_END), 'x-forwarded-user').headers, END_TO_END);
});

const DROPPED: FieldLine[] = [
  ['connection', 'keep-alive'],
  ['keep-alive', 'timeout=5'],
  ['te', 'trailers'],
  ['trailer', 'x-checksum'],
  ['transfer-encoding', 'chunked'],
  ['upgrade', 'websocket'],
  ['proxy-connection', 'keep-alive'],
  ['proxy-authorization', 'Basic YTpi'],
  ['proxy-authenticate', 'Basic'],
  ['proxy-anything', 'x'],
  ['http2-settings', 'AAMAAABk'],
  ['expect', '100-continue'],
  ['host', 'evil.example'],
];

for (const field of DROPPED) {
  test(`${field[0]} is dropped from the decrypted request`, () => {
    const out = canonicalize(head([...END_TO_END.slice(0, 2), field, ...END_TO_END.slice(2)]), 'x-forwarded-user').headers;
    assert.deepEqual(out, END_TO_END);
  });
}

test('names listed in Connection are dropped, whatever their case and spacing; others stay', () => {
  const out = canonicalize(
    head([['Connection', ' X-Hop-One ,x-hop-two'], ['x-hop-one', '1'], ['X-HOP-TWO', '2'], ['x-hop-three', '3'], ...END_TO_END]),
    'x-forwarded-user',
  ).headers;
  assert.deepEqual(out, [['x-hop-three', '3'], ...END_TO_END]);
});

test('every Connection field counts, not only the first', () => {
  const out = canonicalize(head([['connection', 'x-a'], ['connection', 'x-b'], ['x-a', '1'], ['x-b', '2'], ...END_TO_END]), 'x-forwarded-user').headers;
  assert.deepEqual(out, END_TO_END);
});

test('hop-by-hop names spelled with underscores are dropped too (some servers merge _ and -)', () => {
  const out = canonicalize(head([['transfer_encoding', 'chunked'], ['proxy_authorization', 'x'], ...END_TO_END]), 'x-forwarded-user').headers;
  assert.deepEqual(out, END_TO_END);
});

test('identity and path-override fields stay dropped alongside', () => {
  const out = canonicalize(head([['x-forwarded-user', 'admin'], ['x-original-url', '/admin'], ['te', 'trailers'], ...END_TO_END]), 'x-forwarded-user').headers;
  assert.deepEqual(out, END_TO_END);
});

test('identity and path-override fields in any letter case or spelt with _ are dropped (a bypass needs only one parser to disagree)', () => {
  const names = ['X-Forwarded-User', 'X_FORWARDED_USER', 'x_Forwarded-user', 'X-Original-URL', 'x_original_url', 'X_Rewrite_Url', 'X-FORWARDED-URI', 'x_forwarded_uri'];
  const spoofs = names.map((n): [string, string] => [n, '/admin']);
  assert.deepEqual(canonicalize(head([...spoofs, ...END_TO_END]), 'x-forwarded-user').headers, END_TO_END);
  // A configured identity header is matched the same way.
  assert.deepEqual(canonicalize(head([['X_Remote_User', 'admin'], ['x-remote-user', 'admin'], ...END_TO_END]), 'X-Remote-User').headers, END_TO_END);
});

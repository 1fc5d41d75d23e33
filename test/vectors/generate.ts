/**
 * Writes test/vectors/sws-v1.json: a complete sws/1 exchange, confirmation and three
 * request/response pairs (one record, several records, no body), made from fixed inputs
 * only (test-only keys in this directory, fixed OAEP seed and PSS salts), so a second
 * implementation can check itself (docs/PROTOCOL.md §12) and re-running reproduces the
 * committed file byte for byte (core/vectors.test.ts checks that).
 *
 * Usage: npx tsx test/vectors/generate.ts   (only when the protocol changes on purpose)
 */
import { writeFileSync } from 'node:fs';
import { buildVectors, VECTOR_FILE } from './build.ts';

writeFileSync(VECTOR_FILE, await buildVectors());
console.log('wrote test/vectors/sws-v1.json');

/**
 * A body source that fails while the sealer is busy (seals in flight, or the consumer slow to
 * take the next record) must surface as an error to the consumer of the sealed stream, never
 * as an unhandled rejection that would end the whole sidecar process.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { deriveKeyIv, directionFrom, encodeEnvelopeHeader, extractSessionPrk, MessageTypes, sealResponse } from './index.ts';

const turn = () => new Promise<void>((resolve) => setImmediate(resolve));

async function direction() {
  const prk = await extractSessionPrk(new Uint8Array(16).fill(1), new Uint8Array(32).fill(2));
  return directionFrom(await deriveKeyIv(prk, 's2c', new Uint8Array(32).fill(3)));
}

/** Yields `good` chunks at once, then fails. */
async function* failingSource(good: number): AsyncGenerator<Uint8Array> {
  for (let i = 0; i < good; i++) yield new Uint8Array(1024).fill(i);
  throw Object.assign(new Error('upstream reset'), { code: 'UPSTREAM_RESET' });
}

for (const good of [0, 1, 8, 9, 20]) {
  test(`a source failing after ${good} chunks reaches the consumer of a slow reader as an error, not an unhandled rejection`, async () => {
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    try {
      const header = encodeEnvelopeHeader(MessageTypes.response, new Uint8Array(16).fill(1), 1, 1_700_000_000);
      const sealed = sealResponse(await direction(), header, { status: 200, headers: [] }, failingSource(good));
      let caught: unknown;
      try {
        for await (const _ of sealed) {
          // A slow consumer: the sealer's pending read of the source fails meanwhile.
          for (let i = 0; i < 5; i++) await turn();
        }
      } catch (err) {
        caught = err;
      }
      for (let i = 0; i < 5; i++) await turn();
      assert.equal((caught as { code?: string } | undefined)?.code, 'UPSTREAM_RESET');
      assert.deepEqual(unhandled, []);
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
  });
}

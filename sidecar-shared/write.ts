/**
 * Writes a stream of chunks to an HTTP response with backpressure, then ends it. A plain loop
 * instead of stream.pipeline(Readable.from(...)): no per-request AbortController, Readable or
 * DOMException on the hot path. If the source throws (truncated or tampered input) the
 * response is destroyed, never ended, so the client cannot mistake a cut body for a whole one.
 */
import type { ServerResponse } from 'node:http';

export class ResponseClosedError extends Error {
  readonly code = 'SWS_ERR_CLIENT_GONE';
  constructor() {
    super('the response was closed before the body was written');
  }
}

function drained(res: ServerResponse): Promise<void> {
  return new Promise((resolve, reject) => {
    const onDrain = () => (res.off('close', onClose), resolve());
    const onClose = () => (res.off('drain', onDrain), reject(new ResponseClosedError()));
    res.once('drain', onDrain);
    res.once('close', onClose);
  });
}

export async function writeBody(res: ServerResponse, chunks: AsyncIterable<Uint8Array>): Promise<void> {
  try {
    for await (const chunk of chunks) {
      if (res.destroyed) throw new ResponseClosedError();
      if (!res.write(chunk)) await drained(res);
    }
  } catch (err) {
    res.destroy();
    throw err;
  }
  if (res.destroyed) throw new ResponseClosedError();
  await new Promise<void>((resolve) => {
    res.once('close', resolve);
    res.end(resolve);
  });
}

/** Envelopes (requests at the inner, answers at the outer) that declare at most this many octets are read whole and opened in memory. */
export const AT_HAND_ENVELOPE = 128 * 1024;

/** A body that is absent or whole in memory (small enough to have been read at once): it can be sent in one write and replayed. */
export function isAtHand(body: Uint8Array | AsyncIterable<Uint8Array> | null): body is Uint8Array | null {
  return body === null || body instanceof Uint8Array;
}

/** Gathers a short stream of chunks (a small sealed message) into one buffer. */
export async function collect(chunks: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const parts: Uint8Array[] = [];
  for await (const c of chunks) parts.push(c);
  return parts.length === 1 ? Buffer.from(parts[0]!.buffer, parts[0]!.byteOffset, parts[0]!.byteLength) : Buffer.concat(parts);
}

/**
 * Writes a message whose octets are all at hand (a small sealed answer) with one `end`, so
 * the status line, headers and body leave in one system call instead of one per chunk.
 * The source is read to its end first: a tampered or cut source throws before anything is sent.
 */
export async function writeWhole(res: ServerResponse, chunks: AsyncIterable<Uint8Array>): Promise<void> {
  return endWith(res, await collect(chunks));
}

/** Ends a response with its whole body in one write; resolves once it was handed to the socket or the response closed. */
export function endWith(res: ServerResponse, body: Uint8Array): Promise<void> {
  if (res.destroyed) return Promise.reject(new ResponseClosedError());
  return new Promise<void>((resolve) => {
    res.once('close', resolve);
    res.end(body, resolve);
  });
}

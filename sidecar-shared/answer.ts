/**
 * One HTTP call through undici whose answer comes back whole when it is small and declared so,
 * and as a stream otherwise.
 *
 * undici's `request()` gives every answer a body stream, which a small answer then drains into
 * a buffer: against a node:http server, 1 KiB answers, 16 in flight, that cost ~10 µs of client
 * CPU per call more than a dispatch handler that keeps the chunks (54 against 44 µs;
 * docs/PERFORMANCE.md "Small answers without a body stream"). Here the choice is made when the
 * head arrives: a Content-Length at most `atHandLimit`, or a status or method that has no body,
 * collects the octets; anything else (no length, chunked, large) streams through a Readable
 * that pauses undici whenever its reader falls behind, so memory stays bounded either way.
 */
import { Readable } from 'node:stream';
import type { IncomingHttpHeaders } from 'node:http';
import type { Dispatcher } from 'undici';
import type { Cancellation } from './cancel.ts';
import { declaredLength } from './headers.ts';

interface AnswerHead {
  readonly statusCode: number;
  readonly headers: IncomingHttpHeaders;
}

/** The answer: `bytes` when it was collected whole, else `body` to stream (never both). */
export type Answer = (AnswerHead & { readonly bytes: Uint8Array; readonly body: null }) | (AnswerHead & { readonly bytes: null; readonly body: Readable });

const EMPTY = new Uint8Array(0);

/** A status whose answers never carry a body (RFC 9110 §6.4.1): 1xx, 204, 304. */
export function statusWithoutBody(statusCode: number): boolean {
  return statusCode < 200 || statusCode === 204 || statusCode === 304;
}

/** An answer that carries no body whatever its headers say (RFC 9110 §6.4.1): a HEAD's, or one whose status has none. */
export function isBodiless(method: string, statusCode: number): boolean {
  return method === 'HEAD' || statusWithoutBody(statusCode);
}

/** The answer's octets as the record reader takes them: the stream, or the collected octets as one piece. */
export function answerSource(answer: Answer): AsyncIterable<Uint8Array> | Iterable<Uint8Array> {
  return answer.body ?? [answer.bytes];
}

/**
 * Sends `options` through `dispatcher`. Rejects with undici's error (or the signal's reason once
 * cancelled) until the head arrived; after that a failure or a cancellation destroys `body`.
 * Destroying `body` before its end aborts the call.
 */
export function requestAnswer(dispatcher: Dispatcher, options: Dispatcher.DispatchOptions, atHandLimit: number, signal?: Cancellation): Promise<Answer> {
  if (signal?.aborted) return Promise.reject(signal.reason);
  return new Promise<Answer>((resolve, reject) => {
    dispatcher.dispatch(options, new AnswerHandler(options.method, atHandLimit, resolve, reject, signal));
  });
}

class AnswerHandler implements Dispatcher.DispatchHandler {
  readonly #method: string;
  readonly #limit: number;
  readonly #resolve: (a: Answer) => void;
  readonly #reject: (e: unknown) => void;
  readonly #signal: Cancellation | undefined;
  #controller: Dispatcher.DispatchController | undefined;
  #head: AnswerHead | undefined;
  /** Collected octets, while collecting. */
  #chunks: Buffer[] | undefined;
  #stream: Readable | undefined;
  #ended = false;

  constructor(method: string, limit: number, resolve: (a: Answer) => void, reject: (e: unknown) => void, signal: Cancellation | undefined) {
    this.#method = method;
    this.#limit = limit;
    this.#resolve = resolve;
    this.#reject = reject;
    this.#signal = signal;
    signal?.once('abort', this.#onAbort);
  }

  readonly #onAbort = (): void => {
    // Before the connection is up the controller does not exist yet: onRequestStart aborts then.
    this.#controller?.abort(this.#signal!.reason as Error);
  };

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.#controller = controller;
    if (this.#signal?.aborted) controller.abort(this.#signal.reason as Error);
  }

  onResponseStart(controller: Dispatcher.DispatchController, statusCode: number, headers: IncomingHttpHeaders): void {
    if (statusCode < 200) return; // 1xx informational: the real head follows
    this.#head = { statusCode, headers };
    if (isBodiless(this.#method, statusCode) || declaredLength(headers['content-length']) <= this.#limit) {
      this.#chunks = [];
      return;
    }
    this.#stream = new Readable({
      // As undici's own body stream: one socket read's worth is buffered before undici is paused.
      highWaterMark: 64 * 1024,
      read: () => controller.resume(),
      destroy: (err, cb) => {
        if (!this.#ended) controller.abort(err ?? new Error('the answer body was closed before its end'));
        this.#done();
        cb(err);
      },
    });
    this.#resolve({ statusCode, headers, bytes: null, body: this.#stream });
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (this.#chunks) this.#chunks.push(chunk);
    else if (this.#stream && !this.#stream.push(chunk)) controller.pause();
  }

  onResponseEnd(): void {
    this.#ended = true;
    this.#done();
    if (this.#stream) {
      this.#stream.push(null);
      return;
    }
    const head = this.#head;
    if (!head || !this.#chunks) {
      this.#reject(new Error('the answer ended without a head'));
      return;
    }
    const chunks = this.#chunks;
    const bytes = chunks.length === 0 ? EMPTY : chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
    this.#resolve({ statusCode: head.statusCode, headers: head.headers, bytes, body: null });
  }

  onResponseError(_controller: Dispatcher.DispatchController, error: Error): void {
    this.#done();
    if (this.#stream) this.#stream.destroy(error);
    else this.#reject(error);
  }

  #done(): void {
    this.#signal?.off('abort', this.#onAbort);
  }
}

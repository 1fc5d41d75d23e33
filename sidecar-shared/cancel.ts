/**
 * A cancellation signal for one request's undici call. undici takes an EventEmitter as well as
 * an AbortSignal (`signal must be an EventEmitter or EventTarget`; it reads `aborted` and
 * `reason` and listens for 'abort'). Measured on this machine with undici 7 against a node:http
 * origin, an AbortController's signal added 11–16 µs of client CPU per request (EventTarget
 * listeners and bookkeeping); an emitter adds none measurable (docs/PERFORMANCE.md).
 */
import { EventEmitter } from 'node:events';

export class Cancellation extends EventEmitter {
  #aborted = false;
  #reason: unknown = undefined;

  get aborted(): boolean {
    return this.#aborted;
  }

  /** Why it was cancelled; undici rejects the call with this. */
  get reason(): unknown {
    return this.#reason;
  }

  /** Cancels once; later calls keep the first reason. */
  abort(reason: Error): void {
    if (this.#aborted) return;
    this.#aborted = true;
    this.#reason = reason;
    this.emit('abort');
  }
}

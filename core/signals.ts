/**
 * One table from error code to what the peer is told (key state, HTTP status, reason): the
 * envelope fails opaque (status + stable code) while logs carry the detail
 * (docs/PROTOCOL.md §8). Pre-decryption refusals are plaintext problem+json (RFC 9457);
 * nothing in them depends on a secret.
 */
import { ErrorCodes, SwsError } from './errors.ts';
import { KeyStates, type KeyState } from './wire.ts';

export interface Refusal {
  readonly keyState: KeyState;
  readonly status: number;
  /** Stable error code, e.g. SWS_ERR_REPLAY. */
  readonly code: string;
  /** Short, secret-free reason for the problem document's title. */
  readonly title: string;
}

const STATUS_BY_CODE: Readonly<Record<string, number>> = {
  [ErrorCodes.OVERSIZE]: 413,
  [ErrorCodes.UNKNOWN_KEY]: 422,
  [ErrorCodes.UNKNOWN_USER]: 403,
  [ErrorCodes.SIGNATURE]: 403,
  [ErrorCodes.UNKNOWN_SESSION]: 409,
  [ErrorCodes.SESSION_LIMIT]: 409,
};

const TITLE_BY_CODE: Readonly<Record<string, string>> = {
  [ErrorCodes.MALFORMED]: 'malformed sws message',
  [ErrorCodes.VERSION]: 'unsupported sws version',
  [ErrorCodes.OVERSIZE]: 'sws record too large',
  [ErrorCodes.DECRYPT]: 'sws record failed authentication',
  [ErrorCodes.SIGNATURE]: 'signature did not verify',
  [ErrorCodes.UNWRAP]: 'session secret could not be unwrapped',
  [ErrorCodes.TRUNCATED]: 'sws message truncated',
  [ErrorCodes.REPLAY]: 'replayed sws message',
  [ErrorCodes.STALE]: 'sws message outside the accepted time window',
  [ErrorCodes.UNKNOWN_KEY]: 'unknown inner key',
  [ErrorCodes.UNKNOWN_USER]: 'unknown user or key',
  [ErrorCodes.UNKNOWN_SESSION]: 'unknown session',
  [ErrorCodes.SESSION_LIMIT]: 'session limit reached',
  [ErrorCodes.BHTTP]: 'malformed encapsulated HTTP message',
};

/** Maps a failure during `phase` to what the inner answers in clear. */
export function refusalFor(err: unknown, phase: 'exchange' | 'request'): Refusal {
  const code = err instanceof SwsError ? err.code : ErrorCodes.GENERIC;
  const status = STATUS_BY_CODE[code] ?? (code === ErrorCodes.GENERIC ? 500 : 400);
  const title = TITLE_BY_CODE[code] ?? 'sws message refused';
  let keyState: KeyState;
  if (code === ErrorCodes.UNKNOWN_SESSION || code === ErrorCodes.SESSION_LIMIT) keyState = KeyStates.exchangeNeeded;
  else if (phase === 'exchange') keyState = KeyStates.exchangeFailed;
  else keyState = KeyStates.rejected;
  return { keyState, status, code, title };
}

/** The RFC 9457 problem document for a refusal. */
export function problemDocument(r: Refusal): { type: string; title: string; status: number; code: string; keyState: string } {
  return { type: `urn:sws:error:${r.code}`, title: r.title, status: r.status, code: r.code, keyState: r.keyState };
}

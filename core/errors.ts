/**
 * Typed errors with stable codes. The code is the interface: it maps to the HTTP status,
 * the metric label and the log line in one place (sidecars), and tests assert on it.
 * Messages say what happened in words a person can act on; they never carry secrets or
 * echo attacker-controlled input.
 */

export const ErrorCodes = {
  /** Generic failure that fits no other code. */
  GENERIC: 'SWS_ERR_GENERIC',
  /** A message or field does not follow the byte layout. */
  MALFORMED: 'SWS_ERR_MALFORMED',
  /** Unsupported protocol version, message type or flags. */
  VERSION: 'SWS_ERR_VERSION',
  /** A length field exceeds the configured maximum (checked before allocating). */
  OVERSIZE: 'SWS_ERR_OVERSIZE',
  /** AEAD tag check failed: the data was altered, reordered, spliced or keyed wrongly. */
  DECRYPT: 'SWS_ERR_DECRYPT',
  /** A signature did not verify. */
  SIGNATURE: 'SWS_ERR_SIGNATURE',
  /** RSA-OAEP unwrap of the session secret failed. */
  UNWRAP: 'SWS_ERR_UNWRAP',
  /** A message ended before its final record. */
  TRUNCATED: 'SWS_ERR_TRUNCATED',
  /** A request, response or exchange was seen before. */
  REPLAY: 'SWS_ERR_REPLAY',
  /** A message's timestamp is outside the accepted window. */
  STALE: 'SWS_ERR_STALE',
  /** The key ID names no key the receiver holds. */
  UNKNOWN_KEY: 'SWS_ERR_UNKNOWN_KEY',
  /** The user named in an exchange is not registered, or the key does not match. */
  UNKNOWN_USER: 'SWS_ERR_UNKNOWN_USER',
  /** The receiver holds no session with that ID (restart, expiry). */
  UNKNOWN_SESSION: 'SWS_ERR_UNKNOWN_SESSION',
  /** The session reached a usage ceiling and must be re-keyed. */
  SESSION_LIMIT: 'SWS_ERR_SESSION_LIMIT',
  /** A key could not be parsed or has the wrong type or size. */
  KEY_FORMAT: 'SWS_ERR_KEY_FORMAT',
  /** A rekey policy string is invalid. */
  POLICY: 'SWS_ERR_POLICY',
  /** A key exchange failed (the outer reports it, patent S104). */
  EXCHANGE_FAILED: 'SWS_ERR_EXCHANGE_FAILED',
  /** Binary HTTP (RFC 9292) decoding failed. */
  BHTTP: 'SWS_ERR_BHTTP',
} as const;

export type ErrorCode = (typeof ErrorCodes)[keyof typeof ErrorCodes];

/** Base class of every error sws raises on purpose. `code` is stable across releases. */
export class SwsError extends Error {
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}

export class MalformedError extends SwsError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(ErrorCodes.MALFORMED, message, options);
  }
}
export class VersionError extends SwsError {
  constructor(message: string) {
    super(ErrorCodes.VERSION, message);
  }
}
export class OversizeError extends SwsError {
  constructor(message: string) {
    super(ErrorCodes.OVERSIZE, message);
  }
}
export class DecryptError extends SwsError {
  constructor(message = 'a record failed authentication (altered, reordered or wrongly keyed)', options?: { cause?: unknown }) {
    super(ErrorCodes.DECRYPT, message, options);
  }
}
export class SignatureError extends SwsError {
  constructor(message: string) {
    super(ErrorCodes.SIGNATURE, message);
  }
}
export class UnwrapError extends SwsError {
  constructor(message = 'the session secret could not be unwrapped with this inner key', options?: { cause?: unknown }) {
    super(ErrorCodes.UNWRAP, message, options);
  }
}
export class TruncatedError extends SwsError {
  constructor(message = 'the message ended before its final record') {
    super(ErrorCodes.TRUNCATED, message);
  }
}
export class ReplayError extends SwsError {
  constructor(message: string) {
    super(ErrorCodes.REPLAY, message);
  }
}
export class StaleError extends SwsError {
  constructor(message: string) {
    super(ErrorCodes.STALE, message);
  }
}
export class UnknownKeyError extends SwsError {
  constructor(message: string) {
    super(ErrorCodes.UNKNOWN_KEY, message);
  }
}
export class UnknownUserError extends SwsError {
  constructor(message: string) {
    super(ErrorCodes.UNKNOWN_USER, message);
  }
}
export class UnknownSessionError extends SwsError {
  constructor(message = 'no session with this ID: exchange a new key') {
    super(ErrorCodes.UNKNOWN_SESSION, message);
  }
}
export class SessionLimitError extends SwsError {
  constructor(message: string) {
    super(ErrorCodes.SESSION_LIMIT, message);
  }
}
export class KeyFormatError extends SwsError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(ErrorCodes.KEY_FORMAT, message, options);
  }
}
export class PolicyError extends SwsError {
  constructor(message: string) {
    super(ErrorCodes.POLICY, message);
  }
}
export class ExchangeFailedError extends SwsError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(ErrorCodes.EXCHANGE_FAILED, message, options);
  }
}
export class BhttpError extends SwsError {
  constructor(message: string) {
    super(ErrorCodes.BHTTP, message);
  }
}

/**
 * sws/1 wire constants and the 38-octet envelope header (docs/PROTOCOL.md §3).
 * The header travels in clear and is the AAD of every record of its message, so any
 * change to type, session, sequence or timestamp fails every record's tag.
 */
import { readU64, writeU64 } from './bytes.ts';
import { MalformedError, VersionError } from './errors.ts';

export const PROTOCOL_VERSION = 1;
export const MEDIA_TYPE = 'application/vnd.sws.v1';
export const ENVELOPE_PATH = '/.sws/v1';

/** HTTP envelope header names (lowercase, as node and undici present them). */
export const HeaderNames = {
  version: 'sws-version',
  keyState: 'sws-key-state',
} as const;

/** Patent Fig. 8 "key state" values, request side and response side (docs/PROTOCOL.md §8). */
export const KeyStates = {
  /** Request: the body starts with an EXCHANGE message (S103). */
  exchange: 'exchange',
  /** Request: REQUEST on a session the inner should hold (S105). */
  established: 'established',
  /** Response: exchange accepted; body is EXCHANGE_CONFIRM [+ RESPONSE] (S104 success). */
  exchanged: 'exchanged',
  /** Response: the request was processed; body is RESPONSE. */
  ok: 'ok',
  /** Response: the inner holds no usable session; nothing went upstream. */
  exchangeNeeded: 'exchange-needed',
  /** Response: the exchange was refused (S104 failure). */
  exchangeFailed: 'exchange-failed',
  /** Response: the envelope was refused before anything went upstream. */
  rejected: 'rejected',
} as const;
export type KeyState = (typeof KeyStates)[keyof typeof KeyStates];

export const MessageTypes = {
  exchange: 1,
  confirm: 2,
  request: 3,
  response: 4,
} as const;
export type MessageType = (typeof MessageTypes)[keyof typeof MessageTypes];

const MAGIC = [0x53, 0x57, 0x53] as const; // "SWS"
export const ENVELOPE_HEADER_LENGTH = 38;
export const SESSION_ID_LENGTH = 16;
/** Message sequence numbers live in a 40-bit nonce field. */
export const MAX_SEQUENCE = 2 ** 40 - 1;

export interface EnvelopeHeader {
  readonly type: MessageType;
  readonly sessionId: Uint8Array;
  readonly sequence: number;
  readonly timestamp: number;
  /** The 38 octets exactly as sent/received: the AAD of every record of the message. */
  readonly bytes: Uint8Array;
}

export function encodeEnvelopeHeader(type: MessageType, sessionId: Uint8Array, sequence: number, timestamp: number): EnvelopeHeader {
  if (sessionId.length !== SESSION_ID_LENGTH) throw new RangeError('session ID must be 16 octets');
  if (!Number.isSafeInteger(sequence) || sequence < 0 || sequence > MAX_SEQUENCE) throw new RangeError('sequence out of range');
  if (!Number.isSafeInteger(timestamp) || timestamp < 0) throw new RangeError('timestamp out of range');
  const bytes = new Uint8Array(ENVELOPE_HEADER_LENGTH);
  bytes.set(MAGIC, 0);
  bytes[3] = PROTOCOL_VERSION;
  bytes[4] = type;
  bytes[5] = 0;
  bytes.set(sessionId, 6);
  writeU64(bytes, 22, sequence);
  writeU64(bytes, 30, timestamp);
  return { type, sessionId: bytes.subarray(6, 22), sequence, timestamp, bytes };
}

/** Strict parse: wrong magic, version, type or non-zero flags are rejected. */
export function parseEnvelopeHeader(bytes: Uint8Array): EnvelopeHeader {
  if (bytes.length !== ENVELOPE_HEADER_LENGTH) throw new MalformedError('envelope header must be 38 octets');
  if (bytes[0] !== MAGIC[0] || bytes[1] !== MAGIC[1] || bytes[2] !== MAGIC[2]) throw new MalformedError('not an sws message (bad magic)');
  if (bytes[3] !== PROTOCOL_VERSION) throw new VersionError(`unsupported sws protocol version ${bytes[3]}; this build speaks version ${PROTOCOL_VERSION}`);
  const type = bytes[4]!;
  if (type < MessageTypes.exchange || type > MessageTypes.response) throw new VersionError('unknown sws message type');
  if (bytes[5] !== 0) throw new VersionError('unsupported sws message flags');
  const sequence = readU64(bytes, 22);
  const timestamp = readU64(bytes, 30);
  if (sequence > MAX_SEQUENCE) throw new MalformedError('message sequence out of range');
  if (!Number.isFinite(timestamp)) throw new MalformedError('timestamp out of range');
  const isKeyMessage = type === MessageTypes.exchange || type === MessageTypes.confirm;
  if (isKeyMessage !== (sequence === 0)) throw new MalformedError('sequence must be 0 exactly for exchange and confirm messages');
  return { type: type as MessageType, sessionId: bytes.subarray(6, 22), sequence, timestamp, bytes };
}

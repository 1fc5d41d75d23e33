/** Hard AEAD usage ceilings, shared by the record layer (enforcement) and the rekey policy (rotation before them). */

/**
 * Hard usage ceilings per session key (protocol.md property 6, protocol-reference.md §7).
 * Rationale: RFC 8446 §5.5 (AES-GCM: 2^24.5 full records per key keeps the confidentiality
 * advantage below 2^-60) and the CFRG AEAD usage-limits draft (draft-irtf-cfrg-aead-limits
 * §5–7: confidentiality limit on records/octets, integrity limit on forgery attempts).
 * sws stays well inside them; the inner refuses a session that reaches any of these.
 */
export const AEAD_CEILINGS = {
  /** Records sealed (or opened) in either direction. */
  records: 2 ** 23,
  /** Plaintext octets, both directions. */
  bytes: 2 ** 36,
  /** Records that failed authentication (integrity limit: forgery attempts). */
  failedOpens: 2 ** 20,
  /** Age of the key. */
  ageMs: 24 * 60 * 60 * 1000,
} as const;

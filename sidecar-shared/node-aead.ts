/**
 * AES-GCM for the Node sidecars through node:crypto (OpenSSL, AES-NI), injected into the core
 * as its AeadBackend. Same algorithm and octets as the core's WebCrypto default; it skips
 * WebCrypto's per-call thread-pool dispatch, which dominated small requests in the profile.
 *
 * Keys are imported once per session direction, and an idle session holds two of them (issue
 * 7: ≤ 2 KiB per idle session). A KeyObject costs ~900 octets, ~800 of them native memory
 * that heap statistics do not show; here a key is its raw octets in a 32-octet slot of a
 * shared slab, passed to createCipheriv as they are, and the handle the core keeps is a small
 * object naming the slot, which shows no octets if logged. When a handle becomes unreachable
 * its slot is wiped and reused, as node wipes a KeyObject's octets when it frees one.
 */
import { createCipheriv, createDecipheriv } from 'node:crypto';
import type { AeadBackend, AeadKey } from '../core/aead.ts';
import { DecryptError } from '../core/errors.ts';
import { youngGc } from './young-gc.ts';

const TAG = 16;
const SLOT = 32;
const SLAB_SLOTS = 512;

/** An imported key: the store and slot that hold its octets, and how many (16 or 32). */
class SlotKey {
  readonly owner: KeySlots;
  readonly slot: number;
  readonly length: number;
  constructor(owner: KeySlots, slot: number, length: number) {
    this.owner = owner;
    this.slot = slot;
    this.length = length;
  }
}

/**
 * Raw AES keys in 32-octet slots of shared slabs, grown 16 KiB at a time and never shrunk (a
 * peak of N live keys keeps N × 32 octets). Each key is handed out as a small handle naming
 * its slot; once the handle is unreachable, the slot is zeroed and reused.
 */
export class KeySlots {
  readonly #slabs: Uint8Array[] = [];
  readonly #free: number[] = [];
  readonly #wipeOnCollect = new FinalizationRegistry<number>((slot) => {
    this.#bytes(slot, SLOT).fill(0);
    this.#free.push(slot);
  });

  /** Slots holding a key whose handle was not yet collected. */
  get inUse(): number {
    return this.#slabs.length * SLAB_SLOTS - this.#free.length;
  }

  /** Copies a 16- or 32-octet AES key into a slot; the caller zeroes `raw`. */
  import(raw: Uint8Array): AeadKey {
    if (raw.length !== 16 && raw.length !== 32) throw new RangeError('AES key must be 16 or 32 octets');
    if (this.#free.length === 0) {
      const base = this.#slabs.length * SLAB_SLOTS;
      this.#slabs.push(new Uint8Array(SLAB_SLOTS * SLOT));
      for (let i = SLAB_SLOTS - 1; i >= 0; i--) this.#free.push(base + i);
    }
    const key = new SlotKey(this, this.#free.pop()!, raw.length);
    this.#bytes(key.slot, key.length).set(raw);
    this.#wipeOnCollect.register(key, key.slot);
    return key;
  }

  /** The key's octets in place: a view into the slab, for the call at hand only. */
  octets(key: AeadKey): Uint8Array {
    if (!(key instanceof SlotKey) || key.owner !== this) throw new TypeError('not a key of this node:crypto AEAD key store');
    return this.#bytes(key.slot, key.length);
  }

  #bytes(slot: number, length: number): Uint8Array {
    const start = (slot % SLAB_SLOTS) * SLOT;
    return this.#slabs[Math.floor(slot / SLAB_SLOTS)]!.subarray(start, start + length);
  }
}

const keys = new KeySlots();

function algorithm(octets: Uint8Array): 'aes-128-gcm' | 'aes-256-gcm' {
  return octets.length === 16 ? 'aes-128-gcm' : 'aes-256-gcm';
}

/** AeadBackend.sealParts: the parts encrypted in turn into one buffer after `headroom` octets. */
function sealParts(key: AeadKey, nonce: Uint8Array, aad: Uint8Array, parts: readonly Uint8Array[], headroom: number): Uint8Array {
  const octets = keys.octets(key);
  const c = createCipheriv(algorithm(octets), octets, nonce, { authTagLength: TAG });
  c.setAAD(aad);
  let length = 0;
  for (const p of parts) length += p.length;
  youngGc.note(length);
  const out = outputBuffer(headroom + length + TAG);
  out.fill(0, 0, headroom);
  // GCM is a stream mode: each update returns exactly its input's length of ciphertext, so the
  // pieces and the tag cover everything after the headroom. Checked, because `out` may not be
  // zeroed: a gap would send old memory.
  let at = headroom;
  for (const p of parts) {
    const piece = c.update(p);
    out.set(piece, at);
    at += piece.length;
  }
  c.final();
  if (at !== headroom + length) throw new Error(`AES-GCM returned ${at - headroom} octets of ciphertext for ${length} of plaintext`);
  out.set(c.getAuthTag(), at);
  return out;
}

/** Records of this size and more get an output buffer that is not zero-filled first. */
export const UNZEROED_FROM = 4096;

/**
 * A plain Uint8Array (not a Buffer: the same map as every other chunk of the record layer) of
 * `size` octets. From UNZEROED_FROM on, its memory is not zero-filled: sealParts overwrites every
 * octet, and zero-filling a 64 KiB record was 2–3 % of each sidecar's main thread in bulk
 * (`npm run bench:perf -- --phase bulk`, `__memset_avx512_unaligned_erms`). allocUnsafeSlow
 * never hands out a slice of Node's shared pool, so the record owns its memory.
 */
function outputBuffer(size: number): Uint8Array {
  if (size < UNZEROED_FROM) return new Uint8Array(size);
  return new Uint8Array(Buffer.allocUnsafeSlow(size).buffer, 0, size);
}

/**
 * AeadBackend.openParts: ciphertext ‖ tag as they arrived, in pieces split anywhere. Each piece
 * is decrypted in turn (no joined copy); the tag, which may itself straddle two pieces, is set
 * before final(), and the plaintext pieces are returned only once final() verified it.
 */
function openParts(key: AeadKey, nonce: Uint8Array, aad: Uint8Array, sealed: readonly Uint8Array[]): Uint8Array[] {
  let length = 0;
  for (const p of sealed) length += p.length;
  if (length < TAG) throw new DecryptError();
  youngGc.note(length);
  const octets = keys.octets(key);
  try {
    const d = createDecipheriv(algorithm(octets), octets, nonce, { authTagLength: TAG });
    d.setAAD(aad);
    const out: Uint8Array[] = [];
    const tag = new Uint8Array(TAG);
    const cipherLength = length - TAG;
    let at = 0;
    for (const p of sealed) {
      const cipherEnd = Math.min(p.length, Math.max(0, cipherLength - at));
      if (cipherEnd > 0) out.push(d.update(cipherEnd === p.length ? p : p.subarray(0, cipherEnd)));
      if (cipherEnd < p.length) tag.set(p.subarray(cipherEnd), at + cipherEnd - cipherLength);
      at += p.length;
    }
    d.setAuthTag(tag);
    d.final();
    return out.length > 0 ? out : [new Uint8Array(0)];
  } catch (cause) {
    throw new DecryptError(undefined, { cause });
  }
}

export const nodeAead: AeadBackend = {
  name: 'node-crypto-aes-gcm',
  importKey: (raw) => keys.import(raw),
  seal(key, nonce, aad, plaintext) {
    return sealParts(key, nonce, aad, [plaintext], 0);
  },
  sealParts,
  openParts,
  // One decrypt path: a whole record is the one-piece case (its plaintext comes back as one part).
  open: (key, nonce, aad, sealed) => openParts(key, nonce, aad, [sealed])[0]!,
};

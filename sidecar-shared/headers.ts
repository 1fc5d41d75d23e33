/**
 * Header handling shared by both sidecars (RFC 9110 §7.6.1): hop-by-hop fields (and Expect,
 * which each hop answers itself) and the fields named in Connection are never carried;
 * Proxy-* fields never leave the outer.
 */
import type { FieldLine } from '../core/bhttp.ts';

const HOP_BY_HOP: ReadonlySet<string> = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'proxy-authenticate',
  'proxy-authorization',
  'http2-settings',
  // Expect: 100-continue is negotiated per hop: the outer answers it to its client itself
  // (RFC 9110 §10.1.1); carried on, it would stall or break the inner's request upstream.
  'expect',
]);

/**
 * The set of field names a message must not forward: hop-by-hop plus those its Connection field
 * names. Without a Connection field that is the fixed set itself (no copy per request).
 */
export function hopByHopNames(connectionValues: readonly string[]): ReadonlySet<string> {
  let names: Set<string> | undefined;
  for (const v of connectionValues) for (const t of v.split(',')) {
    const n = t.trim().toLowerCase();
    // Most Connection values name only what is hop-by-hop anyway (keep-alive): the shared set, no copy, then.
    if (n && !HOP_BY_HOP.has(n)) (names ??= new Set(HOP_BY_HOP)).add(n);
  }
  return names ?? HOP_BY_HOP;
}

/**
 * Node's rawHeaders (name, value, name, value, …) to end-to-end field lines: names
 * lowercased, hop-by-hop, Proxy-* and `drop`-matched fields removed, order and repeats kept.
 */
export function endToEndFields(raw: readonly string[], drop?: (lowerName: string) => boolean): FieldLine[] {
  const connection: string[] = [];
  for (let i = 0; i < raw.length; i += 2) if (raw[i]!.toLowerCase() === 'connection') connection.push(raw[i + 1]!);
  const skip = hopByHopNames(connection);
  const out: FieldLine[] = [];
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!.toLowerCase();
    if (skip.has(name) || name.startsWith('proxy-') || (drop && drop(name))) continue;
    out.push([name, raw[i + 1]!]);
  }
  return out;
}

/**
 * undici's response headers (record of string | string[]) to field lines, hop-by-hop and every
 * Proxy-* field removed (Proxy-Authentication-Info, Proxy-Status… as well as the hop-by-hop
 * Proxy-Authenticate): through the outer, itself a proxy, the client would take them for its own.
 */
export function fieldsFromRecord(headers: Record<string, string | string[] | undefined>, drop?: (lowerName: string) => boolean): FieldLine[] {
  const conn = headers['connection'];
  const skip = hopByHopNames(conn === undefined ? [] : Array.isArray(conn) ? conn : [conn]);
  const out: FieldLine[] = [];
  for (const [k, v] of Object.entries(headers)) {
    const name = k.toLowerCase();
    if (v === undefined || skip.has(name) || name.startsWith('proxy-') || (drop && drop(name))) continue;
    if (Array.isArray(v)) for (const x of v) out.push([name, x]);
    else out.push([name, v]);
  }
  return out;
}

/** Field lines to the flat [name, value, …] array that node's writeHead and undici accept. */
export function flatFields(fields: readonly FieldLine[]): string[] {
  const out: string[] = [];
  for (const [n, v] of fields) out.push(n, v);
  return out;
}

/** A declared Content-Length (a string of 1–15 digits), or Infinity when there is none or it is not one. */
export function declaredLength(value: string | string[] | undefined): number {
  return typeof value === 'string' && /^\d{1,15}$/.test(value) ? Number(value) : Infinity;
}

export function fieldValue(fields: readonly FieldLine[], name: string): string | undefined {
  for (const [n, v] of fields) if (n === name) return v;
  return undefined;
}

/** Headers every envelope carries so that no intermediary keeps a copy (patent 0064; RFC 9111 §5.2.2.5). */
export const ENVELOPE_NO_STORE = 'no-store, private';

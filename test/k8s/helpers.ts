/**
 * Shared by the Kubernetes tests: fixture paths, YAML stream parsing, an RFC 6902 applier
 * (only what the webhook emits and a little more: add, remove, replace, test), and
 * `stripInjected`, which removes exactly what injection adds so the rest can be compared.
 */
import { parseAllDocuments } from 'yaml';
import { fileURLToPath } from 'node:url';
import { INJECTED_NAMES, YAML_OPTIONS, type Json } from '../../k8s/index.ts';

/** Manifests navigated loosely in assertions (their shape is what the assertions check). */
export type Loose = Record<string, any>;

export const FIXTURES = fileURLToPath(new URL('./fixtures/', import.meta.url));

/** Every document of a YAML stream as plain values (null for empty ones); throws on errors. */
export function parseStream(text: string): Json[] {
  return parseAllDocuments(text, YAML_OPTIONS).map((d, i) => {
    if (d.errors.length) throw new Error(`document ${i + 1}: ${d.errors[0]!.message}`);
    return d.toJS() as Json;
  });
}

const isObj = (v: unknown): v is Record<string, Json> => typeof v === 'object' && v !== null && !Array.isArray(v);
const INJECTED_ENTRIES = new Set<string>([...INJECTED_NAMES.containers, ...INJECTED_NAMES.volumes]);
const INJECTED_KEYS = new Set<string>([...INJECTED_NAMES.annotations, ...INJECTED_NAMES.podSecurityContext]);

/**
 * `out` with what injection added removed, using `inp` (the input) to tell added from
 * pre-existing: list entries named like a sidecar part that the input lacked, marker and role
 * annotations the input lacked, and maps or lists that became empty and did not exist before.
 */
export function stripInjected(out: Json | undefined, inp: Json | undefined): Json | undefined {
  if (Array.isArray(out)) {
    const before = new Set(Array.isArray(inp) ? inp.map((x) => (isObj(x) ? x.name : undefined)) : []);
    const kept = out.filter((x) => !(isObj(x) && typeof x.name === 'string' && INJECTED_ENTRIES.has(x.name) && !before.has(x.name)));
    return kept.map((x, i) => stripInjected(x, Array.isArray(inp) ? inp[i] : undefined) as Json);
  }
  if (isObj(out)) {
    const res: Record<string, Json> = {};
    for (const [k, v] of Object.entries(out)) {
      const had = isObj(inp) && Object.prototype.hasOwnProperty.call(inp, k);
      if (!had && INJECTED_KEYS.has(k)) continue;
      const s = stripInjected(v, had ? (inp as Record<string, Json>)[k] : undefined);
      const empty = (Array.isArray(s) && s.length === 0) || (isObj(s) && Object.keys(s).length === 0);
      if (!had && empty) continue;
      res[k] = s as Json;
    }
    return res;
  }
  return out;
}

type Op = { op: string; path: string; value?: unknown };

function unescape(seg: string): string {
  return seg.replaceAll('~1', '/').replaceAll('~0', '~');
}

/** A small RFC 6902 applier (add/remove/replace/test); returns a new document, throws on errors. */
export function applyJsonPatch(doc: unknown, ops: readonly Op[]): unknown {
  let root = structuredClone(doc);
  for (const op of ops) {
    if (typeof op.path !== 'string' || (op.path !== '' && !op.path.startsWith('/'))) throw new Error(`bad pointer ${op.path}`);
    const segs = op.path === '' ? [] : op.path.slice(1).split('/').map(unescape);
    if (segs.length === 0) {
      if (op.op === 'add' || op.op === 'replace') root = structuredClone(op.value);
      else throw new Error(`${op.op} on the root`);
      continue;
    }
    let parent: unknown = root;
    for (const s of segs.slice(0, -1)) {
      if (Array.isArray(parent)) {
        if (!/^(0|[1-9]\d*)$/.test(s) || Number(s) >= parent.length) throw new Error(`no element ${s} in ${op.path}`);
        parent = parent[Number(s)];
      } else if (isObj(parent)) {
        if (!Object.prototype.hasOwnProperty.call(parent, s)) throw new Error(`no member ${s} in ${op.path} (RFC 6902 §4.1: the parent must exist)`);
        parent = parent[s];
      } else throw new Error(`${op.path}: parent is not a container`);
    }
    const last = segs[segs.length - 1]!;
    if (Array.isArray(parent)) {
      const idx = last === '-' ? parent.length : Number(last);
      if (last !== '-' && (!/^(0|[1-9]\d*)$/.test(last) || idx > parent.length)) throw new Error(`bad index ${last}`);
      if (op.op === 'add') parent.splice(idx, 0, structuredClone(op.value));
      else if (op.op === 'remove') parent.splice(idx, 1);
      else if (op.op === 'replace') parent[idx] = structuredClone(op.value);
      else if (op.op === 'test') {
        if (JSON.stringify(parent[idx]) !== JSON.stringify(op.value)) throw new Error('test failed');
      } else throw new Error(`unsupported op ${op.op}`);
    } else if (isObj(parent)) {
      const p = parent as Record<string, unknown>;
      if (op.op === 'add') p[last] = structuredClone(op.value);
      else if (op.op === 'remove' || op.op === 'replace') {
        if (!Object.prototype.hasOwnProperty.call(p, last)) throw new Error(`no member ${last}`);
        if (op.op === 'remove') delete p[last];
        else p[last] = structuredClone(op.value);
      } else if (op.op === 'test') {
        if (JSON.stringify(p[last]) !== JSON.stringify(op.value)) throw new Error('test failed');
      } else throw new Error(`unsupported op ${op.op}`);
    } else throw new Error(`${op.path}: parent is not a container`);
  }
  return root;
}

/**
 * Edits (plan.ts) made concrete against the object they apply to: each becomes "add this value
 * at this path" (the parent exists; a missing or null parent map or list is created whole) or
 * "push onto this existing list". One concrete form, two renderings: RFC 6902 JSON Patch for
 * the webhook (`add` with `/-` for a push, RFC 6901 escaping) and YAML Document changes for
 * `sws inject` (document.ts).
 */
import { InjectError } from './errors.ts';
import type { Edit } from './plan.ts';
import { isObject, type Json, type JsonObject, type Path } from './workload.ts';

export type ConcreteEdit = { readonly op: 'add'; readonly path: Path; readonly value: Json } | { readonly op: 'push'; readonly path: Path; readonly value: Json };

/** `value` nested under the keys `rest` (`['a','b'], 1` → `{a: {b: 1}}`). */
function nest(rest: Path, value: Json): Json {
  let v = value;
  for (let i = rest.length - 1; i >= 0; i--) {
    const k = rest[i]!;
    if (typeof k === 'number') throw new InjectError('invalid', `cannot create list index ${k}`);
    v = { [k]: v };
  }
  return v;
}

function child(cur: Json | undefined, seg: string | number): Json | undefined {
  if (typeof seg === 'number') return Array.isArray(cur) ? cur[seg] : undefined;
  return isObject(cur) && Object.prototype.hasOwnProperty.call(cur, seg) ? cur[seg] : undefined;
}

function put(parent: Json | undefined, seg: string | number, value: Json): void {
  if (typeof seg === 'number' && Array.isArray(parent)) parent[seg] = value;
  else if (typeof seg === 'string' && isObject(parent)) (parent as JsonObject)[seg] = value;
  else throw new InjectError('invalid', `cannot set ${String(seg)}: its parent is not a mapping`);
}

/**
 * Resolves `edits` against `original` (not modified): works on a copy so later edits see the
 * maps and lists earlier ones created.
 */
export function concretize(original: Json, edits: readonly Edit[]): ConcreteEdit[] {
  const state = structuredClone(original);
  const out: ConcreteEdit[] = [];
  for (const e of edits) {
    const target = e.op === 'set' ? e.value : [e.value];
    let cur: Json | undefined = state;
    let done = false;
    // Find the first missing (or null) level; everything below it is created in one add.
    for (let i = 0; i < e.path.length; i++) {
      const seg = e.path[i]!;
      const next = child(cur, seg);
      const last = i === e.path.length - 1;
      if (next === undefined || next === null) {
        const value = nest(e.path.slice(i + 1), target);
        put(cur, seg, structuredClone(value));
        out.push({ op: 'add', path: e.path.slice(0, i + 1), value });
        done = true;
        break;
      }
      if (last) {
        if (e.op === 'set') {
          put(cur, seg, structuredClone(e.value));
          out.push({ op: 'add', path: e.path, value: e.value });
        } else {
          if (!Array.isArray(next)) throw new InjectError('invalid', `${e.path.join('.')} must be a list`);
          next.push(structuredClone(e.value));
          out.push({ op: 'push', path: e.path, value: e.value });
        }
        done = true;
        break;
      }
      if (typeof next !== 'object') throw new InjectError('invalid', `${e.path.slice(0, i + 1).join('.')} must be a mapping or list`);
      cur = next;
    }
    if (!done) throw new InjectError('invalid', 'an edit with an empty path');
  }
  return out;
}

/** RFC 6901: `~` → `~0`, `/` → `~1`. */
export function jsonPointer(path: Path): string {
  return path.map((s) => '/' + String(s).replaceAll('~', '~0').replaceAll('/', '~1')).join('');
}

export interface JsonPatchOp {
  readonly op: 'add';
  readonly path: string;
  readonly value: Json;
}

/** RFC 6902 operations for `edits` applied to `original`. */
export function toJsonPatch(original: Json, edits: readonly Edit[]): JsonPatchOp[] {
  return concretize(original, edits).map((c) => ({ op: 'add', path: c.op === 'push' ? `${jsonPointer(c.path)}/-` : jsonPointer(c.path), value: c.value }));
}

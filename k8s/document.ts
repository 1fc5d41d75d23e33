/**
 * Applies concrete edits to a `yaml` Document in place, through its node API, so the comments,
 * key order and scalar styles of everything else survive; new nodes are built with
 * `createNode` (block style), never from text.
 */
import { isMap, isSeq, type Document } from 'yaml';
import { InjectError } from './errors.ts';
import type { ConcreteEdit } from './edits.ts';

export function applyToDocument(doc: Document, edits: readonly ConcreteEdit[]): void {
  for (const e of edits) {
    if (e.op === 'add') {
      const node = doc.createNode(e.value);
      const parent = e.path.length > 1 ? doc.getIn(e.path.slice(0, -1), true) : doc.contents;
      // A new `metadata` goes first, where Kubernetes manifests keep it.
      if (e.path[e.path.length - 1] === 'metadata' && isMap(parent) && !parent.has('metadata')) {
        parent.items.unshift(doc.createPair('metadata', node));
      } else {
        doc.setIn(e.path, node);
      }
      continue;
    }
    const seq = doc.getIn(e.path, true);
    if (!isSeq(seq)) throw new InjectError('invalid', `${e.path.join('.')} must be a list`);
    // `volumes: []` is a flow sequence; block maps read better in a block list.
    if (seq.items.length === 0) seq.flow = false;
    seq.items.push(doc.createNode(e.value));
  }
}

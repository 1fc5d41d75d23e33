/**
 * `sws inject` on a YAML stream: every document is planned (plan.ts); a document that gains a
 * sidecar is changed through the YAML node API and printed again, every other document is
 * copied byte for byte from the input. Parsing follows YAML 1.1, as Kubernetes' own YAML reader
 * does (`0644` stays an octal number, `on` a boolean), and keeps scalar styles as written.
 * Any error (invalid YAML, bad annotation, conflict, injected with other settings) fails the
 * whole stream, naming the source, the document and where possible the line: no partial output.
 */
import { LineCounter, parseAllDocuments, type Document, type Tags } from 'yaml';
import { ROLE_ANNOTATION, type SidecarRole } from './annotations.ts';
import { applyToDocument } from './document.ts';
import { concretize } from './edits.ts';
import { InjectError } from './errors.ts';
import { editsOf, planInjection, type ObjectPlan } from './plan.ts';
import type { InjectSettings } from './settings.ts';
import { displayName, isObject, type Json } from './workload.ts';

export type DocumentResult = 'injected' | 'unchanged' | 'skipped' | 'passed-through';

export interface DocumentReport {
  /** 1-based position of the document in its source. */
  readonly index: number;
  /** `Deployment/web`, or `List/(unnamed) Deployment/web` for a List item. */
  readonly display: string;
  readonly result: DocumentResult;
  readonly role?: SidecarRole;
  readonly why?: string;
}

export interface InjectStreamResult {
  readonly text: string;
  readonly reports: readonly DocumentReport[];
  /** Notes for a person (e.g. a role annotation on a kind sws does not handle). */
  readonly warnings: readonly string[];
}

/**
 * The `yaml` library's YAML 1.1 schema, brought in line with what Kubernetes' reader (go-yaml v2
 * through sigs.k8s.io/yaml) makes of two plain scalars, so a re-printed document keeps them:
 * - a lone `.` (or `-.`, `+.`) matches the library's float pattern and would be read as NaN and
 *   printed as `.nan`; managedFields (`kubectl get -o yaml --show-managed-fields`) are full of
 *   `.: {}` keys. A float needs a digit.
 * - an unquoted timestamp would be read as a Date and printed without its `Z`; go-yaml hands it
 *   to Kubernetes as the string it is, so it stays a string here.
 */
const FLOAT_TAG = 'tag:yaml.org,2002:float';
const FLOAT_NEEDS_A_DIGIT = /^[-+]?(?:[0-9][0-9_]*\.[0-9_]*|\.[0-9][0-9_]*)$/;
function kubernetesTags(tags: Tags): Tags {
  return tags
    .filter((t) => typeof t === 'string' || t.tag !== 'tag:yaml.org,2002:timestamp')
    .map((t) => (typeof t !== 'string' && t.tag === FLOAT_TAG && !t.format && 'test' in t && t.test?.test('.') ? { ...t, test: FLOAT_NEEDS_A_DIGIT } : t));
}

export const YAML_OPTIONS = { version: '1.1', prettyErrors: true, uniqueKeys: true, customTags: kubernetesTags } as const;

/** Whether block sequences in `text` are indented under their key (`key:\n  - a`) or not (`key:\n- a`). */
export function detectIndentSeq(text: string): boolean {
  const m = /^( *)[^\s#-][^\n#]*:[ \t]*(?:#[^\n]*)?\n(?:[ \t]*(?:#[^\n]*)?\n)*( *)- /m.exec(text);
  return m ? m[2]!.length > m[1]!.length : true;
}

/** Whether flow collections are written `{ a: 1 }` (padded) or `{a: 1}`. */
export function detectFlowPadding(text: string): boolean {
  const m = /:[ \t]+[{[]([ \t]?)[^\s\]}]/.exec(text);
  return m ? m[1] !== '' : true;
}

function where(source: string, index: number): string {
  return `${source}: document ${index}`;
}

function reportsOf(plan: ObjectPlan, index: number, obj: unknown): { reports: DocumentReport[]; warnings: string[] } {
  if (plan.kind === 'unsupported') {
    const ann = isObject(obj) && isObject(obj.metadata) && isObject(obj.metadata.annotations) ? obj.metadata.annotations[ROLE_ANNOTATION] : undefined;
    const warnings = ann !== undefined ? [`document ${index} (${displayName(obj)}) asks for a sidecar (${ROLE_ANNOTATION}) but ${plan.why}; passed through unchanged`] : [];
    return { reports: [{ index, display: displayName(obj), result: 'passed-through', why: plan.why }], warnings };
  }
  const reports: DocumentReport[] = [];
  const warnings: string[] = [];
  for (const { target, outcome } of plan.targets) {
    switch (outcome.kind) {
      case 'skip':
        reports.push({ index, display: target.display, result: 'skipped', why: outcome.why });
        break;
      case 'unchanged':
        reports.push({ index, display: target.display, result: 'unchanged', role: outcome.role, why: 'already injected with these settings' });
        break;
      case 'inject':
        reports.push({ index, display: target.display, result: 'injected', role: outcome.role });
        warnings.push(...outcome.warnings.map((w) => `document ${index}: ${w}`));
        break;
      case 'injected-differently':
        throw new InjectError(
          'already-injected',
          `${target.display} was injected before with different settings (marker ${outcome.found}; these settings give ${outcome.expected}): ` +
            'inject the original manifest, or use the flags it was injected with',
        );
    }
  }
  if (plan.targets.length === 0) reports.push({ index, display: displayName(obj), result: 'skipped', why: 'no pod templates' });
  return { reports, warnings };
}

function plainError(e: { message: string }): string {
  return e.message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '');
}

/** Injects every document of `text` (named `source` in messages). */
export function injectYamlStream(text: string, settings: InjectSettings, source = '<stdin>'): InjectStreamResult {
  const lineCounter = new LineCounter();
  const docs = parseAllDocuments(text, { ...YAML_OPTIONS, lineCounter }) as Document[] | { empty: true };
  if (!Array.isArray(docs) || docs.length === 0) return { text, reports: [], warnings: [] };

  const reports: DocumentReport[] = [];
  const warnings: string[] = [];
  const chunks: string[] = [];

  docs.forEach((doc, i) => {
    const index = i + 1;
    // A document's text runs from its `---` to the next one's (comments between belong to it).
    const start = i === 0 ? 0 : (doc.range?.[0] ?? 0);
    const end = i + 1 < docs.length ? (docs[i + 1]!.range?.[0] ?? text.length) : text.length;
    const verbatim = text.slice(start, end);
    const err = doc.errors[0];
    if (err) {
      const pos = err.linePos?.[0];
      throw new InjectError('invalid', `${where(source, index)}: invalid YAML${pos ? ` at line ${pos.line}, column ${pos.col}` : ''}: ${plainError(err)}`);
    }
    if (doc.contents === null) {
      chunks.push(verbatim);
      return;
    }
    let obj: Json;
    try {
      obj = doc.toJS({ maxAliasCount: 1000 }) as Json;
    } catch (e) {
      throw new InjectError('invalid', `${where(source, index)}: ${e instanceof Error ? e.message : 'cannot be read'}`);
    }
    if (obj === null) {
      chunks.push(verbatim);
      return;
    }
    let plan: ObjectPlan;
    try {
      plan = planInjection(obj, settings);
      const r = reportsOf(plan, index, obj);
      reports.push(...r.reports);
      warnings.push(...r.warnings);
    } catch (e) {
      if (e instanceof InjectError) throw new InjectError(e.reason, `${where(source, index)}: ${e.message}`);
      throw e;
    }
    const edits = editsOf(plan);
    if (edits.length === 0) {
      chunks.push(verbatim);
      return;
    }
    applyToDocument(doc, concretize(obj, edits));
    const out = doc.toString({ lineWidth: 0, indentSeq: detectIndentSeq(verbatim), flowCollectionPadding: detectFlowPadding(verbatim) });
    assertInjected(out, settings, where(source, index));
    chunks.push(out);
  });
  return { text: joinChunks(chunks), reports, warnings };
}

/** Our own output must parse and plan as "nothing to do": never print a broken manifest. */
function assertInjected(out: string, settings: InjectSettings, at: string): void {
  const again = parseAllDocuments(out, YAML_OPTIONS) as Document[];
  const doc = again.find((d) => d.contents !== null);
  if (!doc || doc.errors.length > 0 || again.length > 1) throw new Error(`${at}: internal error: the injected document does not parse again`);
  if (editsOf(planInjection(doc.toJS(), settings)).length > 0) throw new Error(`${at}: internal error: injecting the result again would change it`);
}

function joinChunks(chunks: readonly string[]): string {
  let out = '';
  for (const c of chunks) {
    if (out !== '' && !out.endsWith('\n')) out += '\n';
    out += c;
  }
  return out;
}

/** Concatenates the outputs of several sources into one stream (`---` between them). */
export function joinStreams(texts: readonly string[]): string {
  let out = '';
  for (const t of texts) {
    if (t.trim() === '') continue;
    if (out !== '') {
      if (!out.endsWith('\n')) out += '\n';
      if (!/^---(?:[ \t]|\r?\n|$)/.test(t)) out += '---\n';
    }
    out += t;
  }
  return out;
}

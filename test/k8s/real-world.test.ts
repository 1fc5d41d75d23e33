/**
 * `sws inject` on manifests shaped like what operators actually pipe into it (written from
 * knowledge of the real tools' output, not fetched):
 *
 * - kubectl-get-deployment: `kubectl get deployment wiki -o yaml --show-managed-fields`: server
 *   fields (uid, resourceVersion, generation, creationTimestamp), managedFields full of `.: {}`
 *   keys, the revision and last-applied-configuration annotations, defaulted spec fields, a
 *   `status:` block, alphabetical keys, unindented sequences; `sws.dev/role` on the pod template.
 * - helm-template-statefulset: `helm template` output: every document opens with `---` and a
 *   `# Source:` comment, chart labels, a `{{ toYaml }}`-style `securityContext:\n  {}`; only the
 *   StatefulSet (volumeClaimTemplates, an init container) asks for an outer, on the workload.
 * - kubectl-get-list: `kubectl get cm,deploy,svc -n shop -o yaml`: a `v1 List`; one Deployment
 *   item asks for an inner, the other items stay as they are. Lists are supported (docs, workload.ts).
 *
 * The *.expected.yaml files were made by the binary (`sws inject --image registry.example/sws:golden
 * FILE`) and reviewed by hand; the generic golden / round-trip / lock-down checks for them run in
 * inject.test.ts like every fixture. Here: the binary reproduces them, and what each shape must keep.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { defaultInjectSettings, injectYamlStream, parseInjectSettings, INJECTED_ANNOTATION, type Json } from '../../k8s/index.ts';
import { expectOk, sws } from '../cli/helpers.ts';
import { FIXTURES, parseStream, stripInjected, type Loose } from './helpers.ts';

const IMAGE = 'registry.example/sws:golden';
const settings = parseInjectSettings({ image: IMAGE }, defaultInjectSettings('0.0.0'));
const REAL = ['kubectl-get-deployment', 'helm-template-statefulset', 'kubectl-get-list'] as const;

function load(name: string): { input: string; expected: string; path: string } {
  const path = join(FIXTURES, `${name}.in.yaml`);
  return { path, input: readFileSync(path, 'utf8'), expected: readFileSync(join(FIXTURES, `${name}.expected.yaml`), 'utf8') };
}

/** The input lines a line diff (longest common subsequence) says were removed or rewritten. */
function removedLines(input: string, output: string): string[] {
  const a = input.split('\n');
  const b = output.split('\n');
  const n = a.length;
  const m = b.length;
  const lcs: Uint16Array[] = Array.from({ length: n + 1 }, () => new Uint16Array(m + 1));
  for (let i = n - 1; i >= 0; i--) for (let j = m - 1; j >= 0; j--) lcs[i]![j] = a[i] === b[j] ? lcs[i + 1]![j + 1]! + 1 : Math.max(lcs[i + 1]![j]!, lcs[i]![j + 1]!);
  const removed: string[] = [];
  let i = 0;
  let j = 0;
  while (i < n && j < m) {
    if (a[i] === b[j]) {
      i++;
      j++;
    } else if (lcs[i + 1]![j]! >= lcs[i]![j + 1]!) removed.push(a[i++]!);
    else j++;
  }
  while (i < n) removed.push(a[i++]!);
  return removed;
}

for (const name of REAL) {
  test(`real-world ${name}: the binary gives the golden output; a second pass through the binary changes nothing`, () => {
    const { path, expected } = load(name);
    const r = expectOk(sws(['inject', '--image', IMAGE, path]));
    assert.equal(r.stdout, expected);
    const again = expectOk(sws(['inject', '--image', IMAGE], { input: expected }));
    assert.equal(again.stdout, expected, 'injecting the output again changed it');
    assert.match(again.stderr, /already injected \((inner|outer)\), unchanged/);
    assert.doesNotMatch(again.stderr, /sidecar injected|warning/);
  });

  test(`real-world ${name}: every output document parses (YAML 1.1 as Kubernetes, and the yaml package's defaults), only lines were added, nothing else changed`, () => {
    const { input, expected } = load(name);
    assert.equal(injectYamlStream(expected, settings).text, expected, 'idempotent in-process too');
    for (const [label, docs] of [
      ['default', parseAllDocuments(expected)],
      ['1.1', parseAllDocuments(expected, { version: '1.1' })],
    ] as const) {
      assert.ok(Array.isArray(docs), `${label}: a stream`);
      for (const d of docs) {
        assert.deepEqual(d.errors, [], `${label}: parse errors`);
        assert.deepEqual(d.warnings, [], `${label}: parse warnings`);
      }
    }
    const before = parseStream(input);
    const after = parseStream(expected);
    assert.equal(after.length, before.length);
    before.forEach((doc, i) => assert.deepEqual(stripInjected(after[i], doc), doc, `document ${i + 1}: a field other than the sidecar's changed`));
    // Textually: a pure insertion, except where the yaml printer normalizes a flow collection.
    const removed = removedLines(input, expected);
    if (name === 'helm-template-statefulset') {
      assert.deepEqual(removed, ['          securityContext:', '            {}']);
      assert.ok(expected.includes('\n        - name: branch-gateway\n          securityContext: {}\n'), 'rewritten as the same empty map');
    } else assert.deepEqual(removed, [], 'input lines were rewritten or dropped');
  });
}

test('kubectl get deployment: managedFields (`.: {}` keys), status, server fields, annotations and key order survive; only the marker joins the template', () => {
  const { input, expected } = load('kubectl-get-deployment');
  const inp = parseStream(input)[0] as Loose;
  const out = parseStream(expected)[0] as Loose;
  const dots = (t: string) => t.split('\n').filter((l) => /^ *\.: \{\}$/.test(l)).length;
  assert.equal(dots(input), 21);
  assert.equal(dots(expected), dots(input), 'a `.: {}` managedFields key was rewritten');
  assert.doesNotMatch(expected, /\.nan|NaN/);
  assert.deepEqual(out.metadata.managedFields, inp.metadata.managedFields);
  assert.ok(Object.keys(out.metadata.managedFields[0].fieldsV1['f:metadata']['f:annotations']).includes('.'));
  assert.deepEqual(out.status, inp.status);
  assert.equal(out.status.conditions[0].status, 'True', '"True" stays a string');
  assert.deepEqual(Object.keys(out), ['apiVersion', 'kind', 'metadata', 'spec', 'status']);
  assert.deepEqual(Object.keys(out.metadata), Object.keys(inp.metadata));
  assert.deepEqual(out.metadata, inp.metadata, 'the workload metadata is untouched (the role sits on the template)');
  for (const k of ['uid', 'resourceVersion', 'generation', 'creationTimestamp']) assert.equal(out.metadata[k], inp.metadata[k], k);
  assert.equal(out.metadata.creationTimestamp, '2024-05-14T09:12:33Z');
  const applied = out.metadata.annotations['kubectl.kubernetes.io/last-applied-configuration'];
  assert.equal(applied, inp.metadata.annotations['kubectl.kubernetes.io/last-applied-configuration']);
  assert.equal(JSON.parse(applied).metadata.name, 'wiki', 'still one line of JSON');
  assert.equal(out.metadata.annotations['deployment.kubernetes.io/revision'], '3');
  const tpl = out.spec.template;
  assert.deepEqual(tpl.metadata.annotations, { 'sws.dev/role': 'inner', [INJECTED_ANNOTATION]: tpl.metadata.annotations[INJECTED_ANNOTATION] });
  assert.equal(tpl.metadata.creationTimestamp, null);
  assert.deepEqual(tpl.spec.securityContext, {}, 'no fsGroup without a PVC');
  assert.deepEqual(
    tpl.spec.containers.map((c: Loose) => c.name),
    ['nginx', 'sws-inner'],
  );
  assert.deepEqual(
    tpl.spec.initContainers.map((c: Loose) => c.name),
    ['sws-init'],
  );
  assert.deepEqual(
    tpl.spec.volumes.map((v: Loose) => v.name),
    ['conf', 'sws-data', 'sws-tmp', 'sws-config'],
  );
  assert.equal(tpl.spec.volumes[0].configMap.defaultMode, 420);
  for (const k of ['progressDeadlineSeconds', 'replicas', 'revisionHistoryLimit', 'selector', 'strategy']) assert.deepEqual(out.spec[k], inp.spec[k], k);
});

test('helm template: the untouched documents are byte-identical, every `# Source:` comment stays, the role moves onto the pod template', () => {
  const { input, expected } = load('helm-template-statefulset');
  const chunks = (t: string) => t.split(/^(?=---$)/m);
  const [inChunks, outChunks] = [chunks(input), chunks(expected)];
  assert.equal(inChunks.length, 4);
  assert.equal(outChunks.length, 4);
  for (const i of [0, 1, 2]) assert.equal(outChunks[i], inChunks[i], `document ${i + 1} (not a workload that asks) changed`);
  assert.ok(outChunks[3]!.startsWith('---\n# Source: branch-gateway/templates/statefulset.yaml\napiVersion: apps/v1\nkind: StatefulSet\n'));
  assert.deepEqual(
    expected.split('\n').filter((l) => l.startsWith('# Source:')),
    input.split('\n').filter((l) => l.startsWith('# Source:')),
  );
  assert.ok(expected.includes('    # everything for the intranet goes through the local sws outer\n'), 'a comment inside a block scalar');

  const inp = parseStream(input) as Loose[];
  const out = parseStream(expected) as Loose[];
  assert.deepEqual(
    out.map((d) => d.kind),
    ['ServiceAccount', 'ConfigMap', 'Service', 'StatefulSet'],
  );
  const [sts, stsIn] = [out[3]!, inp[3]!];
  assert.deepEqual(sts.metadata, stsIn.metadata, 'the workload keeps its labels and its role annotation');
  assert.deepEqual(sts.spec.volumeClaimTemplates, stsIn.spec.volumeClaimTemplates);
  assert.equal(sts.metadata.labels['app.kubernetes.io/version'], '2.11.0', 'a quoted version stays a string');
  const ann = sts.spec.template.metadata.annotations;
  assert.deepEqual(Object.keys(ann), ['checksum/config', INJECTED_ANNOTATION, 'sws.dev/role']);
  assert.equal(ann['sws.dev/role'], 'outer');
  assert.equal(ann['checksum/config'], stsIn.spec.template.metadata.annotations['checksum/config']);
  const pod = sts.spec.template.spec;
  assert.deepEqual(
    pod.initContainers.map((c: Loose) => c.name),
    ['init-cache', 'sws-init'],
    'the chart init container runs first, as before',
  );
  assert.deepEqual(
    pod.containers.map((c: Loose) => [c.name, c.restartPolicy ?? null]),
    [
      ['branch-gateway', null],
      ['sws-outer', null],
    ],
  );
  assert.deepEqual(pod.securityContext, { fsGroup: 31 }, 'the chart fsGroup is kept (no PVC data dir: nothing to add)');
  assert.deepEqual(
    pod.volumes.map((v: Loose) => v.name),
    ['config', 'sws-data', 'sws-tmp', 'sws-config'],
  );
  assert.equal(pod.volumes[3].configMap.name, 'sws-outer-config');
  assert.ok(expected.includes('\n        - name: sws-outer\n'), 'indented sequences, as the chart writes them');

  const r = injectYamlStream(input, settings, 'helm.yaml');
  assert.deepEqual(
    r.reports.map((x) => [x.display, x.result]),
    [
      ['ServiceAccount/gw-branch-gateway', 'passed-through'],
      ['ConfigMap/gw-branch-gateway', 'passed-through'],
      ['Service/gw-branch-gateway', 'passed-through'],
      ['StatefulSet/gw-branch-gateway', 'injected'],
    ],
  );
  assert.deepEqual(r.warnings, []);
});

test('kubectl get -o yaml List: supported; the annotated Deployment item is injected, the other items and the List envelope stay', () => {
  const { input, expected } = load('kubectl-get-list');
  const inp = parseStream(input)[0] as Loose;
  const out = parseStream(expected)[0] as Loose;
  assert.equal(out.kind, 'List');
  assert.deepEqual(Object.keys(out), ['apiVersion', 'items', 'kind', 'metadata']);
  assert.deepEqual(out.metadata, { resourceVersion: '' });
  assert.deepEqual(
    out.items.map((x: Loose) => `${x.kind}/${x.metadata.name}`),
    ['ConfigMap/shop-api-env', 'Deployment/shop-api', 'Deployment/shop-web', 'Service/shop-api'],
  );
  for (const i of [0, 2, 3]) assert.deepEqual(out.items[i], inp.items[i], `item ${i} changed`);
  const api = out.items[1];
  assert.deepEqual(api.metadata, inp.items[1].metadata);
  assert.deepEqual(api.status, inp.items[1].status);
  assert.deepEqual(api.spec.template.metadata, {
    creationTimestamp: null,
    labels: { app: 'shop-api' },
    annotations: { [INJECTED_ANNOTATION]: api.spec.template.metadata.annotations[INJECTED_ANNOTATION], 'sws.dev/role': 'inner' },
  });
  assert.deepEqual(
    api.spec.template.spec.containers.map((c: Loose) => c.name),
    ['api', 'sws-inner'],
  );
  assert.ok(!('initContainers' in out.items[2].spec.template.spec));

  const r = injectYamlStream(input, settings, 'list.yaml');
  assert.deepEqual(
    r.reports.map((x) => [x.display, x.result]),
    [
      ['Deployment/shop-api', 'injected'],
      ['Deployment/shop-web', 'skipped'],
    ],
  );
  assert.deepEqual(r.warnings, []);
  // The same settings give the same marker whichever shape the workload came in.
  const single = (parseStream(load('kubectl-get-deployment').expected)[0] as Loose).spec.template.metadata.annotations[INJECTED_ANNOTATION];
  assert.equal(api.spec.template.metadata.annotations[INJECTED_ANNOTATION], single);
});

test('regression: `.` keys and unquoted timestamps in an injected document are printed as written, not as .nan or a date without its Z', () => {
  const input = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  annotations:
    sws.dev/role: inner
    example.com/deployed-at: 2024-05-14T09:12:33Z
    example.com/day: 2024-05-14
  managedFields:
  - fieldsV1:
      f:metadata:
        .: {}
        -.: {}
spec:
  template:
    spec:
      containers:
      - name: web
        image: nginx
        args: [--ratio=.5, "1.50"]
`;
  const out = injectYamlStream(input, settings).text;
  for (const line of ['    example.com/deployed-at: 2024-05-14T09:12:33Z', '    example.com/day: 2024-05-14', '        .: {}', '        -.: {}', '        args: [--ratio=.5, "1.50"]']) {
    assert.ok(out.includes(`${line}\n`), `rewritten: ${line}`);
  }
  const doc = parseStream(out)[0] as Loose;
  assert.equal(doc.metadata.annotations['example.com/deployed-at'], '2024-05-14T09:12:33Z', 'a string, as go-yaml hands it to Kubernetes');
  assert.deepEqual(Object.keys(doc.metadata.managedFields[0].fieldsV1['f:metadata']), ['.', '-.']);
  assert.deepEqual(removedLines(input, out), []);
  // Floats, octal and 1.1 booleans keep their YAML 1.1 meaning.
  const nums = parseStream('a: 1.5\nb: .5\nc: 5.\nd: 0644\ne: on\nf: -.5e3\n')[0] as Record<string, Json>;
  assert.deepEqual(nums, { a: 1.5, b: 0.5, c: 5, d: 420, e: true, f: -500 });
});

/**
 * A PVC data dir (`--data-volume pvc:CLAIM` / annotation `sws.dev/data-volume`): injection makes
 * the volume writable for the non-root sidecar by setting the pod's `securityContext.fsGroup`
 * to the sidecar's group when the pod has none (never overriding one; a different one is
 * reported), and warns when several pods would share the one claim (replicas > 1, a rolling
 * update, a DaemonSet), since a data dir belongs to one sidecar process (docs/SCALING.md).
 * The same through `sws inject` (stderr) and the webhook (AdmissionReview `warnings`).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { admit, defaultInjectSettings, injectYamlStream, parseInjectSettings, type InjectFlags, type InjectSettings } from '../../k8s/index.ts';
import { expectOk, sws } from '../cli/helpers.ts';
import { applyJsonPatch, parseStream, type Loose } from './helpers.ts';

const settings = (flags: InjectFlags = {}): InjectSettings => parseInjectSettings({ image: 'registry.example/sws:pvc', ...flags }, defaultInjectSettings('0.0.0'));

/** A Deployment asking for an inner on a PVC: one replica, Recreate (what docs/KUBERNETES.md asks for). */
const deployment = (opts: { replicas?: number; strategy?: string | null; podSecurityContext?: string; dataVolume?: string; role?: string } = {}) => `apiVersion: apps/v1
kind: Deployment
metadata:
  name: wiki
spec:
  replicas: ${opts.replicas ?? 1}
${opts.strategy === null ? '' : `  strategy:\n    type: ${opts.strategy ?? 'Recreate'}\n`}  template:
    metadata:
      annotations:
        sws.dev/role: ${opts.role ?? 'inner'}
        sws.dev/data-volume: ${opts.dataVolume ?? 'pvc:wiki-sws'}
    spec:
${opts.podSecurityContext ?? ''}      containers:
      - name: wiki
        image: nginx
`;

function inject(text: string, s = settings()) {
  const r = injectYamlStream(text, s, 'w.yaml');
  const pod = (parseStream(r.text)[0] as Loose).spec.template.spec;
  // Our output must be stable: injecting it again changes nothing.
  assert.equal(injectYamlStream(r.text, s, 'again').text, r.text);
  return { pod, warnings: r.warnings, text: r.text };
}

test('a PVC data dir on a pod without fsGroup gets fsGroup = the sidecar group (also with --run-as-user); no warnings for 1 replica + Recreate', () => {
  const a = inject(deployment());
  assert.deepEqual(a.pod.securityContext, { fsGroup: 10001 });
  assert.deepEqual(a.warnings, []);
  const sidecar = a.pod.containers.find((c: Loose) => c.name === 'sws-inner');
  assert.equal(sidecar.securityContext.runAsGroup, a.pod.securityContext.fsGroup, 'fsGroup is the group the sidecar runs as');

  const b = inject(deployment(), settings({ runAsUser: '20002' }));
  assert.deepEqual(b.pod.securityContext, { fsGroup: 20002 });

  // Other pod-level settings are kept; fsGroup joins them.
  const c = inject(deployment({ podSecurityContext: '      securityContext:\n        runAsNonRoot: true\n' }));
  assert.deepEqual(c.pod.securityContext, { runAsNonRoot: true, fsGroup: 10001 });
  assert.deepEqual(c.warnings, []);
});

test('an existing fsGroup is never overridden: the same one is silent, another one is kept with a warning', () => {
  const same = inject(deployment({ podSecurityContext: '      securityContext:\n        fsGroup: 10001\n' }));
  assert.deepEqual(same.pod.securityContext, { fsGroup: 10001 });
  assert.deepEqual(same.warnings, []);

  const other = inject(deployment({ podSecurityContext: '      securityContext:\n        fsGroup: 2000\n' }));
  assert.deepEqual(other.pod.securityContext, { fsGroup: 2000 });
  assert.equal(other.warnings.length, 1);
  assert.match(other.warnings[0]!, /^document 1: Deployment\/wiki: the pod's securityContext\.fsGroup is 2000, not the sidecar's group 10001; kept/);
  assert.match(other.warnings[0]!, /pvc:wiki-sws/);
});

test('an emptyDir data dir needs no fsGroup: the pod is left without one', () => {
  const r = inject(deployment({ dataVolume: 'emptyDir' }));
  assert.equal(r.pod.securityContext, undefined);
  assert.deepEqual(r.warnings, []);
});

test('several pods on one PVC data dir warn: replicas > 1 (inner and outer), a rolling update, a DaemonSet', () => {
  const many = inject(deployment({ replicas: 3 }));
  assert.equal(many.warnings.length, 1, many.warnings.join('\n'));
  assert.match(many.warnings[0]!, /Deployment\/wiki: 3 replicas share the data volume pvc:wiki-sws.*run 1 replica/);
  assert.deepEqual(many.pod.securityContext, { fsGroup: 10001 }, 'a warning does not stop the injection');

  const outer = inject(deployment({ replicas: 2, role: 'outer' }));
  assert.match(outer.warnings.join('\n'), /2 replicas share the data volume/);

  const rolling = inject(deployment({ strategy: null }));
  assert.equal(rolling.warnings.length, 1);
  assert.match(rolling.warnings[0]!, /strategy RollingUpdate \(the default\).*use strategy: \{type: Recreate\}/);

  const ds = inject(
    deployment({ strategy: null })
      .replace('kind: Deployment', 'kind: DaemonSet')
      .replace('  replicas: 1\n', ''),
  );
  assert.equal(ds.warnings.length, 1);
  assert.match(ds.warnings[0]!, /DaemonSet\/wiki: a DaemonSet runs a pod on every node/);

  // The same replicas with an emptyDir: every pod has its own data dir, nothing to warn about.
  assert.deepEqual(inject(deployment({ replicas: 3, dataVolume: 'emptyDir', strategy: null })).warnings, []);
});

test('sws inject prints the warnings on stderr and still writes the injected stream', () => {
  const r = expectOk(sws(['inject', '--image', 'registry.example/sws:pvc'], { input: deployment({ replicas: 2 }) }));
  assert.match(r.stderr, /warning: <stdin>: document 1: Deployment\/wiki: 2 replicas share the data volume pvc:wiki-sws/);
  assert.equal((parseStream(r.stdout)[0] as Loose).spec.template.spec.securityContext.fsGroup, 10001);
});

test('webhook: the patch sets fsGroup in the pod\'s (defaulted, empty) securityContext; a different fsGroup is kept and warned about', () => {
  const pod = (securityContext: Record<string, unknown>) => ({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { generateName: 'wiki-', annotations: { 'sws.dev/role': 'inner', 'sws.dev/data-volume': 'pvc:wiki-sws' } },
    spec: { containers: [{ name: 'wiki', image: 'nginx' }], securityContext, restartPolicy: 'Always' },
  });
  const review = (object: unknown) =>
    JSON.stringify({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', request: { uid: 'u-1', operation: 'CREATE', kind: { group: '', version: 'v1', kind: 'Pod' }, object } });
  const decode = (body: string) => JSON.parse(body).response as { allowed: boolean; patch?: string; warnings?: string[] };

  const plain = pod({});
  const a = decode(admit(review(plain), settings()).body);
  assert.equal(a.allowed, true);
  assert.equal(a.warnings, undefined);
  const patched = applyJsonPatch(plain, JSON.parse(Buffer.from(a.patch!, 'base64').toString())) as Loose;
  assert.deepEqual(patched.spec.securityContext, { fsGroup: 10001 });

  const other = pod({ fsGroup: 3000 });
  const b = decode(admit(review(other), settings()).body);
  const patchedOther = applyJsonPatch(other, JSON.parse(Buffer.from(b.patch!, 'base64').toString())) as Loose;
  assert.deepEqual(patchedOther.spec.securityContext, { fsGroup: 3000 });
  assert.equal(b.warnings?.length, 1);
  assert.match(b.warnings![0]!, /^sws: Pod\/wiki-\*: the pod's securityContext\.fsGroup is 3000/);
});

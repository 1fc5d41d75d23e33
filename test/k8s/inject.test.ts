/**
 * `sws inject`: golden outputs for real-world manifests (fixtures/*.in.yaml → *.expected.yaml;
 * regenerate with SWS_UPDATE_GOLDEN=1 after reviewing a deliberate change), the round-trip
 * properties every output must have, the bad-input cases, and the command through the real
 * binary (stdin, several files, exit 2 with empty stdout).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  defaultInjectSettings,
  findPodTargets,
  injectYamlStream,
  InjectError,
  parseInjectSettings,
  INJECTED_ANNOTATION,
  type InjectFlags,
  type InjectSettings,
  type Json,
} from '../../k8s/index.ts';
import { expectFail, expectOk, sws, tempDir } from '../cli/helpers.ts';
import { FIXTURES, parseStream, stripInjected, type Loose } from './helpers.ts';

const BASE = defaultInjectSettings('0.0.0');
const settings = (flags: InjectFlags = {}): InjectSettings => parseInjectSettings({ image: 'registry.example/sws:golden', ...flags }, BASE);

/** Flags per fixture (default: only the pinned image). */
const FIXTURE_FLAGS: Record<string, InjectFlags> = {
  'custom-settings': {
    dataVolume: 'pvc:gateway-sws-data',
    masterKeyAs: 'file',
    outerPort: '13128',
    adminPort: '19901',
    cpuLimit: '1',
    memoryLimit: '',
    rekey: 'count:100, destination',
    imagePullPolicy: 'Always',
  },
};

const fixtures = readdirSync(FIXTURES)
  .filter((f) => f.endsWith('.in.yaml'))
  .map((f) => f.slice(0, -'.in.yaml'.length))
  .sort();

const UPDATE = process.env.SWS_UPDATE_GOLDEN === '1';

function run(name: string): { input: string; output: string; s: InjectSettings } {
  const input = readFileSync(join(FIXTURES, `${name}.in.yaml`), 'utf8');
  const s = settings(FIXTURE_FLAGS[name]);
  return { input, output: injectYamlStream(input, s, `${name}.in.yaml`).text, s };
}

test('the fixtures cover every supported kind, multi-doc streams, comments, lists and an already-injected file', () => {
  const kinds = new Set<string>();
  for (const name of fixtures) {
    for (const doc of parseStream(readFileSync(join(FIXTURES, `${name}.in.yaml`), 'utf8'))) {
      const t = findPodTargets(doc);
      if (t.kind === 'supported') for (const x of t.targets) kinds.add(x.kind);
    }
  }
  for (const k of ['Pod', 'Deployment', 'StatefulSet', 'DaemonSet', 'Job', 'CronJob']) assert.ok(kinds.has(k), `no fixture with a ${k}`);
  assert.ok(fixtures.includes('already-injected'));
});

for (const name of fixtures) {
  test(`golden: ${name}`, () => {
    const { output } = run(name);
    const file = join(FIXTURES, `${name}.expected.yaml`);
    if (UPDATE) writeFileSync(file, output);
    assert.equal(output, readFileSync(file, 'utf8'));
  });

  test(`round trip: ${name} — output parses, re-injecting is a no-op, and nothing but the sidecar changed`, () => {
    const { input, output, s } = run(name);
    const before = parseStream(input);
    const after = parseStream(output);
    assert.equal(after.length, before.length, 'same number of documents');
    assert.equal(injectYamlStream(output, s, 'again').text, output, 'injecting the output again changes it');
    before.forEach((doc, i) => assert.deepEqual(stripInjected(after[i], doc), doc, `document ${i + 1} differs beyond the injection`));
  });
}

test('documents without a sidecar request are copied byte for byte, comments and odd spacing included', () => {
  const input = readFileSync(join(FIXTURES, 'passthrough.in.yaml'), 'utf8');
  const r = injectYamlStream(input, settings(), 'p.yaml');
  assert.equal(r.text, input);
  assert.deepEqual(
    r.reports.map((x) => x.result),
    ['passed-through', 'skipped', 'passed-through'],
  );
  assert.equal(r.warnings.length, 1, 'the annotated Widget gets a warning');
  assert.match(r.warnings[0]!, /Widget\/w.*passed through/);
});

test('in a changed document, comments, key order and the untouched documents around it survive', () => {
  const { input, output } = run('deployment-multidoc');
  for (const line of input.split('\n').filter((l) => /#/.test(l))) assert.ok(output.includes(line.replace(/\s+#/, ' #')), `comment line lost: ${line}`);
  const configMap = input.slice(0, input.indexOf('---'));
  assert.ok(output.startsWith(configMap), 'the ConfigMap document is not byte-identical');
  const service = input.slice(input.lastIndexOf('---'));
  assert.ok(output.endsWith(service), 'the Service document is not byte-identical');
  assert.ok(output.includes('defaultMode: 0644'), 'the octal file mode was rewritten');
  const keys = Object.keys((parseStream(output)[1] as Record<string, Json>).spec as object);
  assert.deepEqual(keys, ['replicas', 'revisionHistoryLimit', 'selector', 'strategy', 'template']);
});

test('every injected sidecar is locked down: non-root, read-only root, no escalation, no capabilities, RuntimeDefault seccomp, probes, resources', () => {
  for (const name of fixtures) {
    const { output } = run(name);
    const pods: Record<string, Json>[] = [];
    for (const doc of parseStream(output)) {
      const t = findPodTargets(doc);
      if (t.kind !== 'supported') continue;
      for (const x of t.targets) {
        let spec: unknown = doc;
        for (const seg of x.podSpecPath) spec = (spec as Record<string, unknown> | unknown[])[seg as never];
        pods.push(spec as Record<string, Json>);
      }
    }
    for (const pod of pods) {
      const all = [...((pod.containers as Json[]) ?? []), ...((pod.initContainers as Json[]) ?? [])] as Record<string, Json>[];
      for (const c of all.filter((c) => typeof c.name === 'string' && c.name.startsWith('sws-'))) {
        const sc = c.securityContext as Record<string, Json>;
        assert.equal(sc.runAsNonRoot, true, `${name} ${c.name}`);
        assert.equal(sc.readOnlyRootFilesystem, true);
        assert.equal(sc.allowPrivilegeEscalation, false);
        assert.deepEqual(sc.capabilities, { drop: ['ALL'] });
        assert.deepEqual(sc.seccompProfile, { type: 'RuntimeDefault' });
        assert.ok(typeof sc.runAsUser === 'number' && sc.runAsUser > 0);
        assert.ok(isObj(c.resources) && isObj((c.resources as Record<string, Json>).requests));
        if (c.name !== 'sws-init') {
          assert.equal(((c.livenessProbe as Record<string, Json>).httpGet as Record<string, Json>).path, '/healthz');
          assert.equal(((c.readinessProbe as Record<string, Json>).httpGet as Record<string, Json>).path, '/readyz');
          const env = c.env as Record<string, Json>[];
          assert.ok(
            env.some((e) => e.name === 'SWS_MASTER_KEY') || (c.volumeMounts as Record<string, Json>[]).some((m) => String(m.mountPath).endsWith('/master.key')),
            'master key from a Secret',
          );
        }
      }
    }
  }
});

const isObj = (v: unknown): v is Record<string, Json> => typeof v === 'object' && v !== null && !Array.isArray(v);

test('Jobs and CronJobs get a native sidecar (restartPolicy Always init container); long-running pods a plain container', () => {
  const out = parseStream(run('jobs-pod-list').output) as Loose[];
  const job = out[0]!.spec.template.spec;
  assert.deepEqual(
    job.initContainers.map((c: { name: string; restartPolicy?: string }) => [c.name, c.restartPolicy ?? null]),
    [
      ['sws-init', null],
      ['sws-outer', 'Always'],
    ],
  );
  assert.deepEqual(
    job.containers.map((c: { name: string }) => c.name),
    ['export'],
  );
  const pod = out[2]!.spec;
  assert.deepEqual(
    pod.containers.map((c: { name: string }) => c.name),
    ['curl', 'sws-outer'],
  );
});

// --- bad input: one change from a valid baseline, the error names the problem --------------

const BASELINE = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  annotations:
    sws.dev/role: inner
spec:
  template:
    spec:
      containers:
      - name: web
        image: nginx
`;

function injectError(text: string, s = settings()): InjectError {
  try {
    injectYamlStream(text, s, 'in.yaml');
  } catch (e) {
    if (e instanceof InjectError) return e;
    throw e;
  }
  assert.fail('expected an InjectError');
}

test('baseline injects', () => {
  assert.equal(injectYamlStream(BASELINE, settings()).reports[0]!.result, 'injected');
});

test('invalid YAML names the source, the document and the line', () => {
  const e = injectError(`kind: ConfigMap\n---\n${BASELINE}      - [broken\n`);
  assert.equal(e.reason, 'invalid');
  assert.equal(e.code, 'SWS_ERR_USAGE');
  assert.match(e.message, /in\.yaml: document 2: invalid YAML at line 1[4-6], column \d+: /);
});

test('a container, volume, port or port name the sidecar needs that is already taken is a conflict', () => {
  const cases: [string, RegExp][] = [
    [BASELINE.replace('- name: web', '- name: sws-inner'), /container named "sws-inner"/],
    [BASELINE + '      initContainers:\n      - name: sws-init\n        image: x\n', /container named "sws-init"/],
    [BASELINE + '      volumes:\n      - name: sws-data\n        emptyDir: {}\n', /volume named "sws-data"/],
    [BASELINE + '        ports:\n        - containerPort: 8480\n', /uses port 8480/],
    [BASELINE + '        ports:\n        - containerPort: 80\n          name: sws-admin\n', /port named "sws-admin"/],
  ];
  for (const [text, re] of cases) {
    const e = injectError(text);
    assert.equal(e.reason, 'conflict', text);
    assert.match(e.message, re);
    assert.match(e.message, /in\.yaml: document 1: Deployment\/web/);
  }
});

test('a bad role value or workload and template disagreeing is invalid; missing containers too', () => {
  assert.match(injectError(BASELINE.replace('role: inner', 'role: middle')).message, /must be "inner" or "outer"/);
  const both = BASELINE.replace('  template:\n', '  template:\n    metadata:\n      annotations:\n        sws.dev/role: outer\n');
  assert.match(injectError(both).message, /"inner" on the workload but "outer" on its pod template/);
  const none = BASELINE.replace(/      containers:[\s\S]*$/, '      hostname: x\n');
  assert.match(injectError(none).message, /containers must be a list/);
});

test('injecting with other settings than the first time is an error naming both markers; the same settings are a no-op', () => {
  const once = injectYamlStream(BASELINE, settings()).text;
  assert.equal(injectYamlStream(once, settings()).text, once);
  const e = injectError(once, settings({ image: 'registry.example/sws:other' }));
  assert.equal(e.reason, 'already-injected');
  assert.match(e.message, /injected before with different settings \(marker v1\.[0-9a-f]{16}; these settings give v1\.[0-9a-f]{16}\)/);
});

test('flags are validated and named', () => {
  const bad: [InjectFlags, string][] = [
    [{ innerPort: '0' }, '--inner-port'],
    [{ adminPort: '8480' }, '--admin-port'],
    [{ cpuRequest: 'lots' }, '--cpu-request'],
    [{ dataVolume: 'hostPath:/x' }, '--data-volume'],
    [{ masterKeySecret: 'Bad_Name' }, '--master-key-secret'],
    [{ rekey: 'sometimes' }, '--rekey'],
    [{ image: 'has space' }, '--image'],
    [{ nativeSidecar: 'maybe' }, '--native-sidecar'],
    [{ runAsUser: '0' }, '--run-as-user'],
  ];
  for (const [flags, name] of bad) assert.throws(() => settings(flags), (e: Error) => e.message.startsWith(`${name}:`), name);
});

// --- the command ------------------------------------------------------------------------

test('sws inject: stdin to stdout, a line per workload on stderr; several files joined with ---', () => {
  const t = tempDir();
  try {
    const r = expectOk(sws(['inject', '--image', 'registry.example/sws:golden'], { input: BASELINE }));
    assert.match(r.stderr, /Deployment\/web: inner sidecar injected/);
    assert.equal(r.stdout, injectYamlStream(BASELINE, settings()).text);
    const a = join(t.dir, 'a.yaml');
    const b = join(t.dir, 'b.yaml');
    writeFileSync(a, BASELINE);
    writeFileSync(b, 'apiVersion: v1\nkind: Service\nmetadata:\n  name: s\n');
    const two = expectOk(sws(['inject', '-q', a, b]));
    assert.equal(two.stderr, '');
    const docs = parseStream(two.stdout) as Record<string, Json>[];
    assert.deepEqual(
      docs.map((d) => d.kind),
      ['Deployment', 'Service'],
    );
    assert.ok(String((docs[0] as Loose).spec.template.metadata.annotations[INJECTED_ANNOTATION]).startsWith('v1.'));
  } finally {
    t.cleanup();
  }
});

test('sws inject: invalid YAML, a conflict or a bad flag exit 2 with nothing on stdout', () => {
  const r1 = sws(['inject'], { input: 'a: [\n' });
  expectFail(r1, 2, '<stdin>: document 1: invalid YAML');
  assert.equal(r1.stdout, '');
  const r2 = sws(['inject'], { input: BASELINE.replace('- name: web', '- name: sws-inner') });
  expectFail(r2, 2, 'container named "sws-inner"');
  assert.equal(r2.stdout, '');
  expectFail(sws(['inject', '--memory-limit', '1 GB'], { input: BASELINE }), 2, '--memory-limit');
  expectFail(sws(['inject', '/nonexistent/x.yaml']), 2, 'no such file');
});

test('annotation sws.dev/data-volume gives one workload its own data volume (same for inject and webhook); a bad value is invalid', () => {
  const withPvc = BASELINE.replace('    sws.dev/role: inner\n', '    sws.dev/role: inner\n    sws.dev/data-volume: pvc:web-sws\n');
  const out = parseStream(injectYamlStream(withPvc, settings()).text)[0] as Loose;
  const data = out.spec.template.spec.volumes.find((v: Loose) => v.name === 'sws-data');
  assert.deepEqual(data, { name: 'sws-data', persistentVolumeClaim: { claimName: 'web-sws' } });
  const e = injectError(withPvc.replace('pvc:web-sws', 'nfs:server'));
  assert.equal(e.reason, 'invalid');
  assert.match(e.message, /sws\.dev\/data-volume must be emptyDir, emptyDir:SIZE or pvc:CLAIM-NAME/);
});

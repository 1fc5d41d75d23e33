/**
 * The admission webhook over real HTTPS on loopback, with a certificate made by openssl for
 * this run: AdmissionReview JSON as the API server sends it, the JSONPatch applied to the pod
 * with an RFC 6902 applier, the result checked (and equal to what `sws inject` makes of the
 * same pod); objects to leave alone, pods to refuse, malformed reviews; then the real
 * `sws webhook start` process, stopped by SIGTERM.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { defaultInjectSettings, injectYamlStream, parseInjectSettings, INJECTED_ANNOTATION, type InjectSettings } from '../../k8s/index.ts';
import { WebhookServer } from '../../k8s/webhook.ts';
import { baseEnv, expectFail, sws, SWS } from '../cli/helpers.ts';
import { applyJsonPatch, parseStream } from './helpers.ts';

const dir = mkdtempSync(join(tmpdir(), 'sws-webhook-'));
const CERT = join(dir, 'tls.crt');
const KEY = join(dir, 'tls.key');
let cert: Buffer;
let server: WebhookServer;
const settings: InjectSettings = parseInjectSettings({ image: 'registry.example/sws:test' }, defaultInjectSettings('0.0.0'));

before(async () => {
  execFileSync('openssl', [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1',
    '-subj', '/CN=sws-webhook.sws-system.svc', '-addext', 'subjectAltName=IP:127.0.0.1,DNS:sws-webhook.sws-system.svc',
    '-keyout', KEY, '-out', CERT,
  ], { stdio: 'ignore' });
  cert = readFileSync(CERT);
  server = await WebhookServer.start({ host: '127.0.0.1', port: 0, cert, key: readFileSync(KEY), settings, log: pino({ level: 'silent' }) });
});

after(async () => {
  await server?.stop();
  rmSync(dir, { recursive: true, force: true });
});

interface Reply {
  status: number;
  type: string;
  body: string;
}

function call(port: number, path: string, body: string | undefined, headers: Record<string, string> = { 'content-type': 'application/json' }, method = 'POST'): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, method, ca: cert, servername: 'sws-webhook.sws-system.svc', headers, agent: false }, (res) => {
      let data = '';
      res.setEncoding('utf8').on('data', (d) => (data += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, type: String(res.headers['content-type'] ?? ''), body: data }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** A pod as a ReplicaSet creates it, after the built-in admission plugins ran (service account volume, tolerations). */
function replicaSetPod(annotations: Record<string, string> = { 'sws.dev/role': 'inner' }): Record<string, unknown> {
  return {
    kind: 'Pod',
    apiVersion: 'v1',
    metadata: {
      generateName: 'wiki-7d9c8b6f4d-',
      namespace: 'intranet',
      creationTimestamp: null,
      labels: { 'app.kubernetes.io/name': 'wiki', 'pod-template-hash': '7d9c8b6f4d' },
      annotations,
      ownerReferences: [{ apiVersion: 'apps/v1', kind: 'ReplicaSet', name: 'wiki-7d9c8b6f4d', uid: 'a8a3c0a4-6a55-4a2b-9c55-54c1e4f0a111', controller: true, blockOwnerDeletion: true }],
      managedFields: [{ manager: 'kube-controller-manager', operation: 'Update', apiVersion: 'v1', time: '2025-01-01T00:00:00Z', fieldsType: 'FieldsV1', fieldsV1: {} }],
    },
    spec: {
      volumes: [{ name: 'kube-api-access-x7k2p', projected: { sources: [{ serviceAccountToken: { expirationSeconds: 3607, path: 'token' } }], defaultMode: 420 } }],
      containers: [
        {
          name: 'nginx',
          image: 'nginxinc/nginx-unprivileged:1.27-alpine',
          ports: [{ name: 'http', containerPort: 8080, protocol: 'TCP' }],
          resources: {},
          volumeMounts: [{ name: 'kube-api-access-x7k2p', readOnly: true, mountPath: '/var/run/secrets/kubernetes.io/serviceaccount' }],
          terminationMessagePath: '/dev/termination-log',
          terminationMessagePolicy: 'File',
          imagePullPolicy: 'IfNotPresent',
        },
      ],
      restartPolicy: 'Always',
      terminationGracePeriodSeconds: 30,
      dnsPolicy: 'ClusterFirst',
      serviceAccountName: 'default',
      serviceAccount: 'default',
      securityContext: {},
      schedulerName: 'default-scheduler',
      tolerations: [
        { key: 'node.kubernetes.io/not-ready', operator: 'Exists', effect: 'NoExecute', tolerationSeconds: 300 },
        { key: 'node.kubernetes.io/unreachable', operator: 'Exists', effect: 'NoExecute', tolerationSeconds: 300 },
      ],
      priority: 0,
      enableServiceLinks: true,
      preemptionPolicy: 'PreemptLowerPriority',
    },
    status: {},
  };
}

function review(object: unknown, overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    kind: 'AdmissionReview',
    apiVersion: 'admission.k8s.io/v1',
    request: {
      uid: '705ab4f5-6393-11e8-b7cc-42010a800002',
      kind: { group: '', version: 'v1', kind: 'Pod' },
      resource: { group: '', version: 'v1', resource: 'pods' },
      requestKind: { group: '', version: 'v1', kind: 'Pod' },
      requestResource: { group: '', version: 'v1', resource: 'pods' },
      namespace: 'intranet',
      operation: 'CREATE',
      userInfo: { username: 'system:serviceaccount:kube-system:replicaset-controller', uid: 'b0d1f0a2', groups: ['system:serviceaccounts', 'system:authenticated'] },
      object,
      oldObject: null,
      dryRun: false,
      options: { kind: 'CreateOptions', apiVersion: 'meta.k8s.io/v1' },
      ...overrides,
    },
  };
}

interface AdmissionResponse {
  uid: string;
  allowed: boolean;
  patchType?: string;
  patch?: string;
  status?: { code: number; message: string };
  warnings?: string[];
}

async function admitOver(port: number, body: unknown): Promise<AdmissionResponse> {
  const r = await call(port, '/mutate', JSON.stringify(body));
  assert.equal(r.status, 200, r.body);
  assert.match(r.type, /^application\/json/);
  const parsed = JSON.parse(r.body) as { apiVersion: string; kind: string; response: AdmissionResponse };
  assert.equal(parsed.apiVersion, 'admission.k8s.io/v1');
  assert.equal(parsed.kind, 'AdmissionReview');
  assert.equal(parsed.response.uid, '705ab4f5-6393-11e8-b7cc-42010a800002', 'the uid is echoed');
  return parsed.response;
}

const decodePatch = (r: AdmissionResponse) => JSON.parse(Buffer.from(r.patch!, 'base64').toString('utf8')) as { op: string; path: string; value?: unknown }[];

type PodLike = { metadata: { annotations: Record<string, string> }; spec: Record<string, { name: string; restartPolicy?: string }[]> };

test('a pod that asks for an inner gets a JSONPatch that adds exactly the sidecar; the patched pod equals `sws inject` of the pod', async () => {
  const pod = replicaSetPod();
  const r = await admitOver(server.port, review(pod));
  assert.equal(r.allowed, true);
  assert.equal(r.patchType, 'JSONPatch');
  const ops = decodePatch(r);
  assert.ok(ops.every((o) => o.op === 'add'));
  assert.ok(ops.some((o) => o.path === '/metadata/annotations/sws.dev~1injected'), 'RFC 6901 escaping of "/"');
  const patched = applyJsonPatch(pod, ops) as PodLike;
  assert.deepEqual(
    patched.spec.containers!.map((c) => c.name),
    ['nginx', 'sws-inner'],
  );
  assert.deepEqual(
    patched.spec.initContainers!.map((c) => c.name),
    ['sws-init'],
  );
  assert.deepEqual(
    patched.spec.volumes!.map((v) => v.name),
    ['kube-api-access-x7k2p', 'sws-data', 'sws-tmp', 'sws-config'],
  );
  assert.match(patched.metadata.annotations[INJECTED_ANNOTATION]!, /^v1\.[0-9a-f]{16}$/);
  // One injection, two renderings: the webhook's patch and `sws inject` agree.
  const viaInject = parseStream(injectYamlStream(JSON.stringify(pod), settings).text)[0];
  assert.deepEqual(patched, viaInject);

  // The API server may call again (reinvocationPolicy): the patched pod is left alone.
  const again = await admitOver(server.port, review(patched));
  assert.equal(again.allowed, true);
  assert.equal(again.patch, undefined);
});

test('missing initContainers and volumes are created by the patch (the parent of every add exists)', async () => {
  const pod = replicaSetPod({ 'sws.dev/role': 'outer' }) as { spec: Record<string, unknown> };
  delete pod.spec.volumes;
  pod.spec.restartPolicy = 'Never';
  const r = await admitOver(server.port, review(pod));
  const patched = applyJsonPatch(pod, decodePatch(r)) as PodLike;
  assert.deepEqual(
    patched.spec.initContainers!.map((c) => [c.name, c.restartPolicy ?? null]),
    [
      ['sws-init', null],
      ['sws-outer', 'Always'],
    ],
    'a pod that is not restarted gets a native sidecar',
  );
  assert.deepEqual(
    patched.spec.volumes!.map((v) => v.name),
    ['sws-data', 'sws-tmp', 'sws-config'],
  );
  const noAnnotations = replicaSetPod() as { metadata: Record<string, unknown> };
  delete noAnnotations.metadata.annotations;
  noAnnotations.metadata.labels = { 'sws.dev/inject': 'enabled' };
  const plain = await admitOver(server.port, review(noAnnotations));
  assert.equal(plain.patch, undefined, 'the label selects the pod for the webhook; the annotation asks for a role');
});

test('objects sws must not touch are allowed without a patch', async () => {
  const cases: [string, unknown][] = [
    ['no role annotation', review(replicaSetPod({ 'kubectl.kubernetes.io/restartedAt': 'x' }))],
    ['an UPDATE', review(replicaSetPod(), { operation: 'UPDATE', oldObject: replicaSetPod() })],
    ['a DELETE (no object)', review(null, { operation: 'DELETE', oldObject: replicaSetPod() })],
    ['a Service', review({ apiVersion: 'v1', kind: 'Service', metadata: { name: 's', annotations: { 'sws.dev/role': 'inner' } }, spec: {} }, { kind: { group: '', version: 'v1', kind: 'Service' } })],
    ['a dry-run request for a pod that asks for nothing', review(replicaSetPod({}), { dryRun: true })],
  ];
  for (const [what, body] of cases) {
    const r = await admitOver(server.port, body);
    assert.equal(r.allowed, true, what);
    assert.equal(r.patch, undefined, what);
    assert.equal(r.patchType, undefined, what);
  }
});

test('a pod injected before with other settings is allowed unchanged, with a warning for kubectl', async () => {
  const other = parseInjectSettings({ image: 'registry.example/sws:other' }, defaultInjectSettings('0.0.0'));
  const injected = parseStream(injectYamlStream(JSON.stringify(replicaSetPod()), other).text)[0];
  const r = await admitOver(server.port, review(injected));
  assert.equal(r.allowed, true);
  assert.equal(r.patch, undefined);
  assert.match(r.warnings?.[0] ?? '', /injected with other settings/);
});

test('a pod that asks for a sidecar that cannot be added is denied with the reason (fail closed)', async () => {
  const pod = replicaSetPod() as { spec: { containers: { name: string; ports?: unknown[] }[] } };
  pod.spec.containers[0]!.ports = [{ containerPort: 9901, protocol: 'TCP' }];
  const r = await admitOver(server.port, review(pod));
  assert.equal(r.allowed, false);
  assert.equal(r.patch, undefined);
  assert.equal(r.status?.code, 400);
  assert.match(r.status?.message ?? '', /uses port 9901/);
  const bad = await admitOver(server.port, review(replicaSetPod({ 'sws.dev/role': 'both' })));
  assert.equal(bad.allowed, false);
  assert.match(bad.status?.message ?? '', /must be "inner" or "outer"/);
});

test('a malformed AdmissionReview is a 400 naming what is missing; wrong method, type and path are refused', async () => {
  const malformed: [string, string, RegExp][] = [
    ['not JSON', '{"kind":', /not JSON/],
    ['no request', JSON.stringify({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview' }), /request/],
    ['no uid', JSON.stringify(review(replicaSetPod(), { uid: undefined })), /request\.uid/],
    ['v1beta1', JSON.stringify({ ...review(replicaSetPod()), apiVersion: 'admission.k8s.io/v1beta1' }), /apiVersion must be admission\.k8s\.io\/v1/],
    ['wrong kind', JSON.stringify({ ...review(replicaSetPod()), kind: 'Pod' }), /kind must be AdmissionReview/],
  ];
  for (const [what, body, re] of malformed) {
    const r = await call(server.port, '/mutate', body);
    assert.equal(r.status, 400, what);
    assert.match(r.body, /^malformed AdmissionReview: /, what);
    assert.match(r.body, re, what);
  }
  assert.equal((await call(server.port, '/mutate', undefined, {}, 'GET')).status, 405);
  assert.equal((await call(server.port, '/mutate', '{}', { 'content-type': 'text/plain' })).status, 415);
  assert.equal((await call(server.port, '/validate', '{}')).status, 404);
  const health = await call(server.port, '/healthz', undefined, {}, 'GET');
  assert.equal(health.status, 200);
});

test('sws webhook start: serves over TLS until SIGTERM, with the same patch as in-process', async () => {
  const child = spawn(process.execPath, [SWS, 'webhook', 'start', '--listen', '127.0.0.1:0', '--tls-cert', CERT, '--tls-key', KEY, '--image', 'registry.example/sws:test'], {
    env: baseEnv(),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (d) => (stderr += d));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  try {
    const port = await new Promise<number>((resolve, reject) => {
      let buf = '';
      child.stdout.setEncoding('utf8').on('data', (d: string) => {
        buf += d;
        for (const line of buf.split('\n')) {
          if (!line.startsWith('{')) continue;
          try {
            const rec = JSON.parse(line) as { msg?: string; listen?: string };
            if (rec.msg === 'webhook listening' && rec.listen) resolve(Number(rec.listen.split(':').pop()));
          } catch {
            /* a partial line: wait for more */
          }
        }
      });
      void exited.then((code) => reject(new Error(`sws webhook start exited ${code} before listening: ${stderr}`)));
    });
    const pod = replicaSetPod();
    const viaProcess = await admitOver(port, review(pod));
    const inProcess = await admitOver(server.port, review(pod));
    assert.equal(viaProcess.patch, inProcess.patch);
  } finally {
    child.kill('SIGTERM');
  }
  assert.equal(await exited, 0, stderr);
});

test('sws webhook start: unreadable or non-PEM TLS files exit 2 naming the flag', () => {
  expectFail(sws(['webhook', 'start', '--listen', '127.0.0.1:0', '--tls-cert', join(dir, 'missing.crt'), '--tls-key', KEY]), 2, /--tls-cert: cannot read .*no such file/);
  expectFail(sws(['webhook', 'start', '--listen', '127.0.0.1:0', '--tls-cert', KEY.replace('tls.key', 'tls.crt'), '--tls-key', CERT]), 2, '--tls-');
});

/**
 * What can be verified here of the image and the deploy/ examples without a cluster or a
 * container engine: every manifest parses and names its kind and object; the examples inject
 * cleanly and refer to Secrets, ConfigMaps, PVCs and ports that exist; their sws.yaml configs
 * pass `sws apply`'s checks; the webhook's configuration points at its Service and path; the
 * Dockerfile is multi-stage, installs production dependencies only and runs as the non-root
 * user the injected securityContext names.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { defaultInjectSettings, injectYamlStream } from '../../k8s/index.ts';
import { MUTATE_PATH } from '../../k8s/webhook.ts';
import { parseConfig } from '../../config/index.ts';
import { packageVersion } from '../../bin/commands/k8s-flags.ts';
import { parseStream, stripInjected, type Loose } from './helpers.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const DEPLOY = join(ROOT, 'deploy');
const settings = defaultInjectSettings(packageVersion());

type Obj = Loose;

function load(dir: string): { file: string; docs: Obj[]; text: string }[] {
  return readdirSync(join(DEPLOY, dir))
    .filter((f) => f.endsWith('.yaml'))
    .sort()
    .map((f) => {
      const text = readFileSync(join(DEPLOY, dir, f), 'utf8');
      return { file: `${dir}/${f}`, text, docs: parseStream(text).filter((d): d is Obj => d !== null) as Obj[] };
    });
}

const ALL = ['server', 'client', 'webhook'].flatMap(load);
const CLUSTER_SCOPED = new Set(['Namespace', 'MutatingWebhookConfiguration']);

test('every deploy/ manifest parses and names apiVersion, kind, metadata.name and (if namespaced) its namespace', () => {
  assert.ok(ALL.length >= 9);
  for (const { file, docs } of ALL) {
    assert.ok(docs.length > 0, file);
    for (const d of docs) {
      assert.equal(typeof d.apiVersion, 'string', file);
      assert.equal(typeof d.kind, 'string', file);
      assert.equal(typeof d.metadata?.name, 'string', `${file} ${d.kind}`);
      if (!CLUSTER_SCOPED.has(d.kind)) assert.equal(typeof d.metadata.namespace, 'string', `${file} ${d.kind}/${d.metadata.name} has no namespace`);
    }
  }
});

function byKind(dir: string, kind: string): Obj[] {
  return ALL.filter((f) => f.file.startsWith(`${dir}/`)).flatMap((f) => f.docs.filter((d) => d.kind === kind));
}

for (const [dir, role, workload] of [
  ['server', 'inner', 'wiki'],
  ['client', 'outer', 'intranet-gateway'],
] as const) {
  test(`deploy/${dir}: the ${role} example injects cleanly and everything the sidecar refers to exists in namespace ${dir === 'server' ? 'intranet' : 'branch-office'}`, async () => {
    const files = ALL.filter((f) => f.file.startsWith(`${dir}/`));
    const text = files.map((f) => f.text).join('\n---\n');
    const r = injectYamlStream(text, settings, `deploy/${dir}`);
    assert.deepEqual(
      r.reports.filter((x) => x.result === 'injected').map((x) => [x.display, x.role]),
      [[`Deployment/${workload}`, role]],
    );
    const out = parseStream(r.text) as Obj[];
    const before = parseStream(text);
    out.forEach((d, i) => assert.deepEqual(stripInjected(d, before[i]), before[i]));
    assert.equal(injectYamlStream(r.text, settings).text, r.text, 'not idempotent');

    const ns = byKind(dir, 'Namespace')[0]!.metadata.name as string;
    const deploy = out.find((d) => d?.kind === 'Deployment')!;
    assert.equal(deploy.metadata.namespace, ns);
    const pod = deploy.spec.template.spec;
    const sidecar = [...pod.containers, ...(pod.initContainers ?? [])].find((c: Obj) => c.name === `sws-${role}`);
    assert.ok(sidecar, 'no sidecar');
    const names = (kind: string) => new Set(byKind(dir, kind).filter((o) => o.metadata.namespace === ns).map((o) => o.metadata.name as string));
    const secretRef = sidecar.env.find((e: Obj) => e.name === 'SWS_MASTER_KEY').valueFrom.secretKeyRef;
    assert.ok(names('Secret').has(secretRef.name), `Secret ${secretRef.name} missing`);
    assert.ok(byKind(dir, 'Secret').find((s) => s.metadata.name === secretRef.name)!.stringData[secretRef.key] !== undefined);
    const volumes = new Map<string, Obj>(pod.volumes.map((v: Obj) => [v.name, v]));
    assert.ok(names('ConfigMap').has(volumes.get('sws-config')!.configMap.name), 'ConfigMap missing');
    assert.ok(names('PersistentVolumeClaim').has(volumes.get('sws-data')!.persistentVolumeClaim?.claimName), 'the data dir is not on the PVC');
    const service = byKind(dir, 'Service')[0]!;
    assert.equal(service.spec.ports[0].targetPort, 'sws', 'the Service targets the sidecar port by name');
    assert.ok(sidecar.ports.some((p: Obj) => p.name === 'sws'));
  });

  test(`deploy/${dir}: the ConfigMap's sws.yaml passes \`sws apply\`'s checks`, async () => {
    const cm = byKind(dir, 'ConfigMap')[0]!;
    const base = mkdtempSync(join(tmpdir(), 'sws-deploy-'));
    try {
      // The outer's config names the inner's key file, added by the operator (see the ConfigMap).
      const pem = generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey.export({ type: 'spki', format: 'pem' }).toString();
      writeFileSync(join(base, 'intranet-inner.pem'), pem);
      const desired = await parseConfig(cm.data['sws.yaml'], `${dir}/configmap.yaml`, base);
      assert.equal(desired.role, role);
    } finally {
      rmSync(base, { recursive: true, force: true });
    }
  });
}

test('deploy/webhook: the MutatingWebhookConfiguration points at the Service, port and path the webhook serves, for pods, with v1 reviews', () => {
  const [config] = byKind('webhook', 'MutatingWebhookConfiguration');
  const [service] = byKind('webhook', 'Service');
  const [deployment] = byKind('webhook', 'Deployment');
  const container = deployment!.spec.template.spec.containers[0];
  const args: string[] = container.args;
  const flag = (name: string) => args.find((a) => a.startsWith(`--${name}=`))?.split('=')[1];
  assert.deepEqual(args.slice(0, 2), ['webhook', 'start']);
  const listenPort = Number(flag('listen')!.split(':')[1]);
  assert.equal(container.ports[0].containerPort, listenPort);
  assert.equal(service!.spec.ports[0].targetPort, container.ports[0].name);
  const mount = container.volumeMounts.find((m: Obj) => m.name === 'tls').mountPath as string;
  assert.ok(flag('tls-cert')!.startsWith(mount + '/') && flag('tls-key')!.startsWith(mount + '/'));
  assert.ok(config!.webhooks.length === 2);
  for (const w of config!.webhooks as Obj[]) {
    assert.deepEqual(w.admissionReviewVersions, ['v1']);
    assert.equal(w.sideEffects, 'None');
    assert.equal(w.clientConfig.service.name, service!.metadata.name);
    assert.equal(w.clientConfig.service.namespace, service!.metadata.namespace);
    assert.equal(w.clientConfig.service.path, MUTATE_PATH);
    assert.equal(w.clientConfig.service.port, service!.spec.ports[0].port);
    assert.deepEqual(w.rules[0].resources, ['pods']);
    assert.deepEqual(w.rules[0].operations, ['CREATE']);
  }
  const [cert] = byKind('webhook', 'Certificate');
  assert.ok(cert!.spec.dnsNames.includes(`${service!.metadata.name}.${service!.metadata.namespace}.svc`));
  assert.equal(deployment!.spec.template.spec.volumes.find((v: Obj) => v.name === 'tls').secret.secretName, cert!.spec.secretName);
});

test('the examples use the image `sws inject` defaults to (sws:<package version>)', () => {
  const images = ALL.flatMap((f) => [...f.text.matchAll(/\bsws:(\d[^\s"']*)/g)].map((m) => m[0]));
  assert.ok(images.length > 0);
  for (const i of images) assert.equal(i, settings.image);
});

test('Dockerfile: multi-stage, production dependencies only, a numeric non-root USER equal to the injected runAsUser, sws as entrypoint', () => {
  const df = readFileSync(join(ROOT, 'Dockerfile'), 'utf8');
  const froms = [...df.matchAll(/^FROM\s+(\S+)/gm)].map((m) => m[1]);
  assert.equal(froms.length, 2);
  assert.match(froms[1]!, /^node:20-bookworm-slim$/);
  assert.match(df, /npm ci --omit=dev/);
  const user = /^USER\s+(\d+):(\d+)\s*$/m.exec(df);
  assert.ok(user, 'USER must be numeric uid:gid');
  assert.equal(Number(user[1]), settings.runAsUser);
  assert.notEqual(Number(user[1]), 0);
  assert.match(df, /^ENTRYPOINT \["node", "--no-memory-reducer", "\/app\/bin\/sws\.js"\]$/m);
  const ignore = readFileSync(join(ROOT, '.dockerignore'), 'utf8').split('\n');
  for (const p of ['node_modules', '.git', '**/master.key', '.sws']) assert.ok(ignore.includes(p), `.dockerignore lacks ${p}`);
});

test('package.json: what the k8s and config code import at run time are production dependencies', () => {
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { dependencies: Record<string, string> };
  assert.ok(pkg.dependencies.yaml, 'yaml');
  assert.ok(pkg.dependencies.pino, 'pino');
});


/**
 * The deps stage's RUN steps as `docker build` runs them (`/bin/sh -c`, in order, stopping at the
 * first failure), in a temp WORKDIR with a fake `npm` on PATH: each failure must name what
 * failed. Before the fix one `a && b || {tsx message}` also caught an `npm ci` failure.
 */
function runDepsStage(opts: { npmExit: number; tsxInDependencies: boolean; nodeModules: boolean }): { code: number; stderr: string } {
  const df = readFileSync(join(ROOT, 'Dockerfile'), 'utf8');
  const deps = df.split(/^FROM\s/m)[1]!;
  const runs = deps
    .replace(/\\\n/g, ' ')
    .split('\n')
    .filter((l) => l.startsWith('RUN '))
    .map((l) => l.slice(4));
  assert.ok(runs.length >= 1 && runs.some((r) => r.includes('npm ci')), 'no RUN npm ci in the deps stage');
  const dir = mkdtempSync(join(tmpdir(), 'sws-docker-'));
  try {
    mkdirSync(join(dir, 'bin'));
    writeFileSync(join(dir, 'bin', 'npm'), `#!/bin/sh\necho "npm ERR! fake failure" >&2\nexit ${opts.npmExit}\n`, { mode: 0o755 });
    const app = join(dir, 'app');
    mkdirSync(app);
    writeFileSync(join(app, 'package.json'), JSON.stringify({ dependencies: opts.tsxInDependencies ? { tsx: '^4' } : { yaml: '^2' }, devDependencies: { tsx: '^4' } }));
    if (opts.nodeModules) symlinkSync(join(ROOT, 'node_modules'), join(app, 'node_modules'));
    const env = { PATH: `${join(dir, 'bin')}:${dirname(process.execPath)}:/usr/bin:/bin` };
    let stderr = '';
    for (const cmd of runs) {
      const r = spawnSync('/bin/sh', ['-c', cmd], { cwd: app, env, encoding: 'utf8' });
      stderr += r.stderr;
      if (r.status !== 0) return { code: r.status ?? -1, stderr };
    }
    return { code: 0, stderr };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test('Dockerfile: an npm ci failure says npm ci failed, a missing tsx says tsx, and a good install passes', () => {
  const npmFails = runDepsStage({ npmExit: 1, tsxInDependencies: true, nodeModules: false });
  assert.notEqual(npmFails.code, 0);
  assert.match(npmFails.stderr, /error: npm ci --omit=dev failed/);
  assert.doesNotMatch(npmFails.stderr, /tsx is not in/, 'an npm failure was blamed on tsx');

  const noTsx = runDepsStage({ npmExit: 0, tsxInDependencies: false, nodeModules: true });
  assert.notEqual(noTsx.code, 0);
  assert.match(noTsx.stderr, /error: tsx is not in "dependencies" of package\.json/);
  assert.doesNotMatch(noTsx.stderr, /npm ci --omit=dev failed/);

  const unresolvable = runDepsStage({ npmExit: 0, tsxInDependencies: true, nodeModules: false });
  assert.notEqual(unresolvable.code, 0);
  assert.match(unresolvable.stderr, /tsx\/esm\/api cannot be resolved/);

  const ok = runDepsStage({ npmExit: 0, tsxInDependencies: true, nodeModules: true });
  assert.equal(ok.code, 0, ok.stderr);
});

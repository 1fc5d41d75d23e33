/**
 * What injection adds to a pod, as plain objects: an init container that creates or updates
 * the data dir from the mounted ConfigMap (`sws apply --init --prune -f /etc/sws/sws.yaml`), the sidecar
 * itself (`sws inner start` / `sws outer start`) with its ports, probes on the admin port
 * (/healthz, /readyz), resources and a locked-down securityContext, and the volumes both use.
 * The image's entrypoint is `node --no-memory-reducer /app/bin/sws.js`, so `args` are `sws` arguments.
 */
import { NAMES, PATHS, forRole, type InjectSettings } from './settings.ts';
import type { SidecarRole } from './annotations.ts';
import type { JsonObject } from './workload.ts';

/** `--password-checks` of an injected outer (scrypt, 32 MiB each while it runs). */
export const OUTER_PASSWORD_CHECKS = 2;

export interface SidecarParts {
  /** Appended to the pod's initContainers (the init step; the native sidecar after it). */
  readonly initContainers: JsonObject[];
  /** Appended to the pod's containers (the sidecar, unless native). */
  readonly containers: JsonObject[];
  readonly volumes: JsonObject[];
  /** Port numbers and names the sidecar takes in the pod's network namespace. */
  readonly ports: readonly number[];
  readonly portNames: readonly string[];
}

export function securityContext(s: InjectSettings): JsonObject {
  return {
    runAsNonRoot: true,
    runAsUser: s.runAsUser,
    runAsGroup: s.runAsUser,
    readOnlyRootFilesystem: true,
    allowPrivilegeEscalation: false,
    capabilities: { drop: ['ALL'] },
    seccompProfile: { type: 'RuntimeDefault' },
  };
}

function resources(s: InjectSettings): JsonObject {
  const r = s.resources;
  const requests: JsonObject = {};
  const limits: JsonObject = {};
  if (r.cpuRequest) requests.cpu = r.cpuRequest;
  if (r.memoryRequest) requests.memory = r.memoryRequest;
  if (r.cpuLimit) limits.cpu = r.cpuLimit;
  if (r.memoryLimit) limits.memory = r.memoryLimit;
  return { ...(Object.keys(requests).length ? { requests } : {}), ...(Object.keys(limits).length ? { limits } : {}) };
}

function env(role: SidecarRole, s: InjectSettings): JsonObject[] {
  const out: JsonObject[] = [{ name: 'SWS_DATA', value: PATHS.data }];
  if (s.masterKeyAs === 'env') {
    out.push({ name: 'SWS_MASTER_KEY', valueFrom: { secretKeyRef: { name: forRole(s.masterKeySecret, role), key: s.masterKeySecretKey } } });
  }
  return out;
}

function mounts(s: InjectSettings, withConfig: boolean): JsonObject[] {
  const out: JsonObject[] = [
    { name: NAMES.volumes.data, mountPath: PATHS.data },
    // tsx (which runs the TypeScript sources) caches compiled files under $TMPDIR; the root
    // filesystem is read-only.
    { name: NAMES.volumes.tmp, mountPath: PATHS.tmp },
  ];
  if (s.masterKeyAs === 'file') out.push({ name: NAMES.volumes.masterKey, mountPath: `${PATHS.data}/master.key`, subPath: 'master.key', readOnly: true });
  if (withConfig) out.push({ name: NAMES.volumes.config, mountPath: PATHS.config, readOnly: true });
  return out;
}

/** The objects to add for `role`; `native` puts the sidecar among the init containers. */
export function sidecarParts(role: SidecarRole, s: InjectSettings, native: boolean): SidecarParts {
  const mainPort = role === 'inner' ? s.innerPort : s.outerPort;
  const common = {
    image: s.image,
    imagePullPolicy: s.imagePullPolicy,
  };
  const init: JsonObject = {
    name: NAMES.init,
    ...common,
    // --prune: the ConfigMap is the source of truth (GitOps); users' passwords are not in it.
    args: ['apply', '--init', '--prune', '-f', `${PATHS.config}/${s.configMapKey}`],
    env: env(role, s),
    resources: resources(s),
    securityContext: securityContext(s),
    volumeMounts: mounts(s, true),
  };
  const args = [role, 'start', '--listen', `0.0.0.0:${mainPort}`, '--admin-listen', `0.0.0.0:${s.adminPort}`, '--log-level', s.logLevel];
  if (role === 'outer' && s.rekey !== undefined) args.push('--rekey', s.rekey);
  // Each password check holds 32 MiB while it runs: two keep a burst of wrong passwords within
  // the default 256Mi limit next to the outer's own peak (docs/KUBERNETES.md).
  if (role === 'outer') args.push('--password-checks', String(OUTER_PASSWORD_CHECKS));
  const probe = (path: string, periodSeconds: number, failureThreshold: number): JsonObject => ({
    httpGet: { path, port: NAMES.ports.admin },
    periodSeconds,
    timeoutSeconds: 2,
    failureThreshold,
  });
  const sidecar: JsonObject = {
    name: NAMES.container(role),
    ...common,
    args,
    ...(native ? { restartPolicy: 'Always' } : {}),
    env: env(role, s),
    ports: [
      { name: NAMES.ports.main, containerPort: mainPort, protocol: 'TCP' },
      { name: NAMES.ports.admin, containerPort: s.adminPort, protocol: 'TCP' },
    ],
    startupProbe: probe('/healthz', 1, 60),
    livenessProbe: probe('/healthz', 10, 3),
    readinessProbe: probe('/readyz', 5, 3),
    resources: resources(s),
    securityContext: securityContext(s),
    volumeMounts: mounts(s, false),
  };
  const volumes: JsonObject[] = [
    {
      name: NAMES.volumes.data,
      ...(s.dataVolume.kind === 'pvc'
        ? { persistentVolumeClaim: { claimName: s.dataVolume.claimName } }
        : { emptyDir: s.dataVolume.sizeLimit !== undefined ? { sizeLimit: s.dataVolume.sizeLimit } : {} }),
    },
    { name: NAMES.volumes.tmp, emptyDir: { sizeLimit: '64Mi' } },
    // The whole ConfigMap: the config may name key files beside it (publicKeyFile: alice.pem).
    { name: NAMES.volumes.config, configMap: { name: forRole(s.configMap, role) } },
  ];
  if (s.masterKeyAs === 'file') {
    // 0444: the file must be readable by the sidecar's non-root user without an fsGroup.
    volumes.push({
      name: NAMES.volumes.masterKey,
      secret: { secretName: forRole(s.masterKeySecret, role), items: [{ key: s.masterKeySecretKey, path: 'master.key' }], defaultMode: 0o444 },
    });
  }
  return {
    initContainers: native ? [init, sidecar] : [init],
    containers: native ? [] : [sidecar],
    volumes,
    ports: [mainPort, s.adminPort],
    portNames: [NAMES.ports.main, NAMES.ports.admin],
  };
}

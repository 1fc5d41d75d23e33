/**
 * The injection decision for one Kubernetes object, shared by `sws inject` (YAML documents)
 * and the admission webhook (JSON pods): for each pod template, skip it (no role annotation),
 * leave it (already injected with these settings), report it (injected with other settings),
 * or add the sidecar — as a list of edits that edits.ts turns into YAML changes or JSON Patch.
 * Conflicts (a name, volume or port the sidecar needs is taken) and bad annotations throw
 * InjectError: never a half-injected pod.
 */
import { createHash } from 'node:crypto';
import { DATA_VOLUME_ANNOTATION, INJECTED_ANNOTATION, INJECTOR_VERSION, ROLE_ANNOTATION, SIDECAR_ROLES, type SidecarRole } from './annotations.ts';
import { InjectError } from './errors.ts';
import { NAMES, parseInjectSettings, type InjectSettings } from './settings.ts';
import { UsageError } from '../store/errors.ts';
import { sidecarParts } from './sidecar.ts';
import { findPodTargets, getAt, isObject, type Json, type Path, type PodTarget } from './workload.ts';

/** `set`: put a value at a path (creating missing maps); `append`: add to a list (creating it). */
export type Edit = { readonly op: 'set'; readonly path: Path; readonly value: Json } | { readonly op: 'append'; readonly path: Path; readonly value: Json };

export type TargetOutcome =
  | { readonly kind: 'skip'; readonly why: string }
  | { readonly kind: 'unchanged'; readonly role: SidecarRole; readonly marker: string }
  | { readonly kind: 'injected-differently'; readonly role: SidecarRole; readonly found: string; readonly expected: string }
  | { readonly kind: 'inject'; readonly role: SidecarRole; readonly marker: string; readonly edits: readonly Edit[]; readonly warnings: readonly string[] };

export type ObjectPlan =
  | { readonly kind: 'unsupported'; readonly why: string }
  | { readonly kind: 'supported'; readonly targets: readonly { readonly target: PodTarget; readonly outcome: TargetOutcome }[] };

/** Every edit of every target to inject (empty when nothing changes). */
export function editsOf(plan: ObjectPlan): Edit[] {
  if (plan.kind === 'unsupported') return [];
  return plan.targets.flatMap((t) => (t.outcome.kind === 'inject' ? t.outcome.edits : []));
}

function annotation(obj: unknown, metaPath: Path | undefined, key: string): unknown {
  if (metaPath === undefined) return undefined;
  const ann = getAt(obj, [...metaPath, 'annotations']);
  return isObject(ann) ? ann[key] : undefined;
}

/** An sws annotation from the pod template or the workload (they must agree); undefined if on neither. */
function swsAnnotation(obj: unknown, t: PodTarget, key: string): string | undefined {
  const onPod = annotation(obj, t.podMetaPath, key);
  const onWorkload = annotation(obj, t.workloadMetaPath, key);
  for (const v of [onPod, onWorkload]) {
    if (v !== undefined && v !== null && typeof v !== 'string') throw new InjectError('invalid', `${t.display}: annotation ${key} must be a string`);
  }
  if (onPod != null && onWorkload != null && onPod !== onWorkload) {
    throw new InjectError('invalid', `${t.display}: annotation ${key} is "${String(onWorkload)}" on the workload but "${String(onPod)}" on its pod template`);
  }
  return (onPod ?? onWorkload ?? undefined) as string | undefined;
}

/** The requested role, from the pod template or the workload; undefined when none is asked for. */
export function requestedRole(obj: unknown, t: PodTarget): SidecarRole | undefined {
  const role = swsAnnotation(obj, t, ROLE_ANNOTATION);
  if (role !== undefined && !(SIDECAR_ROLES as readonly string[]).includes(role)) {
    throw new InjectError('invalid', `${t.display}: annotation ${ROLE_ANNOTATION} must be "inner" or "outer", not ${JSON.stringify(role).slice(0, 40)}`);
  }
  return role as SidecarRole | undefined;
}

/** The settings with this workload's overrides (annotation sws.dev/data-volume). */
function workloadSettings(obj: unknown, t: PodTarget, s: InjectSettings): InjectSettings {
  const dataVolume = swsAnnotation(obj, t, DATA_VOLUME_ANNOTATION);
  if (dataVolume === undefined) return s;
  try {
    return parseInjectSettings({ dataVolume }, s);
  } catch (e) {
    if (e instanceof UsageError) throw new InjectError('invalid', `${t.display}: annotation ${DATA_VOLUME_ANNOTATION} must be emptyDir, emptyDir:SIZE or pvc:CLAIM-NAME`);
    throw e;
  }
}

function listAt(obj: unknown, path: Path, t: PodTarget, required: boolean): Json[] {
  const v = getAt(obj, path);
  if (Array.isArray(v)) return v;
  if (v === undefined || v === null) {
    if (required) throw new InjectError('invalid', `${t.display}: ${path.join('.')} must be a list of containers`);
    return [];
  }
  throw new InjectError('invalid', `${t.display}: ${path.join('.')} must be a list, not ${typeof v}`);
}

const nameOf = (x: Json): unknown => (isObject(x) ? x.name : undefined);

/** The marker: injector version and a hash of exactly what is added, so any change shows. */
export function markerFor(role: SidecarRole, added: Json): string {
  const hash = createHash('sha256').update(JSON.stringify({ role, added })).digest('hex').slice(0, 16);
  return `${INJECTOR_VERSION}.${hash}`;
}

function planTarget(obj: unknown, t: PodTarget, global: InjectSettings): TargetOutcome {
  const role = requestedRole(obj, t);
  if (role === undefined) return { kind: 'skip', why: `no ${ROLE_ANNOTATION} annotation` };
  const s = workloadSettings(obj, t, global);

  const spec = getAt(obj, t.podSpecPath);
  if (!isObject(spec)) throw new InjectError('invalid', `${t.display}: ${t.podSpecPath.join('.')} must be a pod spec (a mapping)`);
  const containers = listAt(obj, [...t.podSpecPath, 'containers'], t, true);
  const initContainers = listAt(obj, [...t.podSpecPath, 'initContainers'], t, false);
  const volumes = listAt(obj, [...t.podSpecPath, 'volumes'], t, false);

  const restartPolicy = typeof spec.restartPolicy === 'string' ? spec.restartPolicy : 'Always';
  const native = s.nativeSidecar === 'always' || (s.nativeSidecar === 'auto' && restartPolicy !== 'Always');
  const parts = sidecarParts(role, s, native);
  const marker = markerFor(role, { initContainers: parts.initContainers, containers: parts.containers, volumes: parts.volumes });

  const found = annotation(obj, t.podMetaPath, INJECTED_ANNOTATION);
  if (found !== undefined && found !== null) {
    return found === marker ? { kind: 'unchanged', role, marker } : { kind: 'injected-differently', role, found: String(found), expected: marker };
  }

  // Pods share one network namespace and one name space for containers and volumes.
  const ours = new Set([...parts.initContainers, ...parts.containers].map(nameOf));
  for (const c of [...containers, ...initContainers, ...listAt(obj, [...t.podSpecPath, 'ephemeralContainers'], t, false)]) {
    const n = nameOf(c);
    if (ours.has(n)) throw new InjectError('conflict', `${t.display}: a container named "${String(n)}" already exists; sws needs that name for its sidecar (rename yours)`);
  }
  const ourVolumes = new Set(parts.volumes.map(nameOf));
  for (const v of volumes) {
    const n = nameOf(v);
    if (ourVolumes.has(n)) throw new InjectError('conflict', `${t.display}: a volume named "${String(n)}" already exists; sws needs that name (rename yours)`);
  }
  // Ports: every regular container, and init containers that keep running (native sidecars).
  const running = [...containers, ...initContainers.filter((c) => isObject(c) && c.restartPolicy === 'Always')];
  for (const c of running) {
    const ports = isObject(c) && Array.isArray(c.ports) ? c.ports : [];
    for (const p of ports) {
      if (!isObject(p)) continue;
      if (typeof p.containerPort === 'number' && parts.ports.includes(p.containerPort) && (p.protocol ?? 'TCP') === 'TCP') {
        throw new InjectError(
          'conflict',
          `${t.display}: container "${String(nameOf(c))}" uses port ${p.containerPort}, which the ${role} sidecar needs; choose other ports with --${role}-port / --admin-port`,
        );
      }
      if (typeof p.name === 'string' && parts.portNames.includes(p.name)) {
        throw new InjectError('conflict', `${t.display}: container "${String(nameOf(c))}" has a port named "${p.name}", which the sidecar needs (rename yours)`);
      }
    }
  }

  const edits: Edit[] = [{ op: 'set', path: [...t.podMetaPath, 'annotations', INJECTED_ANNOTATION], value: marker }];
  // The role on the pod template too, so the pods (and the webhook) see it.
  if (annotation(obj, t.podMetaPath, ROLE_ANNOTATION) == null) edits.push({ op: 'set', path: [...t.podMetaPath, 'annotations', ROLE_ANNOTATION], value: role });
  for (const c of parts.initContainers) edits.push({ op: 'append', path: [...t.podSpecPath, 'initContainers'], value: c });
  for (const c of parts.containers) edits.push({ op: 'append', path: [...t.podSpecPath, 'containers'], value: c });
  for (const v of parts.volumes) edits.push({ op: 'append', path: [...t.podSpecPath, 'volumes'], value: v });
  const warnings: string[] = [];
  if (s.dataVolume.kind === 'pvc') {
    const pvc = pvcEdits(obj, t, s, s.dataVolume.claimName);
    edits.push(...pvc.edits);
    warnings.push(...pvc.warnings);
  }
  return { kind: 'inject', role, marker, edits, warnings };
}

/** Kinds whose pods all run from one template with `spec.replicas` copies (default 1). */
const REPLICATED_KINDS = new Set(['Deployment', 'StatefulSet', 'ReplicaSet', 'ReplicationController']);

/**
 * A PVC data dir: the volume keeps the owner the storage gave it (often root), and the sidecar
 * runs as a non-root user, so the pod needs `securityContext.fsGroup` (Kubernetes then makes
 * the volume group-writable for that group and adds the group to every container). It is set
 * to the sidecar's group when the pod has none; an existing one is kept. Not part of the
 * marker: it is a pod setting derived from the same settings the marker already covers.
 *
 * The warnings: one data dir is one SQLite database and, at an inner, one process's sessions
 * (docs/SCALING.md); several pods on one claim share neither safely.
 */
function pvcEdits(obj: unknown, t: PodTarget, s: InjectSettings, claim: string): { edits: Edit[]; warnings: string[] } {
  const edits: Edit[] = [];
  const warnings: string[] = [];
  const podSc = getAt(obj, [...t.podSpecPath, 'securityContext']);
  const fsGroup = isObject(podSc) ? podSc.fsGroup : undefined;
  if (fsGroup === undefined || fsGroup === null) {
    edits.push({ op: 'set', path: [...t.podSpecPath, 'securityContext', 'fsGroup'], value: s.runAsUser });
  } else if (fsGroup !== s.runAsUser) {
    warnings.push(
      `${t.display}: the pod's securityContext.fsGroup is ${JSON.stringify(fsGroup)}, not the sidecar's group ${s.runAsUser}; kept as it is. ` +
        `The sidecar can write pvc:${claim} only through that group (Kubernetes adds it to every container): make sure the volume type supports fsGroup, or use --run-as-user ${JSON.stringify(fsGroup)}`,
    );
  }
  const workload = t.workloadMetaPath?.slice(0, -1);
  if (workload !== undefined && REPLICATED_KINDS.has(t.kind)) {
    const replicas = getAt(obj, [...workload, 'spec', 'replicas']);
    if (typeof replicas === 'number' && replicas > 1) {
      warnings.push(
        `${t.display}: ${replicas} replicas share the data volume pvc:${claim}, but a data dir belongs to one sidecar process ` +
          `(one SQLite database, and at an inner one process's sessions): run 1 replica (docs/KUBERNETES.md, docs/SCALING.md)`,
      );
    }
    if (t.kind === 'Deployment') {
      const strategy = getAt(obj, [...workload, 'spec', 'strategy', 'type']);
      if (strategy !== 'Recreate') {
        warnings.push(
          `${t.display}: with strategy ${typeof strategy === 'string' ? strategy : 'RollingUpdate (the default)'} a rollout starts the new pod while the old one still holds pvc:${claim}; use strategy: {type: Recreate}`,
        );
      }
    }
  } else if (t.kind === 'DaemonSet') {
    warnings.push(`${t.display}: a DaemonSet runs a pod on every node, all on the one data volume pvc:${claim}, but a data dir belongs to one sidecar process: use emptyDir or one workload per claim`);
  }
  return { edits, warnings };
}

/** Plans the injection of every pod template in `obj` (a plain JSON value). */
export function planInjection(obj: unknown, s: InjectSettings): ObjectPlan {
  const found = findPodTargets(obj);
  if (found.kind === 'unsupported') return found;
  return { kind: 'supported', targets: found.targets.map((target) => ({ target, outcome: planTarget(obj, target, s) })) };
}

/** The names injection adds, for tools that strip an injection again (tests, a future uninject). */
export const INJECTED_NAMES = {
  containers: [NAMES.container('inner'), NAMES.container('outer'), NAMES.init],
  volumes: Object.values(NAMES.volumes),
  annotations: [INJECTED_ANNOTATION, ROLE_ANNOTATION],
  /** Set in the pod's securityContext for a PVC data dir when the pod has none. */
  podSecurityContext: ['fsGroup'],
} as const;

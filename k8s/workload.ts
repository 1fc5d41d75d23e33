/**
 * Where the pod template of each supported kind lives. A kind is recognized by apiVersion and
 * kind together (a CRD that happens to be called `Deployment` is not ours to change); a `v1`
 * `List` (what `kubectl get -o yaml` prints) is searched item by item.
 */
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
export type JsonObject = { [key: string]: Json };
export type Path = readonly (string | number)[];

export interface PodTarget {
  /** `Deployment/web`, for messages. */
  readonly display: string;
  readonly kind: string;
  /** The pod spec (`spec.template.spec` of a Deployment, `spec` of a Pod). */
  readonly podSpecPath: Path;
  /** The pod's metadata (`spec.template.metadata` of a Deployment, `metadata` of a Pod). */
  readonly podMetaPath: Path;
  /** The workload's own metadata, where it differs from the pod's. */
  readonly workloadMetaPath?: Path;
}

const TEMPLATE: Path = ['spec', 'template'];
/** `apiVersion kind` → path of the pod template (`[]` for a Pod itself). */
const POD_TEMPLATE_AT: Readonly<Record<string, Path>> = {
  'v1 Pod': [],
  'apps/v1 Deployment': TEMPLATE,
  'apps/v1 StatefulSet': TEMPLATE,
  'apps/v1 DaemonSet': TEMPLATE,
  'apps/v1 ReplicaSet': TEMPLATE,
  'v1 ReplicationController': TEMPLATE,
  'batch/v1 Job': TEMPLATE,
  'batch/v1 CronJob': ['spec', 'jobTemplate', 'spec', 'template'],
};

export const SUPPORTED_KINDS: readonly string[] = Object.keys(POD_TEMPLATE_AT);

export const isObject = (v: unknown): v is JsonObject => typeof v === 'object' && v !== null && !Array.isArray(v);

export function getAt(root: unknown, path: Path): unknown {
  let cur: unknown = root;
  for (const seg of path) {
    if (typeof seg === 'number') cur = Array.isArray(cur) ? cur[seg] : undefined;
    else cur = isObject(cur) ? cur[seg] : undefined;
    if (cur === undefined) return undefined;
  }
  return cur;
}

export function displayName(obj: unknown): string {
  const kind = isObject(obj) && typeof obj.kind === 'string' ? obj.kind : '(no kind)';
  const meta = isObject(obj) ? obj.metadata : undefined;
  const name = isObject(meta) ? (typeof meta.name === 'string' ? meta.name : typeof meta.generateName === 'string' ? `${meta.generateName}*` : undefined) : undefined;
  return `${kind}/${name ?? '(unnamed)'}`;
}

export type Targets =
  | { readonly kind: 'supported'; readonly targets: readonly PodTarget[] }
  | { readonly kind: 'unsupported'; readonly why: string };

/** The pod templates in `obj` (one, or one per List item); `unsupported` for everything else. */
export function findPodTargets(obj: unknown, base: Path = []): Targets {
  if (!isObject(obj)) return { kind: 'unsupported', why: 'not a Kubernetes object (a mapping with apiVersion and kind)' };
  const { apiVersion, kind } = obj;
  if (typeof apiVersion !== 'string' || typeof kind !== 'string') return { kind: 'unsupported', why: 'no apiVersion or kind' };
  if (apiVersion === 'v1' && kind === 'List') {
    const items = obj.items;
    if (!Array.isArray(items)) return { kind: 'supported', targets: [] };
    const targets: PodTarget[] = [];
    items.forEach((item, i) => {
      const t = findPodTargets(item, [...base, 'items', i]);
      if (t.kind === 'supported') targets.push(...t.targets);
    });
    return { kind: 'supported', targets };
  }
  const at = POD_TEMPLATE_AT[`${apiVersion} ${kind}`];
  if (at === undefined) return { kind: 'unsupported', why: `${apiVersion} ${kind} has no pod template sws knows` };
  const template = [...base, ...at];
  return {
    kind: 'supported',
    targets: [
      {
        display: displayName(obj),
        kind,
        podSpecPath: [...template, 'spec'],
        podMetaPath: [...template, 'metadata'],
        ...(at.length > 0 ? { workloadMetaPath: [...base, 'metadata'] } : {}),
      },
    ],
  };
}

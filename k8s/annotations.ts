/**
 * The names sws reads and writes on Kubernetes objects.
 *
 * - `sws.dev/role: inner|outer` (annotation, on the workload or its pod template) asks for a
 *   sidecar: `inner` beside a WWW server, `outer` where clients connect.
 * - `sws.dev/injected: v1.<hash>` (annotation, written on the pod template / pod) marks an
 *   injected pod; the hash covers everything that was added, so the same settings are
 *   recognized (no-op) and different ones are reported.
 * - `sws.dev/data-volume: emptyDir | emptyDir:SIZE | pvc:CLAIM` (annotation, same places as the
 *   role) overrides the `--data-volume` setting for one workload, e.g. its own PVC, so the
 *   webhook and `sws inject` give it the same sidecar.
 * - `sws.dev/inject: enabled` (label, on a namespace or a pod) selects what the admission
 *   webhook sees (MutatingWebhookConfiguration selectors in deploy/webhook/).
 */
export const ROLE_ANNOTATION = 'sws.dev/role';
export const INJECTED_ANNOTATION = 'sws.dev/injected';
export const DATA_VOLUME_ANNOTATION = 'sws.dev/data-volume';
export const INJECT_LABEL = 'sws.dev/inject';
export const INJECT_LABEL_VALUE = 'enabled';
/** The version of what injection adds; part of the marker, bumped when the shape changes. */
export const INJECTOR_VERSION = 'v1';

export type SidecarRole = 'inner' | 'outer';
export const SIDECAR_ROLES: readonly SidecarRole[] = ['inner', 'outer'];

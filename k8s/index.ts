/**
 * Kubernetes integration: sidecar injection for `sws inject` (YAML streams) and the mutating
 * admission webhook (AdmissionReview → JSON Patch), from one plan (plan.ts). Everything here
 * but webhook.ts is pure (no files, sockets or environment).
 */
export { ROLE_ANNOTATION, INJECTED_ANNOTATION, DATA_VOLUME_ANNOTATION, INJECT_LABEL, INJECT_LABEL_VALUE, INJECTOR_VERSION, SIDECAR_ROLES, type SidecarRole } from './annotations.ts';
export { InjectError, type InjectErrorReason } from './errors.ts';
export { defaultInjectSettings, parseInjectSettings, forRole, NAMES, PATHS, type InjectSettings, type InjectFlags, type DataVolume } from './settings.ts';
export { findPodTargets, SUPPORTED_KINDS, type Json, type JsonObject, type Path, type PodTarget } from './workload.ts';
export { sidecarParts, type SidecarParts } from './sidecar.ts';
export { planInjection, editsOf, markerFor, INJECTED_NAMES, type Edit, type ObjectPlan, type TargetOutcome } from './plan.ts';
export { concretize, toJsonPatch, jsonPointer, type ConcreteEdit, type JsonPatchOp } from './edits.ts';
export { applyToDocument } from './document.ts';
export { injectYamlStream, joinStreams, detectIndentSeq, detectFlowPadding, YAML_OPTIONS, type DocumentReport, type InjectStreamResult } from './stream.ts';
export { admit, ADMISSION_API_VERSION, type AdmissionAnswer } from './admission.ts';

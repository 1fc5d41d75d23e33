/**
 * The mutating admission decision (admission.k8s.io/v1 AdmissionReview), with no I/O: the
 * request body in, an HTTP status and a body out. The injection is the same as `sws inject`
 * (plan.ts); the patch is RFC 6902 JSON Patch, base64 in `response.patch`.
 *
 * Failure semantics:
 * - A body that is not an AdmissionReview v1 with `request.uid` cannot be answered (the
 *   response must echo the uid): HTTP 400 with a message. The API server then applies the
 *   webhook's failurePolicy (deploy/webhook/ uses Fail: a pod that asked for sws is never
 *   started unprotected because the webhook misbehaved).
 * - Objects sws must not touch (not a pod template kind, no `sws.dev/role`, not a CREATE, no
 *   object, already injected) → `allowed: true`, no patch. Injected before with other
 *   settings → allowed, no patch, and a warning the client (kubectl) prints.
 * - A pod that asks for a sidecar that cannot be added (a name, volume or port is taken, a bad
 *   role value) → `allowed: false` with the reason: fail closed, never a pod without its sidecar.
 */
import { zod } from '../store/zod.ts';
import { InjectError } from './errors.ts';
import { toJsonPatch } from './edits.ts';
import { editsOf, planInjection } from './plan.ts';
import type { InjectSettings } from './settings.ts';
import { displayName, isObject, type Json } from './workload.ts';

export const ADMISSION_API_VERSION = 'admission.k8s.io/v1';

// Loaded with this module: only the webhook imports it.
const z = zod();

const reviewSchema = z.object({
  apiVersion: z.literal(ADMISSION_API_VERSION, { error: `apiVersion must be ${ADMISSION_API_VERSION}` }),
  kind: z.literal('AdmissionReview', { error: 'kind must be AdmissionReview' }),
  request: z.object(
    {
      uid: z.string({ error: 'request.uid is required' }).min(1, { error: 'request.uid is required' }).max(256),
      kind: z.object({ group: z.string(), version: z.string(), kind: z.string() }).partial().optional(),
      operation: z.string().optional(),
      namespace: z.string().optional(),
      name: z.string().optional(),
      object: z.unknown().optional(),
      dryRun: z.boolean().optional(),
    },
    { error: 'request is required' },
  ),
});

export type AdmissionOutcome = 'patched' | 'unchanged' | 'ignored' | 'denied';

export interface AdmissionAnswer {
  readonly status: number;
  /** JSON (an AdmissionReview) for 200, text otherwise. */
  readonly body: string;
  readonly contentType: string;
  /** For the log line: never the object itself. */
  readonly log: { readonly outcome: AdmissionOutcome | 'malformed'; readonly uid?: string; readonly object?: string; readonly namespace?: string; readonly why?: string };
}

function badRequest(message: string): AdmissionAnswer {
  return { status: 400, body: `malformed AdmissionReview: ${message}\n`, contentType: 'text/plain; charset=utf-8', log: { outcome: 'malformed', why: message } };
}

interface ResponseFields {
  allowed: boolean;
  patch?: string;
  patchType?: 'JSONPatch';
  status?: { code: number; message: string };
  warnings?: string[];
}

/** Answers one AdmissionReview request body. */
export function admit(body: string, settings: InjectSettings): AdmissionAnswer {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch {
    return badRequest('the body is not JSON');
  }
  const r = reviewSchema.safeParse(parsed);
  if (!r.success) {
    const issue = r.error.issues[0];
    return badRequest(issue ? `${issue.path.join('.') || 'body'}: ${issue.message}` : 'invalid');
  }
  const req = r.data.request;
  const answer = (fields: ResponseFields, outcome: AdmissionOutcome, object?: string, why?: string): AdmissionAnswer => ({
    status: 200,
    contentType: 'application/json',
    body: JSON.stringify({ apiVersion: ADMISSION_API_VERSION, kind: 'AdmissionReview', response: { uid: req.uid, ...fields } }),
    log: { outcome, uid: req.uid, ...(object ? { object } : {}), ...(req.namespace ? { namespace: req.namespace } : {}), ...(why ? { why } : {}) },
  });

  if ((req.operation ?? 'CREATE') !== 'CREATE') return answer({ allowed: true }, 'ignored', undefined, `operation ${req.operation}`);
  if (!isObject(req.object)) return answer({ allowed: true }, 'ignored', undefined, 'no object');
  const object = req.object;
  // The API server sends full objects; fill apiVersion/kind from request.kind if a client did not.
  const forPlanning: Json = { ...object };
  if (typeof forPlanning.kind !== 'string' && req.kind?.kind) forPlanning.kind = req.kind.kind;
  if (typeof forPlanning.apiVersion !== 'string' && req.kind?.version) forPlanning.apiVersion = req.kind.group ? `${req.kind.group}/${req.kind.version}` : req.kind.version;
  const name = displayName(forPlanning);

  let plan;
  try {
    plan = planInjection(forPlanning, settings);
  } catch (e) {
    if (e instanceof InjectError) {
      return answer({ allowed: false, status: { code: 400, message: `sws sidecar injection: ${e.message}` } }, 'denied', name, e.reason);
    }
    throw e;
  }
  if (plan.kind === 'unsupported') return answer({ allowed: true }, 'ignored', name, plan.why);
  const warnings: string[] = [];
  for (const { target, outcome } of plan.targets) {
    if (outcome.kind === 'injected-differently') {
      warnings.push(`sws: ${target.display} was injected with other settings (${outcome.found}); left as it is`);
    }
    if (outcome.kind === 'inject') warnings.push(...outcome.warnings.map((w) => `sws: ${w}`));
  }
  const edits = editsOf(plan);
  if (edits.length === 0) {
    const unchanged = plan.targets.some((t) => t.outcome.kind === 'unchanged' || t.outcome.kind === 'injected-differently');
    return answer({ allowed: true, ...(warnings.length ? { warnings } : {}) }, unchanged ? 'unchanged' : 'ignored', name);
  }
  const patch = toJsonPatch(object, edits);
  return answer(
    { allowed: true, patchType: 'JSONPatch', patch: Buffer.from(JSON.stringify(patch)).toString('base64'), ...(warnings.length ? { warnings } : {}) },
    'patched',
    name,
  );
}

/**
 * Why an injection was refused. Every case is bad input (exit 2 from the CLI, a denied or
 * unpatched AdmissionReview from the webhook): the code is SWS_ERR_USAGE so the CLI's one
 * exit-code table applies, and `reason` says which case it is for callers that branch on it.
 */
import { UsageError } from '../store/errors.ts';

export type InjectErrorReason =
  /** Not parseable as YAML, or a supported kind whose shape is wrong (no containers list...). */
  | 'invalid'
  /** A container, volume, port or port name the sidecar needs is already taken. */
  | 'conflict'
  /** Injected before (marker annotation) with different settings. */
  | 'already-injected';

export class InjectError extends UsageError {
  readonly reason: InjectErrorReason;
  constructor(reason: InjectErrorReason, message: string, field?: string) {
    super(message, field);
    this.reason = reason;
  }
}

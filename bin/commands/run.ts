/**
 * Shared by `sws inner start` and `sws outer start`: parse numeric flags, run a sidecar
 * until SIGTERM/SIGINT, then stop it gracefully (stop accepting, finish in-flight requests
 * within the grace period, close the database).
 */
import { UsageError } from '../../store/index.ts';

export function intFlag(value: string | undefined, flag: string, min: number, max: number): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d+$/.test(value) || Number(value) < min || Number(value) > max) throw new UsageError(`must be an integer from ${min} to ${max}`, flag);
  return Number(value);
}

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

export interface Stoppable {
  stop(graceMs?: number): Promise<void>;
}

/** Resolves when the sidecar stopped after a termination signal. */
export function runUntilSignal(sidecar: Stoppable): Promise<void> {
  return new Promise((resolve, reject) => {
    let stopping = false;
    const onSignal = () => {
      if (stopping) return;
      stopping = true;
      process.off('SIGTERM', onSignal);
      process.off('SIGINT', onSignal);
      sidecar.stop().then(resolve, reject);
    };
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
  });
}

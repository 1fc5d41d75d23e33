/**
 * Shared by `sws inner start` and `sws outer start`: parse numeric flags, run a sidecar
 * until SIGTERM/SIGINT, then stop it gracefully (stop accepting, finish in-flight requests
 * within the grace period, close the database).
 */
import { schemas } from '../../store/index.ts';
import type { ListenAddress } from '../../sidecar-shared/listen.ts';

/** A decimal integer flag from `min` to `max` (zod, store/validate.ts); the error names `flag`. */
export function intFlag(value: string | undefined, flag: string, min: number, max: number): number | undefined {
  if (value === undefined) return undefined;
  return schemas.check(schemas.intSchema(min, max), value, flag);
}

/** `--listen` / `--admin-listen`: HOST:PORT, [v6]:PORT or :PORT; the error names `flag` (exit 2). */
export function listenFlag(value: string, flag: string): ListenAddress {
  return schemas.check(schemas.listenSchema, value, flag);
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

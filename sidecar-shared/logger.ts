/**
 * Structured JSON logs (pino). One access/audit line per request; never a secret or a body.
 * Headers are never logged whole: callers pick fields, and the redaction list is a backstop.
 * Access lines are written by AccessLog (accesslog.ts) into the same stream, in pino's format.
 */
import { pino, type Logger, type DestinationStream, type LoggerOptions } from 'pino';
import { AccessBatch, AccessLog } from './accesslog.ts';

export type { Logger };

const REDACT_PATHS = ['password', '*.password', 'authorization', '*.authorization', 'proxy-authorization', '*.proxy-authorization', 'cookie', '*.cookie', 'key', '*.privateKey'];

/** pino's options for a sidecar's logger (exported so tests can compare access lines with pino's own). */
export function loggerOptions(role: 'inner' | 'outer', level = 'info'): LoggerOptions {
  return {
    level,
    base: { role, pid: process.pid },
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
    timestamp: pino.stdTimeFunctions.isoTime,
  };
}

/** A sidecar's logger; its access lines (AccessLog.of) are batched into the same destination. */
export function createLogger(opts: { role: 'inner' | 'outer'; level?: string; destination?: DestinationStream }): Logger {
  const batch = new AccessBatch(opts.destination ?? pino.destination({ fd: 1, sync: false }));
  const options = loggerOptions(opts.role, opts.level);
  const log = pino(options, batch);
  AccessLog.attach(log, batch, options);
  return log;
}

/**
 * Structured JSON logs (pino). One access/audit line per request; never a secret or a body.
 * Headers are never logged whole: callers pick fields, and the redaction list is a backstop.
 */
import { pino, type Logger, type DestinationStream } from 'pino';

export type { Logger };

export function createLogger(opts: { role: 'inner' | 'outer'; level?: string; destination?: DestinationStream }): Logger {
  return pino(
    {
      level: opts.level ?? 'info',
      base: { role: opts.role, pid: process.pid },
      redact: { paths: ['password', '*.password', 'authorization', '*.authorization', 'proxy-authorization', '*.proxy-authorization', 'cookie', '*.cookie', 'key', '*.privateKey'], censor: '[redacted]' },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    opts.destination ?? pino.destination({ fd: 1, sync: false }),
  );
}

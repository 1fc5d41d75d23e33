/** Graceful shutdown shared by both sidecars: stop accepting, let in-flight requests finish within the grace period. */
import type { Server } from 'node:http';
import type { Logger } from './logger.ts';

/** Closes `server` for new connections; connections still busy after `graceMs` are cut. Then closes `admin`. */
export async function drainAndClose(server: Server, admin: Server | undefined, graceMs: number): Promise<void> {
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  server.closeIdleConnections();
  const timer = setTimeout(() => server.closeAllConnections(), graceMs);
  await closed;
  clearTimeout(timer);
  if (admin) await new Promise<void>((resolve) => admin.close(() => resolve()));
}

/** Hands every pending line to the destination: batched access lines first (logger.flush reaches AccessBatch.flush), then pino's. */
export function flushLog(log: Logger): Promise<void> {
  return new Promise<void>((resolve) => log.flush(() => resolve()));
}

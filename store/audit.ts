/** The audit trail of admin changes (who, when, what; never a secret), newest first. */
import { internals, type Store } from './db.ts';

export interface AuditEntry {
  id: number;
  at: string;
  actor: string;
  action: string;
  subject: string;
  detail: Record<string, unknown>;
}

interface AuditRow {
  id: number;
  at: string;
  actor: string;
  action: string;
  subject: string;
  detail: string;
}

export function auditLog(store: Store): { list(limit?: number): AuditEntry[] } {
  const i = internals(store);
  return {
    list(limit = 50) {
      return i.read(() =>
        (i.prepare('SELECT * FROM audit_log ORDER BY id DESC LIMIT ?').all(limit) as AuditRow[]).map((r) => ({
          ...r,
          detail: JSON.parse(r.detail) as Record<string, unknown>,
        })),
      );
    },
  };
}

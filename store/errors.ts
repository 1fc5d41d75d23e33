/**
 * Errors raised by the store, the ACL engine and the admin command line. Each has a stable
 * `code`; `bin/commands/common.ts` maps codes to exit codes and the sidecars map them to
 * HTTP statuses. Messages name the field or file at fault and say what to do; they never
 * carry secrets. No Node imports: the path normalizer (pure) raises PathAmbiguousError.
 */
import { SwsError } from '../core/errors.ts';

export { SwsError };

export const StoreErrorCodes = {
  /** Missing, malformed or conflicting argument or field (exit 2). */
  USAGE: 'SWS_ERR_USAGE',
  /** The data dir belongs to the other role (exit 2). */
  ROLE: 'SWS_ERR_ROLE',
  /** No sws data dir at that place (exit 1). */
  NOT_INITIALIZED: 'SWS_ERR_NOT_INITIALIZED',
  /** The named user, server, site, client or rule does not exist (exit 1). */
  NOT_FOUND: 'SWS_ERR_NOT_FOUND',
  /** It exists already (exit 1). */
  EXISTS: 'SWS_ERR_EXISTS',
  /** Another process holds the database write lock past the busy timeout (exit 1). */
  DB_LOCKED: 'SWS_ERR_DB_LOCKED',
  /** The database file is damaged or is not an sws database (exit 1). */
  DB_CORRUPT: 'SWS_ERR_DB_CORRUPT',
  /** The database was written by a newer sws (exit 1). */
  DB_VERSION: 'SWS_ERR_DB_VERSION',
  /** The master key is missing, malformed or does not belong to this data dir (exit 1). */
  MASTER_KEY: 'SWS_ERR_MASTER_KEY',
  /** A request path cannot be normalized unambiguously (exit 2; HTTP 400). */
  PATH_AMBIGUOUS: 'SWS_ERR_PATH_AMBIGUOUS',
  /** A host name or authority is not valid (exit 2; HTTP 400). */
  HOST: 'SWS_ERR_HOST',
  /** The ACL denies the request (exit 3; HTTP 403). */
  ACL_DENIED: 'SWS_ERR_ACL_DENIED',
} as const;

export type StoreErrorCode = (typeof StoreErrorCodes)[keyof typeof StoreErrorCodes];

/** Bad input. `field` names the flag, argument or property at fault (e.g. `--upstream`). */
export class UsageError extends SwsError {
  readonly field: string | undefined;
  constructor(message: string, field?: string, options?: { cause?: unknown }) {
    super(StoreErrorCodes.USAGE, field ? `${field}: ${message}` : message, options);
    this.field = field;
  }
}
export class RoleError extends SwsError {
  constructor(message: string) {
    super(StoreErrorCodes.ROLE, message);
  }
}
export class NotInitializedError extends SwsError {
  constructor(message: string) {
    super(StoreErrorCodes.NOT_INITIALIZED, message);
  }
}
export class NotFoundError extends SwsError {
  constructor(message: string) {
    super(StoreErrorCodes.NOT_FOUND, message);
  }
}
export class ExistsError extends SwsError {
  constructor(message: string) {
    super(StoreErrorCodes.EXISTS, message);
  }
}
export class DbLockedError extends SwsError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(StoreErrorCodes.DB_LOCKED, message, options);
  }
}
export class DbCorruptError extends SwsError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(StoreErrorCodes.DB_CORRUPT, message, options);
  }
}
export class DbVersionError extends SwsError {
  constructor(message: string) {
    super(StoreErrorCodes.DB_VERSION, message);
  }
}
export class MasterKeyError extends SwsError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(StoreErrorCodes.MASTER_KEY, message, options);
  }
}
export class PathAmbiguousError extends SwsError {
  constructor(message: string) {
    super(StoreErrorCodes.PATH_AMBIGUOUS, message);
  }
}
export class HostError extends SwsError {
  constructor(message: string) {
    super(StoreErrorCodes.HOST, message);
  }
}
export class AclDeniedError extends SwsError {
  constructor(message: string) {
    super(StoreErrorCodes.ACL_DENIED, message);
  }
}

/**
 * The store's whole public surface: the data dir (one SQLite file per sidecar, its role and the
 * master key), the outer's lists (users = client list 17, inner servers = list 19), the inner's
 * tables (its key 39, sites, registered clients) and the ACL 30 with its engine and the strict
 * path normalizer. Sidecars and bin/ import from here only.
 */
export type { Role, Store, OpenStoreOptions } from './db.ts';
export { openStore, resolveDataDir, peekRole, ROLES, DB_FILE } from './db.ts';
export { initStore, type InitOptions, type InitResult } from './init.ts';
export { MASTER_KEY_ENV, MASTER_KEY_FILE } from './masterkey.ts';
export { DEFAULT_SCRYPT, type ScryptParams } from './password.ts';
export { SCHEMA_VERSION, MIGRATIONS } from './migrations.ts';

export { outerUsers, innerServers, type OuterUser, type OuterUsers, type InnerServer, type InnerServers, type AddInnerServer } from './outer.ts';
export { innerKey, sites, clients, type InnerKey, type Site, type Sites, type RegisteredClient, type Clients } from './inner.ts';
export { auditLog, type AuditEntry } from './audit.ts';

export { aclEngine, type AclEngine, type AclExplanation } from './acl/engine.ts';
export { aclRules, type AclRules, type GrantInput, type GrantResult, type RevokeResult } from './acl/rules.ts';
export type { AclRule, AclDecision, RuleExplanation } from './acl/trie.ts';
export { normalizeTarget, parseRequestUrl, MAX_TARGET_LENGTH, type NormalizedPath, type ParsedRequestUrl } from './acl/normalize.ts';
export { normalizeHost } from './acl/host.ts';
export { parsePattern, type ParsedPattern } from './acl/pattern.ts';

export { SqliteExchangeReplayGuard, REPLAY_DB_FILE } from './replay.ts';
export { innerKeys, DEFAULT_OVERLAP_SECONDS, type InnerKeys, type InnerKeyRecord, type InnerKeyState, type RotateResult } from './innerkeys.ts';
export { endorseKey, parseEndorsement, verifyEndorsement, EndorsementError, type KeyEndorsement } from './endorsement.ts';
export { updateInnerServer, type ServerUpdate } from './serverkeys.ts';
// Certificates (ca.ts, certcheck.ts, clientcerts.ts, usercerts.ts, x509.ts) are imported
// from their modules directly: they load @peculiar/x509, which commands that never touch a
// certificate should not pay for at start-up.
export * from './errors.ts';
export * as schemas from './validate.ts';

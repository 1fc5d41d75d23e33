/**
 * Declarative configuration for GitOps (`sws apply -f FILE`): the file format (schema.ts),
 * reading and checking it (load.ts), the differences to a data dir (diff.ts) and applying
 * them in one transaction (apply.ts).
 */
export { CONFIG_VERSION, configSchema, type ConfigFile } from './schema.ts';
export { parseConfig, readConfigFile, ruleKey, type DesiredState } from './load.ts';
export { diffState, summarize, warningsFor, type Change, type ChangeAction, type ChangeKind } from './diff.ts';
export { applyDesiredState, currentState, type ApplyOptions, type ApplyResult } from './apply.ts';

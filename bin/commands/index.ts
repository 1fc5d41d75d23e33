/**
 * Every command module of `sws`, one line each: the command words it adds and how to load it.
 * A module exports `register(program, ctx)`; it may extend a group another module created
 * (`group(program, 'inner')` from ./common.ts gets or creates it), so the order does not matter.
 *
 * Modules load lazily: `sws user add` loads only the modules whose words are a prefix of, or
 * start with, the words typed (`user`), so admin commands never pay for loading the sidecars,
 * and `--help` of a group loads everything in it. To add a command: create
 * `bin/commands/NAME.ts` and add one line here.
 */
import type { CommandModule } from './common.ts';

export interface LazyCommandModule {
  /** The command words the module registers under, e.g. 'inner start' or 'acl'. */
  readonly words: string;
  readonly load: () => Promise<CommandModule>;
}

export const COMMAND_MODULES: readonly LazyCommandModule[] = [
  { words: 'inner', load: () => import('./inner.ts') },
  { words: 'inner start', load: () => import('./inner-start.ts') },
  { words: 'inner key', load: () => import('./inner-key.ts') },
  { words: 'ca', load: () => import('./ca.ts') },
  { words: 'outer', load: () => import('./outer.ts') },
  { words: 'outer start', load: () => import('./outer-start.ts') },
  { words: 'client', load: () => import('./client.ts') },
  { words: 'acl', load: () => import('./acl.ts') },
  { words: 'server', load: () => import('./server.ts') },
  { words: 'user', load: () => import('./user.ts') },
  { words: 'audit', load: () => import('./audit.ts') },
  { words: 'demo', load: () => import('./demo.ts') },
  { words: 'inject', load: () => import('./inject.ts') },
  { words: 'webhook', load: () => import('./webhook.ts') },
  { words: 'apply', load: () => import('./apply.ts') },
];

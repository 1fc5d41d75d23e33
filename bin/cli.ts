/**
 * The `sws` program (contract: shared/spec/cli.md). `buildProgram` assembles the commander
 * tree from bin/commands/; `main` parses argv and returns the exit code: 0 success, 1 runtime
 * failure, 2 bad usage or invalid input (commander's own usage errors included), 3 denied.
 */
import { readFileSync } from 'node:fs';
import { Command, CommanderError } from 'commander';
import { COMMAND_MODULES, type LazyCommandModule } from './commands/index.ts';
import { exitCodeFor, makeContext, type CliContext, type CliIO } from './commands/common.ts';
import { SwsError } from '../store/index.ts';

function version(): string {
  try {
    return (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version?: string }).version ?? '0.0.0';
  } catch {
    return '0.0.0';
  }
}

/** Options of the root program that take a value (skipped when finding the command words). */
const ROOT_VALUE_OPTIONS = new Set(['--data']);

/** The command words in argv (`--data X inner key --json` → ['inner', 'key']). */
export function commandWords(argv: readonly string[]): string[] {
  const words: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--') break;
    if (a.startsWith('-')) {
      if (ROOT_VALUE_OPTIONS.has(a)) i++;
      continue;
    }
    words.push(a);
  }
  return words;
}

/** Modules needed for `argv`: all of them for root help, `help ...`, an unknown command or no argv. */
export function modulesFor(argv: readonly string[] | undefined, all: readonly LazyCommandModule[] = COMMAND_MODULES): LazyCommandModule[] {
  if (argv === undefined) return [...all];
  const words = commandWords(argv);
  if (words.length === 0 || words[0] === 'help') return [...all];
  const reachable = all.filter((m) => {
    const mw = m.words.split(' ');
    const n = Math.min(mw.length, words.length);
    for (let i = 0; i < n; i++) if (mw[i] !== words[i]) return false;
    return true;
  });
  // An unknown command: load everything so commander can say so (and suggest one).
  return reachable.length > 0 ? reachable : [...all];
}

/**
 * Builds the commander program. With `argv`, only the command modules that `argv` can reach
 * are loaded (see commands/index.ts); without, all of them.
 */
export async function buildProgram(ctx: CliContext, argv?: readonly string[]): Promise<Command> {
  const program = new Command('sws');
  program
    .description('secure web sharing: an encrypting, access-controlling sidecar pair (outer and inner)')
    .version(version(), '-V, --version')
    .option('--data <DIR>', 'data dir (default: $SWS_DATA, else ./.sws)')
    .configureHelp({ showGlobalOptions: true, sortSubcommands: false })
    .configureOutput({
      writeOut: (s) => void ctx.stdout.write(s),
      writeErr: (s) => void ctx.stderr.write(s),
    })
    .showHelpAfterError('(add --help for usage)')
    .exitOverride();
  const loaded = await Promise.all(modulesFor(argv).map((m) => m.load()));
  for (const m of loaded) m.register(program, ctx);
  return program;
}

/** Runs `sws` with `argv` (without node and script), returning the exit code. */
export async function main(argv: readonly string[], io: Partial<CliIO> = {}): Promise<number> {
  const ctx = makeContext(io);
  try {
    const program = await buildProgram(ctx, argv);
    await program.parseAsync([...argv], { from: 'user' });
    return ctx.exitCode;
  } catch (e) {
    if (e instanceof CommanderError) {
      // --help, --version and `help CMD` exit 0; help shown because of an error (a group
      // without its subcommand) and everything else commander rejects is bad usage.
      if (e.code === 'commander.helpDisplayed' || e.code === 'commander.version') return 0;
      if (e.code === 'commander.help' && e.exitCode === 0) return 0;
      return 2;
    }
    if (e instanceof SwsError) {
      ctx.stderr.write(`error: ${e.message} (${e.code})\n`);
      return exitCodeFor(e);
    }
    const msg = e instanceof Error ? e.message : String(e);
    ctx.stderr.write(`error: unexpected failure: ${msg}\n`);
    if (ctx.env.SWS_DEBUG && e instanceof Error && e.stack) ctx.stderr.write(e.stack + '\n');
    return 1;
  }
}

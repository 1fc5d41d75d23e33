/** `sws outer start`: run the outer sidecar (contract: shared/spec/cli.md). */
import { Option, type Command } from 'commander';
import { DEFAULT_REKEY_POLICY, formatRekeyPolicy, parseRekeyPolicy } from '../../core/keyrotation.ts';
import { OuterSidecar } from '../../sidecar-outer/server.ts';
import { defaultPasswordChecks, OUTER_DEFAULTS, type OuterSidecarConfig } from '../../sidecar-outer/config.ts';
import { PolicyError } from '../../core/errors.ts';
import { UsageError } from '../../store/index.ts';
import { dataDirOf, group, readInputFile, type CliContext } from './common.ts';
import { checkTlsIdentity } from './tls-files.ts';
import { intFlag, LOG_LEVELS, runUntilSignal, tuneHeapForSidecar } from './run.ts';
import { parseListen } from '../../sidecar-shared/listen.ts';
import { addOuterOptions, outerCacheConfig, portalConfig, type OuterCacheFlags } from './cache-flags.ts';
import { addStartConfigOptions, applyStartConfig, type StartConfigFlags } from './start-config.ts';
import { DEFAULT_FAILURE_LIMIT } from '../../sidecar-outer/auth-limit.ts';

interface Flags extends OuterCacheFlags, StartConfigFlags {
  listen: string;
  adminListen?: string;
  rekey: string;
  innerTimeout?: string;
  connectTimeout?: string;
  innerProxy?: string;
  grace?: string;
  passwordChecks?: string;
  authFailures?: string;
  tlsCert?: string;
  tlsKey?: string;
  logLevel: string;
}

export function register(program: Command, ctx: CliContext): void {
  const start = group(program, 'outer')
    .command('start')
    .description('run the outer sidecar: authenticate users, seal their requests to the inner, open the answers')
    .requiredOption('--listen <HOST:PORT>', 'where clients connect (use it as their HTTP proxy; port 0: any free port)')
    .option('--admin-listen <HOST:PORT>', 'serve /healthz, /readyz and /metrics here')
    .option('--rekey <TRIGGERS>', 'key-exchange triggers (S101–S105): request, destination, count:N, time:SECONDS, bytes:N', formatRekeyPolicy(DEFAULT_REKEY_POLICY))
    .option('--inner-timeout <MS>', `time to wait for the inner's answer head (default ${OUTER_DEFAULTS.innerHeadersTimeoutMs})`)
    .option('--connect-timeout <MS>', `inner connect timeout (default ${OUTER_DEFAULTS.connectTimeoutMs})`)
    .option('--inner-proxy <URL>', 'send envelopes through this HTTP proxy (http://HOST:PORT)')
    .option('--grace <MS>', `shutdown grace period for requests in flight (default ${OUTER_DEFAULTS.shutdownGraceMs})`)
    .option('--password-checks <N>', `password checks (scrypt, 32 MiB each) run at once (default ${defaultPasswordChecks()}: one per core, at most 4)`)
    .option('--auth-failures <N>', `wrong passwords a client address (IPv6: its /64) may make per minute before its password checks pause, answered 429 with Retry-After (default ${DEFAULT_FAILURE_LIMIT.failures}; 0: no limit)`)
    .option('--tls-cert <FILE>', 'serve clients over HTTPS (claim 7): PEM certificate, with any intermediates')
    .option('--tls-key <FILE>', 'the private key of --tls-cert (PEM)')
    .addOption(new Option('--log-level <LEVEL>', 'log level').choices(LOG_LEVELS).default(OUTER_DEFAULTS.logLevel));
  addOuterOptions(addStartConfigOptions(start))
    .action(async (opts: Flags, cmd: Command) => {
      let rekey;
      try {
        rekey = parseRekeyPolicy(opts.rekey);
      } catch (e) {
        if (e instanceof PolicyError) throw new UsageError(e.message, '--rekey');
        throw e;
      }
      if (opts.innerProxy !== undefined && !/^http:\/\/[^/@\s]+(:\d+)?\/?$/.test(opts.innerProxy)) throw new UsageError('must be http://HOST:PORT', '--inner-proxy');
      const portal = portalConfig(opts);
      const tls = tlsConfig(opts, ctx);
      const config: OuterSidecarConfig = {
        dataDir: dataDirOf(cmd, ctx),
        listen: parseListen(opts.listen, '--listen'),
        ...(opts.adminListen ? { adminListen: parseListen(opts.adminListen, '--admin-listen') } : {}),
        rekey,
        innerHeadersTimeoutMs: intFlag(opts.innerTimeout, '--inner-timeout', 1, 3_600_000) ?? OUTER_DEFAULTS.innerHeadersTimeoutMs,
        innerBodyTimeoutMs: OUTER_DEFAULTS.innerBodyTimeoutMs,
        connectTimeoutMs: intFlag(opts.connectTimeout, '--connect-timeout', 1, 600_000) ?? OUTER_DEFAULTS.connectTimeoutMs,
        shutdownGraceMs: intFlag(opts.grace, '--grace', 0, 3_600_000) ?? OUTER_DEFAULTS.shutdownGraceMs,
        logLevel: opts.logLevel,
        ...(opts.innerProxy ? { innerProxy: opts.innerProxy } : {}),
        ...(tls ? { tls } : {}),
        cache: outerCacheConfig(opts),
        ...(portal ? { portal } : {}),
        clearOnUserSwitch: opts.clearOnUserSwitch,
        ...(opts.passwordChecks !== undefined ? { passwordChecks: intFlag(opts.passwordChecks, '--password-checks', 1, 64)! } : {}),
        ...(opts.authFailures !== undefined ? { authFailureLimit: { failures: intFlag(opts.authFailures, '--auth-failures', 0, 100_000)!, periodMs: DEFAULT_FAILURE_LIMIT.periodMs } } : {}),
      };
      // Every flag is checked first; then the config is applied, then the sidecar starts.
      tuneHeapForSidecar(ctx.env);
      await applyStartConfig(opts, 'outer', cmd, ctx);
      const sidecar = await OuterSidecar.start(config);
      await runUntilSignal(sidecar);
    });
}

/** `--tls-cert` and `--tls-key` together, read and checked here at the edge (a mismatch is exit 2). */
function tlsConfig(opts: Flags, ctx: CliContext): { certPem: string; keyPem: string } | undefined {
  if (opts.tlsCert === undefined && opts.tlsKey === undefined) return undefined;
  if (opts.tlsCert === undefined) throw new UsageError('--tls-key needs --tls-cert', '--tls-cert');
  if (opts.tlsKey === undefined) throw new UsageError('--tls-cert needs --tls-key', '--tls-key');
  const certPem = readInputFile(opts.tlsCert, '--tls-cert', ctx);
  const keyPem = readInputFile(opts.tlsKey, '--tls-key', ctx);
  checkTlsIdentity(certPem, keyPem, '--tls-cert', '--tls-key');
  return { certPem, keyPem };
}

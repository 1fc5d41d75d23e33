/** `sws inner start`: run the inner sidecar (contract: shared/spec/cli.md). */
import { Option, type Command } from 'commander';
import { InnerSidecar } from '../../sidecar-inner/server.ts';
import { INNER_DEFAULTS, type InnerSidecarConfig } from '../../sidecar-inner/config.ts';
import { UsageError } from '../../store/index.ts';
import { dataDirOf, group, type CliContext } from './common.ts';
import { intFlag, LOG_LEVELS, runUntilSignal, tuneHeapForSidecar } from './run.ts';
import { parseListen } from '../../sidecar-shared/listen.ts';
import { addCacheOptions, cacheLimits, type CacheFlags } from './cache-flags.ts';
import { addStartConfigOptions, applyStartConfig, type StartConfigFlags } from './start-config.ts';

interface Flags extends CacheFlags, StartConfigFlags {
  listen: string;
  adminListen?: string;
  forwardedUserHeader: string;
  connectTimeout?: string;
  upstreamTimeout?: string;
  bodyTimeout?: string;
  grace?: string;
  logLevel: string;
  maxSessions?: string;
  sessionLifetime?: string;
  idleTimeout?: string;
}

export function register(program: Command, ctx: CliContext): void {
  const start = group(program, 'inner')
    .command('start')
    .description('run the inner sidecar: open envelopes, check the ACL, forward to the WWW server')
    .requiredOption('--listen <HOST:PORT>', 'where outers send envelopes (port 0: any free port)')
    .option('--admin-listen <HOST:PORT>', 'serve /healthz, /readyz and /metrics here')
    .option('--forwarded-user-header <NAME>', 'header that carries the user name to the WWW server', INNER_DEFAULTS.forwardedUserHeader)
    .option('--connect-timeout <MS>', `WWW server connect timeout (default ${INNER_DEFAULTS.connectTimeoutMs})`)
    .option('--upstream-timeout <MS>', `time to wait for the WWW server's response head before 504 (default ${INNER_DEFAULTS.upstreamHeadersTimeoutMs})`)
    .option('--body-timeout <MS>', `longest silence inside a WWW server body (default ${INNER_DEFAULTS.upstreamBodyTimeoutMs})`)
    .option('--grace <MS>', `shutdown grace period for requests in flight (default ${INNER_DEFAULTS.shutdownGraceMs})`)
    .option('--max-sessions <N>', 'most sessions held at once (default 100000)')
    .option('--session-lifetime <SECONDS>', 'longest life of a session key (default 3600)')
    .option('--idle-timeout <SECONDS>', 'a session unused this long is dropped (default 600)')
    .addOption(new Option('--log-level <LEVEL>', 'log level').choices(LOG_LEVELS).default(INNER_DEFAULTS.logLevel));
  addCacheOptions(addStartConfigOptions(start), 'shared cache of WWW responses')
    .action(async (opts: Flags, cmd: Command) => {
      const header = opts.forwardedUserHeader.toLowerCase();
      if (!/^[a-z0-9!#$%&'*+.^_`|~-]+$/.test(header)) throw new UsageError('must be an HTTP header name', '--forwarded-user-header');
      const policy: InnerSidecarConfig['policy'] = {};
      const maxSessions = intFlag(opts.maxSessions, '--max-sessions', 1, 10_000_000);
      const lifetime = intFlag(opts.sessionLifetime, '--session-lifetime', 10, 86_400);
      const idle = intFlag(opts.idleTimeout, '--idle-timeout', 10, 86_400);
      const config: InnerSidecarConfig = {
        dataDir: dataDirOf(cmd, ctx),
        listen: parseListen(opts.listen, '--listen'),
        ...(opts.adminListen ? { adminListen: parseListen(opts.adminListen, '--admin-listen') } : {}),
        forwardedUserHeader: header,
        connectTimeoutMs: intFlag(opts.connectTimeout, '--connect-timeout', 1, 600_000) ?? INNER_DEFAULTS.connectTimeoutMs,
        upstreamHeadersTimeoutMs: intFlag(opts.upstreamTimeout, '--upstream-timeout', 1, 3_600_000) ?? INNER_DEFAULTS.upstreamHeadersTimeoutMs,
        upstreamBodyTimeoutMs: intFlag(opts.bodyTimeout, '--body-timeout', 0, 86_400_000) ?? INNER_DEFAULTS.upstreamBodyTimeoutMs,
        shutdownGraceMs: intFlag(opts.grace, '--grace', 0, 3_600_000) ?? INNER_DEFAULTS.shutdownGraceMs,
        logLevel: opts.logLevel,
        cache: cacheLimits(opts),
        policy: {
          ...policy,
          ...(maxSessions !== undefined ? { maxSessions } : {}),
          ...(lifetime !== undefined ? { sessionLifetimeMs: lifetime * 1000 } : {}),
          ...(idle !== undefined ? { idleTimeoutMs: idle * 1000 } : {}),
        },
      };
      // Every flag is checked first; then the config is applied, then the sidecar starts.
      tuneHeapForSidecar(ctx.env);
      await applyStartConfig(opts, 'inner', cmd, ctx);
      const sidecar = await InnerSidecar.start(config);
      await runUntilSignal(sidecar);
    });
}

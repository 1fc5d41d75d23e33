/**
 * `sws webhook start`: the mutating admission webhook (k8s/webhook.ts) that injects the same
 * sidecar as `sws inject` into pods the API server sends it (see deploy/webhook/ for the
 * MutatingWebhookConfiguration, Service and Deployment). TLS from files; when the certificate
 * file changes (a rotated Secret), the new pair is loaded without a restart.
 */
import { readFileSync, unwatchFile, watchFile } from 'node:fs';
import { resolve } from 'node:path';
import { createSecureContext } from 'node:tls';
import { Option, type Command } from 'commander';
import { pino } from 'pino';
import type { InjectFlags } from '../../k8s/index.ts';
import { WebhookServer } from '../../k8s/webhook.ts';
import { parseListen } from '../../sidecar-shared/listen.ts';
import { UsageError } from '../../store/index.ts';
import { group, type CliContext } from './common.ts';
import { addInjectOptions, injectSettingsFrom } from './k8s-flags.ts';
import { LOG_LEVELS, runUntilSignal } from './run.ts';

function readPem(path: string, flag: string, ctx: CliContext): Buffer {
  try {
    const b = readFileSync(resolve(ctx.cwd, path));
    if (!b.includes('-----BEGIN ')) throw new UsageError(`${path} holds no PEM block`, flag);
    return b;
  } catch (e) {
    if (e instanceof UsageError) throw e;
    const code = (e as NodeJS.ErrnoException).code;
    throw new UsageError(`cannot read ${path}: ${code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : 'cannot read it'}`, flag);
  }
}

export function register(program: Command, ctx: CliContext): void {
  const webhook = group(program, 'webhook', 'the Kubernetes mutating admission webhook that injects sws sidecars');
  const start = webhook
    .command('start')
    .description('serve AdmissionReviews (admission.k8s.io/v1) on HTTPS: POST /mutate, GET /healthz')
    .requiredOption('--listen <HOST:PORT>', 'where the API server connects (port 0: any free port)')
    .requiredOption('--tls-cert <FILE>', 'PEM certificate (chain) for the webhook Service name')
    .requiredOption('--tls-key <FILE>', 'PEM private key of that certificate')
    .addOption(new Option('--webhook-log-level <LEVEL>', 'log level of the webhook itself').choices(LOG_LEVELS).default('info'));
  addInjectOptions(start).action(async (opts: InjectFlags & { listen: string; tlsCert: string; tlsKey: string; webhookLogLevel: string }) => {
    const settings = injectSettingsFrom(opts);
    const listen = parseListen(opts.listen, '--listen');
    const cert = readPem(opts.tlsCert, '--tls-cert', ctx);
    const key = readPem(opts.tlsKey, '--tls-key', ctx);
    const log = pino({ level: opts.webhookLogLevel, base: { role: 'webhook', pid: process.pid }, timestamp: pino.stdTimeFunctions.isoTime });
    try {
      createSecureContext({ cert, key });
    } catch {
      throw new UsageError('the certificate and key do not form a usable TLS pair (a PEM certificate and its PEM private key)', '--tls-cert/--tls-key');
    }
    const server = await WebhookServer.start({ host: listen.host, port: listen.port, cert, key, settings, log });
    const certPath = resolve(ctx.cwd, opts.tlsCert);
    const reload = () => {
      try {
        server.setTls(readFileSync(certPath), readFileSync(resolve(ctx.cwd, opts.tlsKey)));
        log.info('TLS certificate reloaded');
      } catch (e) {
        log.error({ err: e instanceof Error ? e.message : String(e) }, 'TLS certificate reload failed; keeping the old one');
      }
    };
    watchFile(certPath, { interval: 30_000, persistent: false }, reload);
    try {
      await runUntilSignal(server);
    } finally {
      unwatchFile(certPath, reload);
    }
  });
}
